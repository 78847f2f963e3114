import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from omnicorpus.config import ConfigError, load_config
from omnicorpus.pipeline import RunError, UnitFailed, Unit, phases_of, plan_shards, run
from omnicorpus.validate import validate_output
from tests.builders import NO_TEXT_FILTERS, html_page, make_warc
from tests.conftest import EXAMPLES, WARCS, copy_as_killed, tiny_png


def local_config(name="example", **overrides):
    return load_config(name, {"run.runner": "local", **overrides})


def kept_rows(output, columns=None):
    return pq.read_table(Path(output) / "shards", columns=columns).to_pylist()


def test_example_run_gives_valid_shards_and_a_funnel_that_adds_up(example_run):
    report = validate_output(example_run.output)
    assert report.problems == []
    stats = example_run.stats
    funnel = stats["funnel"]
    assert funnel["input"] == funnel["kept"] + sum(funnel["dropped"].values())
    assert stats["records"]["total"] == 142
    assert (Path(example_run.output) / "_SUCCESS").exists()
    run_info = json.loads((Path(example_run.output) / "run.json").read_text())
    assert run_info["config"]["extract"]["favor"] == "balanced" and run_info["versions"]["pyarrow"]
    metadata = pq.ParquetFile(Path(example_run.output) / "shards" / "shard-00000.parquet").schema_arrow.metadata
    assert metadata[b"omnicorpus.schema_version"] == b"1"
    assert metadata[b"omnicorpus.config_hash"].decode() == run_info["config_hash"]


def test_mona_lisa_is_one_document_with_images_from_the_warc_in_page_order(example_run):
    rows = [row for row in kept_rows(example_run.output) if "Mona_Lisa" in row["url"]]
    assert len(rows) == 1, "the two identical captures become one document"
    row = rows[0]
    images = [(url, info, data) for url, info, data in zip(row["images"], row["image_info"], row["image_bytes"])
              if url is not None]
    resolved = [(url, info, data) for url, info, data in images if info["status"] == "ok"]
    # The images phase keeps the 8 pictures of the page and removes the rest with their reasons
    # (example.toml: min side 90 px, no fetching).
    assert len(resolved) == len(images) == 8
    for url, info, data in resolved:
        assert info["source"] == "warc" and data and info["byte_size"] == len(data)
        assert min(info["width"], info["height"]) >= 90 and info["format"] in ("jpeg", "png")
        assert info["sha256"] == hashlib.sha256(data).hexdigest()
        assert re.fullmatch(r"[0-9a-f]{16}", info["phash"]) and re.fullmatch(r"[0-9a-f]{16}", info["dhash"])
        assert info["dup_count"] == 1
    removed = Counter((element["reason"], element["image_url"].rsplit("/", 1)[-1]) for element in row["removed"]
                      if element["kind"] == "image")
    assert removed == {
        # Declared in the HTML as 15x11, 220x66 and 22x22 px: removed before any bytes are looked at.
        ("images.declared_too_small", "magnify-clip.png"): 7,
        ("images.declared_too_small", "220px-Mona_Lisa_margin_scribble.jpg"): 1,
        ("images.declared_too_small", "22px-WPVA-khamsa.svg.png"): 1,
        ("images.banned_url", "9px-Commons-logo.svg.png"): 1,
        ("images.banned_url", "13px-Commons-logo.svg.png"): 1,
        ("images.not_fetched", "250px-Mona_Lisa%2C_by_Leonardo_da_Vinci%2C_from_C2RMF_natural_color.jpg"): 1,
    }
    assert row["images"].index(images[0][0]) < row["images"].index(resolved[-1][0])
    assert row["title"].startswith("Mona Lisa")
    assert row["warc_file"].endswith("wikipedia-mona-lisa.warc.gz") and row["warc_offset"] > 0
    rejected = pq.read_table(Path(example_run.output) / "rejects").to_pylist()
    reasons = sorted(r["drop_reason"] for r in rejected)
    assert reasons[1] == "read.duplicate_capture" and reasons[0].startswith("filter.")  # the catalogue
    assert [r["url"] for r in rejected if r["drop_reason"].startswith("filter.")] == ["http://books.toscrape.com/"]


def test_books_catalogue_covers_are_resolved(tmp_path, books_warc):
    # The text filters drop the catalogue (a product grid); its covers are resolved when they are off.
    result = run(local_config(**NO_TEXT_FILTERS), [str(books_warc)], tmp_path / "out")
    (row,) = [row for row in kept_rows(result.output) if "books.toscrape" in row["url"]]
    covers = {url for url, info in zip(row["images"], row["image_info"]) if url and "/media/cache/" in url
              and info["status"] == "ok"}
    assert len(covers) == 20 == sum(url is not None for url in row["images"])
    assert row["removed"] == []  # each cover stands once, next to its own title and price


def test_shards_load_by_column_name_in_pandas_and_duckdb(example_run):
    import duckdb
    import pandas as pd

    frame = pd.read_parquet(Path(example_run.output) / "shards", columns=["id", "url", "texts", "images"])
    assert len(frame) == 1 and set(frame.columns) == {"id", "url", "texts", "images"}
    count = duckdb.execute(f"select count(*) from '{example_run.output}/shards/*.parquet' where len(images) > 0").fetchone()
    assert count == (1,)


def test_rerun_skips_a_finished_run(example_run):
    again = run(local_config(), [str(EXAMPLES)], example_run.output)
    assert again.skipped and again.stats == example_run.stats


def test_resume_after_a_crash_gives_the_same_output(tmp_path, example_run):
    # Simulate a run killed in the images phase: one unit done, the other not, no final outputs.
    output = copy_as_killed(example_run.output, tmp_path / "out")
    stats_files = sorted((output / "_work" / "images").glob("*.stats.json"))
    stats_files[0].unlink()
    result = run(local_config(), [str(EXAMPLES)], output)
    assert not result.skipped
    for path in sorted((Path(example_run.output) / "shards").glob("*.parquet")):
        assert (output / "shards" / path.name).read_bytes() == path.read_bytes()


def test_a_changed_config_refuses_the_old_output(example_run):
    with pytest.raises(RunError, match="different config_hash"):
        run(local_config(**{"extract.favor": "precision"}), [str(EXAMPLES)], example_run.output)


def test_a_foreign_non_empty_folder_is_refused(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(RunError, match="not empty"):
        run(local_config(), [str(EXAMPLES)], tmp_path)


def test_every_edge_case_runs_to_the_end_with_every_record_accounted(tmp_path, edge_case_warcs):
    result = run(local_config(**{"extract.require_image": False}), [str(p) for p in edge_case_warcs],
                 tmp_path / "out")
    stats = result.stats
    assert stats["records"]["total"] == sum(stats["records"]["outcome"].values())
    reasons = stats["funnel"]["dropped"]
    assert reasons.get("error.read") == 1  # the truncated record of clipped.warc.gz
    assert validate_output(result.output).problems == []
    errors = [row for row in pq.read_table(tmp_path / "out" / "rejects").to_pylist()
              if row["drop_reason"] == "error.read"]
    assert "truncated" in errors[0]["error"] and errors[0]["warc_file"].endswith("clipped.warc.gz")
    per_unit = [json.loads(p.read_text()) for p in (tmp_path / "out" / "stats").glob("*.json")]
    assert len(per_unit) == len(edge_case_warcs)


def test_common_crawl_excerpt_runs(tmp_path, common_crawl_warc):
    # Offline: Common Crawl WARCs hold no images, so the documents keep their image URLs unfetched.
    result = run(local_config("commoncrawl", **NO_TEXT_FILTERS, **{"images.fetch": False, "images.keep_unresolved": True}),
                 [str(common_crawl_warc)], tmp_path / "out")
    assert result.stats["funnel"]["input"] == 9
    assert validate_output(result.output).problems == []
    assert any(re.search(r"[\u4e00-\u9fff]{10}", "".join(t for t in row["texts"] if t))
               for row in kept_rows(result.output, ["texts"]))


def test_filters_over_batches_give_the_same_rows_in_record_order(tmp_path, common_crawl_warc, monkeypatch):
    """Stages run over batches of documents a stage at a time; every phase's rows are those of one at a time."""
    import omnicorpus.pipeline as pipeline
    import omnicorpus.stage as stage

    inputs = [str(common_crawl_warc), str(EXAMPLES / "wikipedia-mona-lisa.warc.gz")]
    config = local_config("commoncrawl", **{"images.fetch": False, "images.keep_unresolved": True,
                                            "filter.language.languages": ["en"]})
    outputs = {}
    for batch_docs in (1, 2, 1000):
        monkeypatch.setattr(pipeline, "BATCH_DOCS", batch_docs)  # the extract phase's filters
        monkeypatch.setattr(stage, "BATCH_DOCS", batch_docs)  # the later phases' stages
        output = tmp_path / f"batch-{batch_docs}"
        run(config, inputs, output)
        outputs[batch_docs] = {str(path.relative_to(output)): path.read_bytes() for path in output.rglob("*.parquet")}
    assert len(outputs[1]) >= 20 and outputs[2] == outputs[1] and outputs[1000] == outputs[1]
    (rejects,) = [pq.read_table(tmp_path / "batch-2" / name).to_pylist() for name in outputs[2]
                  if name.startswith("_work/extract/CC-MAIN") and name.endswith("rejects.parquet")]
    reasons = [row["drop_reason"] for row in rejects]
    # Rejects of the extract stage and of the filters interleave, in the order of their records.
    assert {"filter.language.not_target"} < set(reasons) and len(set(reasons)) >= 2
    assert [row["warc_offset"] for row in rejects] == sorted(row["warc_offset"] for row in rejects)


def test_shards_are_target_sized(tmp_path):
    records = []
    # Pages must differ in words, not only in numbers, or dedup (which reads every number as 0) merges them.
    topics = ("apples", "bridges", "comets", "deserts", "engines", "forests", "glaciers")
    for i in range(7):
        records.append({"url": f"https://example.org/{i}", "body": html_page(
            f"Page {i}", f"Paragraph about {topics[i]}. " * 30, f'<img src="/img/{i}.png" alt="picture {i}">')})
        records.append({"url": f"https://example.org/img/{i}.png", "body": tiny_png(color=(i * 30, 10, 10)),
                        "content_type": "image/png"})
    warc = make_warc(tmp_path / "many.warc.gz", records)
    config = local_config(**{"write.docs_per_shard": 3, "write.row_group_docs": 2}, **NO_TEXT_FILTERS)
    result = run(config, [str(warc)], tmp_path / "out")
    shards = sorted((tmp_path / "out" / "shards").glob("*.parquet"))
    assert [pq.ParquetFile(p).metadata.num_rows for p in shards] == [3, 3, 1]
    assert all(pq.ParquetFile(p).metadata.row_group(0).num_rows <= 2 for p in shards)
    assert [s["shard"] for s in result.shards] == ["shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet"]
    urls = [row["url"] for row in kept_rows(tmp_path / "out", ["url"])]
    assert urls == [f"https://example.org/{i}" for i in range(7)]  # input order is kept


def test_plan_shards_caps_docs_and_bytes():
    a, b = Unit("a", "a"), Unit("b", "b")
    plan = plan_shards([(a, [10, 10, 10]), (b, [50, 10])], docs_per_shard=2, max_shard_bytes=40)
    assert plan == [[(a, 0, 2)], [(a, 2, 3)], [(b, 0, 1)], [(b, 1, 2)]]
    assert plan_shards([(a, [])], 5, 100) == []


def test_a_unit_with_mostly_errors_fails_loudly(tmp_path, monkeypatch):
    import omnicorpus.pipeline as pipeline
    import omnicorpus.stage as stage
    from omnicorpus.extract.html import ExtractStage

    class Exploding(ExtractStage):
        def process(self, page):
            raise RuntimeError("boom")

    monkeypatch.setattr(pipeline, "ExtractStage", Exploding)
    records = [{"url": f"https://example.org/{i}", "body": html_page(str(i), "text")} for i in range(30)]
    warc = make_warc(tmp_path / "bad.warc.gz", records)
    with pytest.raises(UnitFailed, match="30 of 30 documents are error rows"):
        run(local_config(), [str(warc)], tmp_path / "out")


def test_unknown_config_keys_are_named(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[extract]\nrequire_imgs = false\n")
    with pytest.raises(ConfigError, match="unknown key 'extract.require_imgs'; allowed: enabled, require_image"):
        load_config(bad)
    bad.write_text("[extracting]\n")
    with pytest.raises(ConfigError, match="unknown key 'extracting'"):
        load_config(bad)
    bad.write_text("[write]\ndocs_per_shard = 'many'\n")
    with pytest.raises(ConfigError, match="write.docs_per_shard must be an integer"):
        load_config(bad)
    with pytest.raises(ConfigError, match="write.docs_per_shard must be > 0"):
        load_config(None, {"write.docs_per_shard": 0})


@pytest.mark.ray
def test_ray_and_local_runners_give_identical_output(tmp_path, example_run):
    inputs = [str(EXAMPLES), str(WARCS / "warcio-example.warc.gz"), str(WARCS / "clipped.warc.gz")]
    local = run(local_config(), inputs, tmp_path / "local")
    distributed = run(load_config("example", {"run.runner": "ray", "run.workers": 2}), inputs, tmp_path / "ray")
    assert local.stats == distributed.stats
    for folder in ("shards", "rejects"):
        local_files = sorted((tmp_path / "local" / folder).glob("*.parquet"))
        assert local_files
        for path in local_files:
            assert (tmp_path / "ray" / folder / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_extract_only_pipeline_keeps_every_page_with_text(tmp_path, edge_case_warcs):
    config = load_config("extract-only", {"run.runner": "local"})
    assert [phase.name for phase in phases_of(config)] == ["extract"]
    result = run(config, [str(EXAMPLES), *map(str, edge_case_warcs)], tmp_path / "out")
    dropped = result.stats["funnel"]["dropped"]
    assert not any(reason.startswith(("filter.", "images.", "extract.no_image")) for reason in dropped)
    rows = kept_rows(tmp_path / "out", ["url", "image_info"])
    assert "http://books.toscrape.com/" in {row["url"] for row in rows}
    statuses = {info["status"] for row in rows for info in row["image_info"] if info}
    assert statuses == {"not_fetched"}
