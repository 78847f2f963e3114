"""Preliminary and document rules: each rule's exact reason code, on tiny documents built with make_document."""

import pytest

from omnicorpus.filters.document_rules import DocumentRules, DocumentRulesConfig
from omnicorpus.filters.quality import (C4Config, C4Filter, GopherQualityConfig, GopherQualityFilter,
                                        GopherRepetitionConfig, GopherRepetitionFilter)
from omnicorpus.stage import StageStats, run_stage
from tests.builders import SENTENCES, make_document

GOOD_TEXT = " ".join(SENTENCES)


def reason(stage, document):
    """The drop reason a stage gives (None when it keeps the document)."""
    kept, rejected = run_stage(stage, document, StageStats(), None)
    if rejected is not None and rejected.error:
        raise AssertionError(rejected.error)
    return None if rejected is None else rejected.drop_reason


def english(*slots, **fields):
    return make_document(*slots, language="en", language_score=0.99, **fields)


def gopher(**config):
    return GopherQualityFilter(GopherQualityConfig(**config))


def test_a_good_document_passes_every_preliminary_rule_and_its_values_reach_signals():
    document = english(" ".join(SENTENCES[:5]), "img:https://example.org/a.jpg", " ".join(SENTENCES[5:]))
    for stage in (gopher(), GopherRepetitionFilter(GopherRepetitionConfig()), C4Filter(C4Config())):
        assert reason(stage, document) is None
    signals = document.signals
    assert signals["words"] > 140 and 3 < signals["mean_word_length"] < 10
    assert signals["stop_words"] >= 2 and signals["sentences"] == 10
    assert signals["duplicate_lines_ratio"] == 0.0


@pytest.mark.parametrize("text, config, code", [
    ("A short note with only a handful of words.", {}, "filter.gopher_quality.too_few_words"),
    (GOOD_TEXT, {"max_words": 60}, "filter.gopher_quality.too_many_words"),
    (" ".join(["it is a ox to me and we go up"] * 8), {}, "filter.gopher_quality.short_mean_word"),
    (" ".join(["internationalization counterrevolutionaries"] * 30), {},
     "filter.gopher_quality.long_mean_word"),
    (GOOD_TEXT + " #art" * 20, {}, "filter.gopher_quality.symbol_ratio"),
    ("\n".join(f"- item {i} is the best thing to have with you" for i in range(12)), {},
     "filter.gopher_quality.bullet_lines"),
    ("\n".join(f"{sentence[:-1]} and so on..." if i % 2 else sentence for i, sentence in enumerate(SENTENCES)),
     {}, "filter.gopher_quality.ellipsis_lines"),
    (GOOD_TEXT + " " + " ".join(str(1000 + i) for i in range(200)), {}, "filter.gopher_quality.non_alpha_words"),
    (" ".join(["Quick brown foxes jump over lazy dogs near rivers"] * 8), {},
     "filter.gopher_quality.few_stop_words"),
])
def test_gopher_quality_rules(text, config, code):
    assert reason(gopher(**config), english(text)) == code


def test_a_skipped_rule_does_not_drop_and_its_value_is_still_measured():
    document = english("A short note with only a handful of words.")
    assert reason(gopher(skip_rules=("too_few_words", "few_stop_words")), document) is None
    assert document.signals["words"] == 9


def test_chinese_text_counts_characters_as_words_and_skips_the_word_length_rule():
    text = "博物馆在一个下雨的星期六早上向游客开放了新的展厅。" * 4
    document = make_document(text, language="zh")
    assert reason(gopher(), document) is None
    assert document.signals["words"] == 4 * 24 and document.signals["mean_word_length"] == 1.0
    assert document.signals["stop_words"] >= 2


def repetition(**config):
    return GopherRepetitionFilter(GopherRepetitionConfig(**config))


LINE_RULES = ("duplicate_lines", "duplicate_line_chars")


@pytest.mark.parametrize("text, config, code", [
    ("\n".join([SENTENCES[0]] * 3 + SENTENCES[1:4]), {}, "filter.gopher_repetition.duplicate_lines"),
    ("\n\n".join([SENTENCES[0]] * 3 + SENTENCES[1:4]), {"skip_rules": LINE_RULES},
     "filter.gopher_repetition.duplicate_paragraphs"),
    ("\n".join([GOOD_TEXT] * 2 + [f"note {i}" for i in range(8)]), {},
     "filter.gopher_repetition.duplicate_line_chars"),
    ("\n\n".join([GOOD_TEXT] * 2 + [f"note {i}" for i in range(8)]), {"skip_rules": LINE_RULES},
     "filter.gopher_repetition.duplicate_paragraph_chars"),
    (" ".join(f"good morning {name}" for name in "anna ben carl dora emil fritz gina hans ida jan".split()), {},
     "filter.gopher_repetition.top_ngram"),
    (GOOD_TEXT + " " + " ".join([SENTENCES[3]] * 3), {"skip_rules": ("top_ngram",)},
     "filter.gopher_repetition.duplicated_ngrams"),
])
def test_gopher_repetition_rules(text, config, code):
    assert reason(repetition(**config), english(text)) == code


@pytest.mark.parametrize("text, code", [
    (GOOD_TEXT + " Lorem ipsum dolor sit amet.", "filter.c4.lorem_ipsum"),
    (GOOD_TEXT + " function main() { return 0; }", "filter.c4.curly_bracket"),
    (" ".join(SENTENCES[:4]), "filter.c4.too_few_sentences"),
])
def test_c4_rules(text, code):
    assert reason(C4Filter(C4Config()), english(text)) == code


def test_c4_counts_chinese_sentences():
    document = make_document("今天天气很好。我们去公园散步！你想一起去吗？" * 2, language="zh")
    assert reason(C4Filter(C4Config()), document) is None and document.signals["sentences"] == 6


# ---------------------------------------------------------------------------------------------------------
# Document rules (detail phase)


def document_rules(**config):
    return DocumentRules(DocumentRulesConfig(**config))


IMAGE = "img:https://example.org/picture.jpg"


def test_a_good_document_passes_the_document_rules():
    document = english(GOOD_TEXT, IMAGE, GOOD_TEXT)
    assert reason(document_rules(), document) is None
    assert document.signals["final_images"] == 1 and document.signals["words_per_image"] > 200


@pytest.mark.parametrize("slots, config, code", [
    (("A few words here.", IMAGE), {}, "filter.document.too_few_words"),
    ((GOOD_TEXT, IMAGE), {"max_words": 100}, "filter.document.too_many_words"),
    ((" ".join(["Quick brown foxes jump over lazy dogs near rivers."] * 8), IMAGE), {},
     "filter.document.few_stop_words"),
    ((GOOD_TEXT, IMAGE), {"min_stop_word_ratio": 0.9}, "filter.document.stop_word_ratio"),
    ((" ".join(SENTENCES[:5]), IMAGE, IMAGE.replace("picture", "b"), IMAGE.replace("picture", "c")), {},
     "filter.document.few_words_per_image"),
    ((GOOD_TEXT,), {}, "filter.document.too_few_images"),
    ((GOOD_TEXT, IMAGE, "More text follows here.", IMAGE.replace("picture", "b")), {"max_images": 1},
     "filter.document.too_many_images"),
    (("\n\n".join(" ".join(sentence.split()[:8]) + "." for sentence in SENTENCES), IMAGE), {},
     "filter.document.short_paragraphs"),
])
def test_document_rules(slots, config, code):
    assert reason(document_rules(**config), english(*slots)) == code


def test_stop_word_ratio_only_applies_to_the_languages_it_was_calibrated_for():
    document = make_document(GOOD_TEXT, IMAGE, language="pt")  # no stop-word list for Portuguese either
    assert reason(document_rules(min_stop_word_ratio=0.9), document) is None
    assert "final_stop_word_ratio" not in document.signals and "final_stop_words" not in document.signals


def test_unknown_rules_and_bad_thresholds_are_config_errors():
    from omnicorpus.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="filter.gopher_quality.skip_rules has unknown rules \\['no_such'\\]"):
        load_config(None, {"filter.gopher_quality.skip_rules": ["no_such"]})
    with pytest.raises(ConfigError, match="filter.document.min_stop_word_ratio must be in \\[0.0, 1.0\\]"):
        load_config(None, {"filter.document.min_stop_word_ratio": 3})
    with pytest.raises(ConfigError, match="unknown key 'filter.c4.min_sentence'"):
        load_config(None, {"filter.c4.min_sentence": 3})
    config = load_config("commoncrawl", {"filter.gopher_repetition.max_top_ngram_chars_ratio": {"2": 0.5}})
    assert config.filter.gopher_repetition.max_top_ngram_chars_ratio == {"2": 0.5}
