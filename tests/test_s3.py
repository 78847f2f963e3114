"""Inputs on S3: a real S3-compatible server (moto) on 127.0.0.1, read through fsspec/s3fs by both runners."""

import pyarrow.parquet as pq
import pytest

from omnicorpus.config import load_config
from omnicorpus.io.paths import expand_inputs
from omnicorpus.pipeline import run
from tests.conftest import EXAMPLES


@pytest.fixture
def s3_bucket(monkeypatch):
    fsspec = pytest.importorskip("fsspec")
    pytest.importorskip("s3fs")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # fsspec reads FSSPEC_S3_* at import: Ray workers (new processes) get the endpoint from the environment,
    # this process from fsspec's live config.
    settings = {"endpoint_url": f"http://{host}:{port}", "key": "testing", "secret": "testing"}
    for key, value in settings.items():
        monkeypatch.setenv(f"FSSPEC_S3_{key.upper()}", value)
    monkeypatch.setitem(fsspec.config.conf, "s3", settings)
    filesystem = fsspec.filesystem("s3", skip_instance_cache=True)
    if not filesystem.exists("crawl"):  # moto keeps its state per process
        filesystem.mkdir("crawl")
    for path in sorted(EXAMPLES.glob("*.warc*")):
        filesystem.put(str(path), f"crawl/segment/{path.name}")
    yield "s3://crawl/segment"
    server.stop()


@pytest.mark.parametrize("runner", ["local", pytest.param("ray", marks=pytest.mark.ray)])
def test_runs_read_warcs_from_s3(s3_bucket, tmp_path, runner, example_run):
    inputs = expand_inputs([f"{s3_bucket}/*.warc*"])
    assert inputs == [f"{s3_bucket}/books.toscrape.warc", f"{s3_bucket}/wikipedia-mona-lisa.warc.gz"]
    result = run(load_config("example", {"run.runner": runner, "run.workers": 2}), inputs, tmp_path / "out")
    assert result.stats["funnel"] == example_run.stats["funnel"]
    rows = pq.read_table(tmp_path / "out" / "shards", columns=["warc_file", "image_info"]).to_pylist()
    assert rows[0]["warc_file"].startswith("s3://crawl/segment/")
    assert any(info and info["status"] == "ok" for info in rows[0]["image_info"])
