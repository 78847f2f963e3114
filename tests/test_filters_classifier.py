"""The fastText quality classifier: labelled files as the browser exports them, training, scores in signals."""

import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from omnicorpus.cli import main
from omnicorpus.config import ConfigError, load_config
from omnicorpus.filters.classifier import (ClassifierConfig, LabelError, QualityClassifier, TrainSettings,
                                           read_labelled, train)
from omnicorpus.pipeline import run
from omnicorpus.stage import StageStats, run_stage
from tests.builders import SENTENCES, make_document
from tests.conftest import EXAMPLES

SPAM = [
    "BUY NOW cheap pills best price click here", "win a free iphone today limited offer", "hot singles in your area",
    "casino bonus 100 free spins sign up now", "lottery results jackpot numbers winning tips",
    "download free movies full hd no registration", "cheap replica watches sale discount",
    "earn money from home fast guaranteed", "login register cart checkout my account",
    "best seo backlinks service rank first page",
]


def labelled_rows(count: int = 40, seed: int = 0) -> list[dict]:
    generator = random.Random(seed)
    rows = []
    for index in range(count):
        good = " ".join(generator.sample(SENTENCES, 4))
        bad = " | ".join(generator.sample(SPAM, 4))
        rows.append({"id": f"g{index}", "text": good, "label": "good"})
        rows.append({"id": f"b{index}", "text": bad, "label": "bad"})
    return rows


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("classifier") / "quality.bin"
    train(read_labelled(write_jsonl(path.parent / "labels.jsonl", labelled_rows())), path)
    return path


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_labelled_files_in_jsonl_and_parquet_read_the_same(tmp_path):
    rows = labelled_rows(3)
    jsonl = read_labelled(write_jsonl(tmp_path / "labels.jsonl", rows))
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "labels.parquet")
    assert read_labelled(tmp_path / "labels.parquet") == jsonl
    assert [label for label, _ in jsonl] == ["good", "bad"] * 3
    fasttext_style = [{"text": row["text"], "label": f"__label__{row['label']}"} for row in rows]  # no id
    assert read_labelled(write_jsonl(tmp_path / "ft.jsonl", fasttext_style)) == jsonl


@pytest.mark.parametrize("rows, message", [
    ([{"id": "x1", "text": "some text", "label": "meh"}], "row 1 \\(id x1\\): label must be one of"),
    ([{"text": "", "label": "good"}], "row 1: needs a non-empty `text`"),
    ([{"text": "only good", "label": "good"}], "no rows labelled \\['bad'\\]"),
    ([], "no labelled rows"),
])
def test_unusable_labels_are_named(tmp_path, rows, message):
    with pytest.raises(LabelError, match=message):
        read_labelled(write_jsonl(tmp_path / "labels.jsonl", rows))


def test_the_classifier_separates_good_from_bad_and_scores_reach_signals(model_path):
    stage = QualityClassifier(ClassifierConfig(model_path=str(model_path)))
    good = make_document(" ".join(SENTENCES[5:9]), "img:https://example.org/a.jpg")
    bad = make_document(" | ".join(SPAM[:3]), "img:https://example.org/b.jpg")
    for document in (good, bad):
        kept, rejected = run_stage(stage, document, StageStats(), None)
        assert rejected is None  # min_score 0: scored, never dropped
    assert good.signals["quality_score"] > 0.8 > 0.2 > bad.signals["quality_score"]
    strict = QualityClassifier(ClassifierConfig(model_path=str(model_path), min_score=0.5))
    _, rejected = run_stage(strict, bad, StageStats(), None)
    assert rejected.drop_reason == "filter.classifier.low_score"


def test_train_command_writes_a_model_that_a_run_uses(tmp_path, capsys):
    labels = write_jsonl(tmp_path / "labels.jsonl", labelled_rows(30, seed=3))
    model = tmp_path / "models" / "quality.bin"
    assert main(["classifier", "train", "-i", str(labels), "-o", str(model), "--validation-share", "0.2"]) == 0
    printed = capsys.readouterr().out
    assert "trained on 48 documents (good 24, bad 24)" in printed and "held out: examples 12, accuracy 1" in printed
    config = load_config("example", {"run.runner": "local", "filter.classifier.model_path": str(model)})
    result = run(config, [str(EXAMPLES / "wikipedia-mona-lisa.warc.gz")], tmp_path / "out")
    assert "filter.classifier" in result.stats["stages"]
    rows = pq.read_table(tmp_path / "out" / "shards", columns=["url", "signals"]).to_pylist()
    assert len(rows) == 1 and 0.0 <= rows[0]["signals"]["quality_score"] <= 1.0


def test_bad_input_to_the_command_is_an_error_message(tmp_path, capsys):
    labels = write_jsonl(tmp_path / "labels.jsonl", [{"text": "x", "label": "great"}])
    assert main(["classifier", "train", "-i", str(labels), "-o", str(tmp_path / "m.bin")]) == 2
    assert "label must be one of" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="filter.classifier.model_path '/no/model.bin' does not exist"):
        load_config(None, {"filter.classifier.model_path": "/no/model.bin"})


def test_training_holds_out_a_share_and_reports_on_it(tmp_path):
    rows = read_labelled(write_jsonl(tmp_path / "labels.jsonl", labelled_rows(10)))
    result = train(rows, tmp_path / "a.bin", TrainSettings(epochs=5, validation_share=0.25))
    assert result.labels["good"] + result.labels["bad"] == result.examples == 15
    assert result.validation["examples"] == 5 and 0.0 <= result.validation["accuracy"] <= 1.0
