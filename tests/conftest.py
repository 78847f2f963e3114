"""Shared fixtures: paths to the bundled WARCs, a WARC builder, document builders, run helpers."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from tests.builders import make_document, make_warc  # noqa: F401  (re-exported for tests)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
WARCS = FIXTURES / "warc"
EXAMPLES = ROOT / "examples"

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture
def mona_lisa_warc() -> Path:
    return EXAMPLES / "wikipedia-mona-lisa.warc.gz"


@pytest.fixture
def books_warc() -> Path:
    return EXAMPLES / "books.toscrape.warc"


@pytest.fixture
def common_crawl_warc() -> Path:
    return WARCS / "CC-MAIN-2020-34-excerpt-part-a.warc.gz"


@pytest.fixture
def edge_case_warcs() -> list[Path]:
    return sorted(p for p in WARCS.iterdir() if p.name != "CC-MAIN-2020-34-excerpt-part-a.warc.gz")


@pytest.fixture(scope="session")
def example_run(tmp_path_factory):
    """The bundled example run once with the local runner, shared by read-only tests."""
    from omnicorpus.config import load_config
    from omnicorpus.pipeline import run

    output = tmp_path_factory.mktemp("example") / "out"
    config = load_config("example", {"run.runner": "local"})
    return run(config, [str(EXAMPLES)], output)


def tiny_png(width: int = 200, height: int = 160, color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def copy_as_killed(finished_output, output) -> Path:
    """A copy of a finished run as a killed one would leave it: no final outputs (shards, rejects, stats,
    run.json, _SUCCESS), every phase's work files still there."""
    import shutil

    output = Path(output)
    shutil.copytree(finished_output, output)
    for name in ("_SUCCESS", "run.json", "stats.json"):
        (output / name).unlink()
    for folder in ("shards", "rejects", "stats"):
        shutil.rmtree(output / folder)
    return output


_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "0.0.0.0")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Tests reach loopback only: resolving any other name fails as it would on an offline machine."""
    import socket

    resolve = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name in _LOOPBACK_NAMES or name.startswith("127.") or name.endswith(".localhost"):
            return resolve(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"tests may not resolve {name!r} (loopback only)")

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
