"""`--ray-address auto` joins a running `ray start` cluster (a real one, on this machine)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path):
    ray = Path(sys.executable).with_name("ray")
    log = open(tmp_path / "ray-start.log", "w")
    # --block keeps the cluster tied to this process group, so the test stops exactly what it started
    # (never `ray stop`, which would stop every Ray on the machine).
    process = subprocess.Popen(
        [str(ray), "start", "--head", "--block", f"--port={_free_port()}", "--num-cpus=2",
         "--object-store-memory=200000000", "--include-dashboard=false", "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    try:
        deadline = time.monotonic() + 60
        while "Ray runtime started" not in (tmp_path / "ray-start.log").read_text():
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("ray start did not come up:\n" + (tmp_path / "ray-start.log").read_text()[-2000:])
            time.sleep(0.2)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def test_run_joins_a_running_cluster(ray_cluster, tmp_path, example_run):
    omnicorpus = shutil.which("omnicorpus", path=str(Path(sys.executable).parent))
    output = tmp_path / "out"
    result = subprocess.run(
        [omnicorpus, "run", "-i", str(EXAMPLES), "-o", str(output), "-c", "example", "--ray-address", "auto"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "documents: 3 in, 1 kept, 2 dropped" in result.stdout
    reference = Path(example_run.output) / "shards" / "shard-00000.parquet"
    assert (output / "shards" / "shard-00000.parquet").read_bytes() == reference.read_bytes()
