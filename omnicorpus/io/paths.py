"""Paths and URLs through fsspec: expanding inputs, atomic writes, small JSON files."""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import fsspec

WARC_SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz")
# Common Crawl publishes relative paths in warc.paths.gz; this is where they live over HTTPS.
COMMON_CRAWL_PREFIX = "https://data.commoncrawl.org/"


class InputError(ValueError):
    """An input the user named cannot be used (missing, empty glob, unreadable list)."""


def is_url(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def is_paths_list(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name.endswith((".paths", ".paths.gz", ".paths.txt"))


def expand_inputs(specs: list[str], paths_prefix: str = COMMON_CRAWL_PREFIX) -> list[str]:
    """Turn paths, directories, globs, `warc.paths.gz` lists and fsspec URLs into a list of WARC files.

    The order is the order given, globs and directories sorted, duplicates removed. Every spec must match
    at least one file, so a typo fails at start-up instead of producing an empty run.
    """
    found: list[str] = []
    for spec in specs:
        matches = _expand_one(spec, paths_prefix)
        if not matches:
            raise InputError(f"input {spec!r} matches no WARC file")
        found.extend(matches)
    return list(dict.fromkeys(found))


def _expand_one(spec: str, paths_prefix: str) -> list[str]:
    if spec.startswith("file://"):
        spec = spec[len("file://") :]
    if is_paths_list(spec):
        return _read_paths_list(spec, paths_prefix)
    if is_url(spec):
        fs, _ = fsspec.core.url_to_fs(spec)
        if glob.has_magic(spec):
            return sorted(fs.unstrip_protocol(path) for path in fs.glob(spec))
        if not fs.exists(spec):
            raise InputError(f"input {spec!r} does not exist")
        return [spec]
    if glob.has_magic(spec):
        return sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
    path = Path(spec)
    if path.is_dir():
        return sorted(str(p) for p in path.rglob("*") if p.is_file() and p.name.endswith(WARC_SUFFIXES))
    if not path.exists():
        raise InputError(f"input {spec!r} does not exist")
    return [str(path)]


def _read_paths_list(spec: str, paths_prefix: str) -> list[str]:
    try:
        with fsspec.open(spec, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError as exc:
        raise InputError(f"paths list {spec!r} does not exist") from exc
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    result = []
    for line in raw.decode("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if is_url(line) or line.startswith("/"):
            result.append(line)
        else:
            result.append(paths_prefix.rstrip("/") + "/" + line)
    return result


def unit_name(path: str) -> str:
    """A deterministic, file-system-safe name for an input: its base name plus a hash of the full path."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", path.rstrip("/").rsplit("/", 1)[-1])[:80]
    digest = hashlib.sha1(path.encode("utf-8")).hexdigest()[:8]
    return f"{base}-{digest}"


def open_input(path: str, mode: str = "rb"):
    return fsspec.open(path, mode).open()


# -- atomic writes --------------------------------------------------------------------------------------


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary name in the same folder and rename, so a reader never sees a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def atomic_write_json(path: str | Path, data: Any) -> None:
    # Key order is kept (stage order matters in stats); callers sort where order is arbitrary.
    atomic_write_bytes(path, (json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"))


def temporary_path(path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
