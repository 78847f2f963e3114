import re
import subprocess
import sys

import pyarrow.parquet as pq

from omnicorpus.cli import main
from tests.conftest import EXAMPLES


def test_run_validate_show(tmp_path, capsys):
    output = tmp_path / "out"
    assert main(["run", "-i", str(EXAMPLES), "-o", str(output), "-c", "example", "--runner", "local"]) == 0
    printed = capsys.readouterr().out
    assert "documents: 3 in, 1 kept, 2 dropped" in printed and "read.duplicate_capture 1" in printed
    assert re.search(r"filter\.\S+ 1", printed)  # the books catalogue (prices and "In stock") is filtered

    assert main(["validate", str(output)]) == 0
    assert "OK: every file meets the data contract" in capsys.readouterr().out

    assert main(["show", str(output), "--limit", "1"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("=== ") and "Mona_Lisa" in shown
    assert re.search(r"\[image: http://upload\.wikimedia\.org/\S+ \d+x\d+\]", shown)  # with the decoded size

    assert main(["show", str(output), "--rejects"]) == 0
    assert "dropped: read.duplicate_capture" in capsys.readouterr().out

    assert main(["run", "-i", str(EXAMPLES), "-o", str(output), "-c", "example", "--runner", "local"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_validate_fails_on_a_broken_shard(tmp_path, capsys, example_run):
    import shutil

    output = tmp_path / "copy"
    shutil.copytree(example_run.output, output)
    shard = output / "shards" / "shard-00000.parquet"
    table = pq.read_table(shard)
    texts = table.column("texts").to_pylist()
    texts[0] = [None] * len(texts[0])  # every slot of the first document loses its text
    import pyarrow as pa

    broken = table.set_column(table.schema.get_field_index("texts"), table.schema.field("texts"),
                              pa.array(texts, table.schema.field("texts").type))
    pq.write_table(broken, shard)
    assert main(["validate", str(output)]) == 1
    out = capsys.readouterr().out
    assert "FAIL shard-00000.parquet" in out


def test_user_errors_exit_2_with_a_message(tmp_path, capsys):
    assert main(["run", "-i", str(tmp_path / "missing.warc.gz"), "-o", str(tmp_path / "o"), "--runner", "local"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", "-i", str(EXAMPLES), "-o", str(tmp_path / "o"), "--set", "extract.nope=1"]) == 2
    assert "unknown key 'extract.nope'" in capsys.readouterr().err
    assert main(["run", "-i", str(EXAMPLES), "-o", str(tmp_path / "o"), "-c", "no-such-pipeline"]) == 2
    assert "not found (bundled: commoncrawl, example" in capsys.readouterr().err
    assert main(["show", str(tmp_path)]) == 2


def test_importing_the_package_loads_neither_ray_nor_torch():
    code = ("import sys, omnicorpus, omnicorpus.cli, omnicorpus.pipeline, omnicorpus.schema; "
            "print(sorted(m for m in ('ray', 'torch', 'trafilatura') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_help_describes_the_commands():
    result = subprocess.run([sys.executable, "-m", "omnicorpus.cli", "run", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--input", "--output", "--config", "--runner", "--ray-address", "--workers", "--set"):
        assert flag in result.stdout
