"""Document rules of the detail phase, measured on what is left after paragraph removal and image filtering.

OmniCorpus run.py (human_feedback_textfiltering) checks the remaining text of each document: word count, stop
words, words per image, paragraph lengths; OBELICS bounds the number of images (Table 3: 1-30).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omnicorpus.document import Document
from omnicorpus.filters import text as measure
from omnicorpus.filters.base import FilterConfig, FilterStage, check_bounds, check_range, record_signals
from omnicorpus.filters.quality import first_failure


@dataclass(frozen=True, kw_only=True)
class DocumentRulesConfig(FilterConfig):
    RULES: ClassVar[tuple[str, ...]] = (
        "too_few_words", "too_many_words", "few_stop_words", "stop_word_ratio", "few_words_per_image",
        "too_few_images", "too_many_images", "short_paragraphs",
    )
    SECTION: ClassVar[str] = "filter.document"
    # OmniCorpus run.py: 50-100,000 words (the Gopher bounds, again after paragraph removal).
    min_words: int = 50
    max_words: int = 100_000
    # OmniCorpus run.py: at least 2 stop words (its list is Gopher's plus is/are/am; per language here).
    min_stop_words: int = 2
    # OBELICS Table 3, document level: stop-word ratio at least 0.35 (English list; other languages skip it).
    min_stop_word_ratio: float = 0.35
    stop_word_ratio_languages: tuple[str, ...] = ("en",)
    # OmniCorpus run.py: drop when there are more than 2 images and fewer than 50 words per image.
    words_per_image_min_images: int = 3
    min_words_per_image: float = 50.0
    # OBELICS Table 3: 1-30 images per document.
    min_images: int = 1
    max_images: int = 30
    # OmniCorpus check_paragraph_lengths: drop when the longest paragraph has fewer than 35 words and the mean
    # paragraph fewer than 12.
    short_paragraphs_max_words: int = 35
    short_paragraphs_mean_words: float = 12.0

    def __post_init__(self):
        super().__post_init__()
        check_range(self.SECTION, "min_stop_word_ratio", self.min_stop_word_ratio, 0.0, 1.0)
        check_bounds(self, "min_words", "max_words")
        check_bounds(self, "min_images", "max_images")


class DocumentRules(FilterStage):
    name = "filter.document"
    reasons = DocumentRulesConfig.RULES
    signals = {"final_words": "int64", "final_stop_words": "int32", "final_stop_word_ratio": "float32",
               "final_images": "int32", "words_per_image": "float32", "longest_paragraph_words": "int32",
               "mean_paragraph_words": "float32"}

    def process(self, document: Document) -> Document | str:
        config = self.config
        text = document.text
        # The words of the text are those of its paragraphs (no word spans the blank line between two): one pass.
        paragraph_tokens = [measure.words(block) for block in measure.paragraphs(text)]
        tokens = [token for block in paragraph_tokens for token in block]
        count = len(tokens)
        images = document.num_images
        paragraph_words = [len(block) for block in paragraph_tokens] or [0]
        stop_words = measure.stop_word_count(document.language, tokens)
        ratio_applies = document.language in config.stop_word_ratio_languages
        values = {
            "final_words": count,
            "final_stop_words": stop_words,
            "final_stop_word_ratio": measure.english_stop_word_ratio(tokens) if ratio_applies else None,
            "final_images": images,
            "words_per_image": count / images if images else None,
            "longest_paragraph_words": max(paragraph_words),
            "mean_paragraph_words": sum(paragraph_words) / len(paragraph_words),
        }
        record_signals(document, values)
        checks = (
            ("too_few_words", count < config.min_words),
            ("too_many_words", count > config.max_words),
            ("few_stop_words", stop_words is not None and stop_words < config.min_stop_words),
            ("stop_word_ratio", ratio_applies and values["final_stop_word_ratio"] < config.min_stop_word_ratio),
            ("few_words_per_image", images >= config.words_per_image_min_images
             and values["words_per_image"] < config.min_words_per_image),
            ("too_few_images", images < config.min_images),
            ("too_many_images", images > config.max_images),
            ("short_paragraphs", values["longest_paragraph_words"] < config.short_paragraphs_max_words
             and values["mean_paragraph_words"] < config.short_paragraphs_mean_words),
        )
        return first_failure(config, checks) or document
