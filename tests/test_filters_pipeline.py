"""The filters inside a run: phase placement, the per-rule funnel, declared reasons, config switches."""

from pathlib import Path

import pyarrow.parquet as pq

from omnicorpus import schema
from omnicorpus.config import load_config, parse_override
from omnicorpus.filters import detail_stage_classes, preliminary_stage_classes
from omnicorpus.pipeline import phases_of, stage_classes


def test_preliminary_filters_run_in_extract_and_detailed_ones_in_the_last_phase(example_run):
    config = load_config("example")
    assert [phase.name for phase in phases_of(config)][-1] == "detail"
    stages = list(example_run.stats["stages"])
    assert stages.index("filter.c4") < stages.index("images") < stages.index("filter.paragraphs")
    extract_stats = sorted((Path(example_run.output) / "_work" / "extract").glob("*.stats.json"))
    assert all("filter.gopher_quality" in path.read_text() for path in extract_stats)


def test_the_run_stats_hold_a_funnel_per_rule(example_run):
    stages = example_run.stats["stages"]
    # The books catalogue (prices and "In stock") is dropped by one of the preliminary filters, by a named rule.
    dropped = {reason: count for name, stage in stages.items() if name.startswith("filter.")
               for reason, count in stage["dropped"].items()}
    assert sum(dropped.values()) == 1 and all(schema.is_declared_reason(reason) for reason in dropped)
    removed = stages["filter.paragraphs"]["removed_elements"]
    assert removed["filter.paragraphs.too_few_words"] >= 5
    (row,) = pq.read_table(Path(example_run.output) / "shards").to_pylist()
    assert sum(removed.values()) == sum(entry["reason"].startswith("filter.paragraphs.") for entry in row["removed"])
    assert all(schema.is_declared_reason(entry["reason"]) for entry in row["removed"])
    assert row["language"] == "en" and row["language_score"] > 0.9
    assert row["signals"]["words"] > 3000
    assert row["signals"]["final_images"] == sum(url is not None for url in row["images"]) > 0


def test_every_rule_of_every_filter_stage_is_declared():
    config = load_config("commoncrawl")
    classes = preliminary_stage_classes(config) + detail_stage_classes(config)
    assert len(classes) == 7  # the classifier joins only with a model
    for stage in classes:
        stage.check_declared()
        assert set(stage.removal_reasons) | set(stage.reasons)


def test_filters_switch_off_and_rethreshold_from_the_command_line():
    overrides = dict(parse_override(text) for text in (
        "filter.language.languages=[\"de\"]", "filter.c4.enabled=false",
        "filter.paragraphs.skip_rules=[\"too_few_words\"]", "filter.document.max_images=10"))
    config = load_config("commoncrawl", overrides)
    assert config.filter.language.languages == ("de",) and config.filter.document.max_images == 10
    assert config.filter.paragraphs.skip_rules == ("too_few_words",)
    assert "filter.c4" not in [stage.name for stage in stage_classes(config)]
    assert config.output_hash() != load_config("commoncrawl").output_hash()
