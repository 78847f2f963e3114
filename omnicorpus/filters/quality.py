"""Preliminary quality rules on the whole document text: Gopher quality, Gopher repetition, C4.

Definitions and defaults follow Gopher (Rae et al. 2021, App. A.1.1 and Table A1) as implemented by datatrove's
GopherQualityFilter, GopherRepetitionFilter and C4QualityFilter (anchors §4.3). OmniCorpus ran "Gopher + C4
strategies" here without publishing thresholds (paper §3.1), so these are the published Gopher/C4 ones. Each
rule's measured value goes into `signals` whether or not the rule fires, so thresholds can be re-tuned later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from omnicorpus.document import Document
from omnicorpus.filters import text as measure
from omnicorpus.filters.base import FilterConfig, FilterStage, check_bounds, check_range, record_signals

_BULLETS = ("•", "-", "*", "·", "‣", "◦", "●")
_ELLIPSES = ("...", "…")


# ---------------------------------------------------------------------------------------------------------
# Gopher quality


@dataclass(frozen=True, kw_only=True)
class GopherQualityConfig(FilterConfig):
    RULES: ClassVar[tuple[str, ...]] = (
        "too_few_words", "too_many_words", "short_mean_word", "long_mean_word", "symbol_ratio", "bullet_lines",
        "ellipsis_lines", "non_alpha_words", "few_stop_words",
    )
    SECTION: ClassVar[str] = "filter.gopher_quality"
    # Gopher App. A.1.1 (datatrove GopherQualityFilter defaults): 50-100,000 words.
    min_words: int = 50
    max_words: int = 100_000
    # Gopher: mean word length 3-10 characters. Not applied to Chinese/Japanese text (one character per word).
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    # Gopher: at most 0.1 hash symbols or ellipses per word.
    max_symbol_word_ratio: float = 0.1
    # Gopher: at most 90 % of lines starting with a bullet, at most 30 % ending with an ellipsis.
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    # Gopher: at least 80 % of words contain a letter.
    min_alpha_words_ratio: float = 0.8
    # Gopher: at least 2 of its stop words; the list follows the document's language (filters/text.py).
    min_stop_words: int = 2

    def __post_init__(self):
        super().__post_init__()
        for name in ("max_symbol_word_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio",
                     "min_alpha_words_ratio"):
            check_range(self.SECTION, name, getattr(self, name), 0.0, 1.0)
        check_bounds(self, "min_words", "max_words")


class GopherQualityFilter(FilterStage):
    name = "filter.gopher_quality"
    reasons = GopherQualityConfig.RULES
    signals = {"words": "int64", "mean_word_length": "float32", "symbol_word_ratio": "float32",
               "bullet_lines_ratio": "float32", "ellipsis_lines_ratio": "float32", "alpha_words_ratio": "float32",
               "stop_words": "int32"}

    def process(self, document: Document) -> Document | str:
        config = self.config
        text = document.text
        tokens = measure.words(text)
        count = len(tokens)
        text_lines = measure.lines(text) or [""]
        cjk = measure.is_cjk(tokens)
        mean_length = sum(map(len, tokens)) / count if count else 0.0
        symbols = text.count("#") + sum(text.count(ellipsis) for ellipsis in _ELLIPSES)
        stop_words = measure.stop_word_count(document.language, tokens)
        values = {
            "words": count,
            "mean_word_length": mean_length,
            "symbol_word_ratio": symbols / max(count, 1),
            "bullet_lines_ratio": sum(line.lstrip().startswith(_BULLETS) for line in text_lines) / len(text_lines),
            "ellipsis_lines_ratio": sum(line.rstrip().endswith(_ELLIPSES) for line in text_lines) / len(text_lines),
            "alpha_words_ratio": measure.alpha_word_count(tokens) / max(count, 1),
            "stop_words": stop_words,
        }
        record_signals(document, values)
        checks = (
            ("too_few_words", count < config.min_words),
            ("too_many_words", count > config.max_words),
            ("short_mean_word", not cjk and mean_length < config.min_mean_word_length),
            ("long_mean_word", not cjk and mean_length > config.max_mean_word_length),
            ("symbol_ratio", values["symbol_word_ratio"] > config.max_symbol_word_ratio),
            ("bullet_lines", values["bullet_lines_ratio"] > config.max_bullet_lines_ratio),
            ("ellipsis_lines", values["ellipsis_lines_ratio"] > config.max_ellipsis_lines_ratio),
            ("non_alpha_words", values["alpha_words_ratio"] < config.min_alpha_words_ratio),
            ("few_stop_words", stop_words is not None and stop_words < config.min_stop_words),
        )
        return first_failure(config, checks) or document


def first_failure(config: FilterConfig, checks) -> str | None:
    """The first rule that fails and is not skipped."""
    for rule, failed in checks:
        if failed and config.active(rule):
            return rule
    return None


# ---------------------------------------------------------------------------------------------------------
# Gopher repetition


def _default_top_ngrams() -> dict[str, float]:
    return {"2": 0.2, "3": 0.18, "4": 0.16}


def _default_duplicated_ngrams() -> dict[str, float]:
    return {"5": 0.15, "6": 0.14, "7": 0.13, "8": 0.12, "9": 0.11, "10": 0.10}


@dataclass(frozen=True, kw_only=True)
class GopherRepetitionConfig(FilterConfig):
    RULES: ClassVar[tuple[str, ...]] = (
        "duplicate_lines", "duplicate_paragraphs", "duplicate_line_chars", "duplicate_paragraph_chars",
        "top_ngram", "duplicated_ngrams",
    )
    SECTION: ClassVar[str] = "filter.gopher_repetition"
    # Gopher Table A1 (datatrove GopherRepetitionFilter defaults): duplicate lines and paragraphs at most 30 % of
    # them, and at most 20 % of the characters.
    max_duplicate_lines_ratio: float = 0.3
    max_duplicate_paragraphs_ratio: float = 0.3
    max_duplicate_line_chars_ratio: float = 0.2
    max_duplicate_paragraph_chars_ratio: float = 0.2
    # Gopher Table A1: characters in the most frequent word n-gram, by n.
    max_top_ngram_chars_ratio: dict[str, float] = field(default_factory=_default_top_ngrams)
    # Gopher Table A1: characters in repeated word n-grams, by n.
    max_duplicated_ngram_chars_ratio: dict[str, float] = field(default_factory=_default_duplicated_ngrams)

    def __post_init__(self):
        super().__post_init__()
        for name in ("max_top_ngram_chars_ratio", "max_duplicated_ngram_chars_ratio"):
            for n, ratio in getattr(self, name).items():
                if not n.isdigit() or int(n) < 1:
                    raise ValueError(f"{self.SECTION}.{name} keys must be n-gram sizes like \"2\", got {n!r}")
                check_range(self.SECTION, f"{name}.{n}", ratio, 0.0, 1.0)


class GopherRepetitionFilter(FilterStage):
    name = "filter.gopher_repetition"
    reasons = GopherRepetitionConfig.RULES
    signals = {"duplicate_lines_ratio": "float32", "duplicate_paragraphs_ratio": "float32",
               "duplicate_line_chars_ratio": "float32", "duplicate_paragraph_chars_ratio": "float32",
               "top_ngram_chars_ratio": "float32", "duplicated_ngram_chars_ratio": "float32"}

    def process(self, document: Document) -> Document | str:
        config = self.config
        text = document.text
        chars = max(len(text), 1)
        blocks = measure.paragraphs(text)
        text_lines = measure.lines(text)
        duplicate_blocks, duplicate_block_chars = measure.duplicates(blocks)
        duplicate_lines, duplicate_line_chars = measure.duplicates(text_lines)
        tokens = measure.words(text)
        # The n-gram signals keep the worst n relative to its threshold: ratio / threshold > 1 means it fails.
        top = _worst(config.max_top_ngram_chars_ratio,
                     lambda n: measure.top_ngram_chars(tokens, n) / chars)
        repeated = _worst(config.max_duplicated_ngram_chars_ratio,
                          lambda n: measure.duplicated_ngram_chars(tokens, n) / chars)
        document.signals.update(
            duplicate_lines_ratio=duplicate_lines / max(len(text_lines), 1),
            duplicate_paragraphs_ratio=duplicate_blocks / max(len(blocks), 1),
            duplicate_line_chars_ratio=duplicate_line_chars / chars,
            duplicate_paragraph_chars_ratio=duplicate_block_chars / chars,
            top_ngram_chars_ratio=top[0],
            duplicated_ngram_chars_ratio=repeated[0],
        )
        signals = document.signals
        checks = (
            ("duplicate_lines", signals["duplicate_lines_ratio"] > config.max_duplicate_lines_ratio),
            ("duplicate_paragraphs", signals["duplicate_paragraphs_ratio"] > config.max_duplicate_paragraphs_ratio),
            ("duplicate_line_chars", signals["duplicate_line_chars_ratio"] > config.max_duplicate_line_chars_ratio),
            ("duplicate_paragraph_chars",
             signals["duplicate_paragraph_chars_ratio"] > config.max_duplicate_paragraph_chars_ratio),
            ("top_ngram", top[1]),
            ("duplicated_ngrams", repeated[1]),
        )
        return first_failure(config, checks) or document


def _worst(thresholds: dict[str, float], ratio_of) -> tuple[float, bool]:
    """(the ratio of the n closest to or furthest past its threshold, whether any n fails)."""
    worst_ratio, worst_excess, failed = 0.0, -1.0, False
    for n, threshold in sorted(thresholds.items(), key=lambda item: int(item[0])):
        ratio = ratio_of(int(n))
        excess = ratio / threshold if threshold > 0 else (float("inf") if ratio > 0 else 0.0)
        failed = failed or ratio > threshold
        if excess > worst_excess:
            worst_ratio, worst_excess = ratio, excess
    return worst_ratio, failed


# ---------------------------------------------------------------------------------------------------------
# C4


@dataclass(frozen=True, kw_only=True)
class C4Config(FilterConfig):
    RULES: ClassVar[tuple[str, ...]] = ("lorem_ipsum", "curly_bracket", "too_few_sentences")
    SECTION: ClassVar[str] = "filter.c4"
    # C4 (Raffel et al. 2020 §2.2; datatrove C4QualityFilter min_num_sentences): at least 5 sentences.
    min_sentences: int = 5
    # C4 drops pages with "lorem ipsum" and pages with a curly bracket (code); OmniCorpus names lorem ipsum too.
    # C4's line rules (javascript, policy notices, short lines) are paragraph rules here (filter.paragraphs).


class C4Filter(FilterStage):
    name = "filter.c4"
    reasons = C4Config.RULES
    signals = {"sentences": "int32"}

    def process(self, document: Document) -> Document | str:
        text = document.text
        sentences = measure.sentence_count(text)
        document.signals["sentences"] = sentences
        checks = (
            ("lorem_ipsum", "lorem ipsum" in text.lower()),
            ("curly_bracket", "{" in text),
            ("too_few_sentences", sentences < self.config.min_sentences),
        )
        return first_failure(self.config, checks) or document
