"""Paragraph rules of the detail phase: boilerplate lines, OmniCorpus human-feedback rules, OBELICS cutoffs.

A paragraph is a block of a text slot (blocks are separated by a blank line). A removed paragraph is recorded in
`removed` with its slot, text and reason; a slot left empty disappears, so the interleaving invariants hold.

Two kinds of rule, checked in the order of `RULES` (the first that fires names the removal):
- content rules (cookie and policy notices, sign-in and "read more" calls, share counters, advertisement
  labels, download links, image credits, bare links) look at what a paragraph says;
- shape rules (too few or too many words, upper case, digits, special characters, repetition, stop words,
  punctuation) look at its form. Short captions next to an image are protected from the shape rules, as the
  OmniCorpus rules protect text near a `<graphic>` (human_feedback_textfiltering, immutable=True): a caption is
  short, often has no verb and may be all digits or capitals.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import ClassVar

from omnicorpus.document import Document
from omnicorpus.filters import text as measure
from omnicorpus.filters.base import (FilterConfig, FilterStage, Paragraph, check_bounds, check_range,
                                     document_paragraphs, remove_paragraphs)

CONTENT_RULES = ("policy_notice", "javascript_notice", "call_to_action", "share_counter", "read_more",
                 "advertisement", "download_link", "image_credit", "link_only")
SHAPE_RULES = ("too_few_words", "too_many_words", "uppercase", "numeric", "special_characters",
               "character_repetition", "word_repetition", "stop_word_ratio", "no_punctuation")

_URL_OR_EMAIL = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+\.\w+", re.IGNORECASE)
_COUNTER_WORDS = ("likes?", "followers?", "shares?", "comments?", "views?", "retweets?", "reactions?",
                  "subscribers?", "votes?", "replies", "reply")
# A number (1,234 / 1.2k / 3M) followed by a counter word, ending the paragraph (OmniCorpus
# social_media_counter_discard: paragraphs that end with likes/followers/share/comments).
_SHARE_COUNTER = re.compile(rf"\d[\d.,]*\s*[kKmM]?\s*(?:{'|'.join(_COUNTER_WORDS)})\W*$", re.IGNORECASE)


def _default_policy_phrases() -> tuple[str, ...]:
    # C4 / datatrove C4QualityFilter POLICY_SUBSTRINGS, plus the cookie-banner wording that C4 does not list.
    return ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies",
            "accept cookies", "accept all cookies", "cookie settings", "cookie consent")


def _default_call_to_action() -> tuple[str, ...]:
    # OmniCorpus short_discard: sign-in, sign up, read more, item in cart; the rest are the same kind of line.
    return ("sign in", "sign-in", "sign up", "log in", "login", "register", "subscribe", "newsletter",
            "read more", "item in cart", "items in cart", "add to cart", "shopping cart")


def _default_read_more() -> tuple[str, ...]:
    # OmniCorpus readme_discard: teasers ending in "read more / continue reading".
    return ("read more", "continue reading", "read the full story", "read full article", "read the rest",
            "keep reading", "[...]", "[…]", "weiterlesen", "阅读全文", "查看全文")


def _default_advertisement() -> tuple[str, ...]:
    # OmniCorpus advertisement_discard ("advertisement"); the labels ad slots carry in the sample languages.
    return ("advertisement", "advertisements", "advertising", "sponsored", "sponsored content", "ad", "ads",
            "anzeige", "werbung", "广告")


def _default_download() -> tuple[str, ...]:
    # OmniCorpus filter_download_links ("For details on the", "the link is") and download-link lines.
    return ("for details on the", "the link is", "click here", "download here", "download now", "download link",
            "free download", "download the pdf", "download pdf")


def _default_image_credit() -> tuple[str, ...]:
    # OmniCorpus image_caption_discard: short text next to an image naming download/getty/image/photo/source;
    # narrowed to credit wording, since "photo" alone is in many real captions (its false-positive rate was
    # 5.8 %, paper Table 11).
    return ("getty images", "shutterstock", "istock", "photo credit", "image credit", "image source",
            "photo source", "photo:", "image:", "source:", "credit:", "foto:", "bild:", "quelle:", "download")


@dataclass(frozen=True, kw_only=True)
class ParagraphRulesConfig(FilterConfig):
    RULES: ClassVar[tuple[str, ...]] = CONTENT_RULES + SHAPE_RULES
    SECTION: ClassVar[str] = "filter.paragraphs"
    # Two OBELICS cutoffs are off unless asked for: on the shared article pages they removed real article
    # paragraphs (quotes with a repeated phrase; plain sentences with a 0.26 stop-word ratio); docs/filters.md.
    skip_rules: tuple[str, ...] = ("character_repetition", "stop_word_ratio")
    # Content rules apply to paragraphs of at most this many words: C4 removes single lines with these words,
    # and a block here can be a whole paragraph that merely mentions "javascript" or "privacy policy" (ours).
    notice_max_words: int = 60
    policy_phrases: tuple[str, ...] = field(default_factory=_default_policy_phrases)
    # OmniCorpus short_discard: at most 10 words.
    call_to_action_max_words: int = 10
    call_to_action_phrases: tuple[str, ...] = field(default_factory=_default_call_to_action)
    read_more_phrases: tuple[str, ...] = field(default_factory=_default_read_more)
    advertisement_labels: tuple[str, ...] = field(default_factory=_default_advertisement)
    download_phrases: tuple[str, ...] = field(default_factory=_default_download)
    # OmniCorpus image_caption_discard: fewer than 8 words.
    image_credit_max_words: int = 7
    image_credit_phrases: tuple[str, ...] = field(default_factory=_default_image_credit)
    # OBELICS Table 3, paragraph level: 4-1000 words.
    min_words: int = 4
    max_words: int = 1000
    # OmniCorpus uppercase_discard / numerical_discard: more than 80 % of the non-space characters.
    max_uppercase_ratio: float = 0.8
    max_digit_ratio: float = 0.8
    # OBELICS Table 3, paragraph level: special characters 0.3, character 10-gram repetition 0.1, word 5-gram
    # repetition 0.1, stop-word ratio at least 0.3, punctuation ratio at least 0.001 from 12 words on.
    max_special_character_ratio: float = 0.3
    character_repetition_n: int = 10
    max_character_repetition_ratio: float = 0.1
    word_repetition_n: int = 5
    max_word_repetition_ratio: float = 0.1
    min_stop_word_ratio: float = 0.3
    # OBELICS calibrated the stop-word ratio on English with an English list; other languages skip the rule.
    stop_word_ratio_languages: tuple[str, ...] = ("en",)
    min_punctuation_ratio: float = 0.001
    punctuation_min_words: int = 12
    # Captions: a paragraph next to an image with at most this many words is exempt from the shape rules
    # (OmniCorpus protects text within 10 lines of an image; a caption line is the close equivalent here).
    protect_captions: bool = True
    caption_max_words: int = 20

    def __post_init__(self):
        super().__post_init__()
        for name in ("max_uppercase_ratio", "max_digit_ratio", "max_special_character_ratio",
                     "max_character_repetition_ratio", "max_word_repetition_ratio", "min_stop_word_ratio",
                     "min_punctuation_ratio"):
            check_range(self.SECTION, name, getattr(self, name), 0.0, 1.0)
        check_bounds(self, "min_words", "max_words")


@dataclass
class _Measures:
    """What the rules look at, measured once per paragraph."""

    text: str
    lower: str
    words: list[str]
    non_space: int
    next_to_image: bool

    @classmethod
    def of(cls, paragraph: Paragraph) -> "_Measures":
        text = paragraph.text.strip()
        return cls(text, text.lower(), measure.words(text), sum(not c.isspace() for c in text),
                   paragraph.next_to_image)


class ParagraphRules(FilterStage):
    """Removes boilerplate and malformed paragraphs; drops a document left with no text."""

    name = "filter.paragraphs"
    reasons = ("no_text_left",)
    removal_reasons = ParagraphRulesConfig.RULES

    def process(self, document: Document) -> Document | str:
        removals = []
        for paragraph in document_paragraphs(document):
            rule = self.verdict(paragraph, document.language)
            if rule is not None:
                removals.append((paragraph, self.removal_code(rule)))
        remove_paragraphs(document, removals)
        if all(text is None for text in document.texts):
            return "no_text_left"
        return document

    def verdict(self, paragraph: Paragraph, language: str | None) -> str | None:
        """The first rule that removes this paragraph, or None to keep it."""
        config = self.config
        m = _Measures.of(paragraph)
        for rule in CONTENT_RULES:
            if config.active(rule) and getattr(self, f"_{rule}")(m):
                return rule
        if config.protect_captions and paragraph.is_caption(config.caption_max_words):
            return None
        for rule in SHAPE_RULES:
            if config.active(rule) and getattr(self, f"_{rule}")(m, language):
                return rule
        return None

    # -- content rules ---------------------------------------------------------------------------------

    def _policy_notice(self, m: _Measures) -> bool:
        return len(m.words) <= self.config.notice_max_words and _contains_any(m.lower, self.config.policy_phrases)

    def _javascript_notice(self, m: _Measures) -> bool:
        # C4: lines mentioning javascript ("please enable JavaScript") are removed.
        return len(m.words) <= self.config.notice_max_words and "javascript" in m.lower

    def _call_to_action(self, m: _Measures) -> bool:
        return (len(m.words) <= self.config.call_to_action_max_words
                and _contains_any(m.lower, self.config.call_to_action_phrases))

    def _share_counter(self, m: _Measures) -> bool:
        return len(m.words) <= self.config.call_to_action_max_words and bool(_SHARE_COUNTER.search(m.text))

    def _read_more(self, m: _Measures) -> bool:
        tail = m.lower.rstrip(" .…:»>→!\u00a0")
        return any(tail.endswith(phrase.rstrip(" .…")) for phrase in self.config.read_more_phrases)

    def _advertisement(self, m: _Measures) -> bool:
        label = re.sub(r"[\W_]+", " ", m.lower).strip()
        return label in self.config.advertisement_labels

    def _download_link(self, m: _Measures) -> bool:
        return len(m.words) <= self.config.notice_max_words and _contains_any(m.lower, self.config.download_phrases)

    def _image_credit(self, m: _Measures) -> bool:
        return (m.next_to_image and len(m.words) <= self.config.image_credit_max_words
                and _contains_any(m.lower, self.config.image_credit_phrases))

    def _link_only(self, m: _Measures) -> bool:
        return bool(_URL_OR_EMAIL.search(m.text)) and not _URL_OR_EMAIL.sub("", m.text).strip(" \n\t|,;·-")

    # -- shape rules -----------------------------------------------------------------------------------

    def _too_few_words(self, m: _Measures, language) -> bool:
        return len(m.words) < self.config.min_words

    def _too_many_words(self, m: _Measures, language) -> bool:
        return len(m.words) > self.config.max_words

    def _uppercase(self, m: _Measures, language) -> bool:
        return m.non_space > 0 and sum(c.isupper() for c in m.text) / m.non_space > self.config.max_uppercase_ratio

    def _numeric(self, m: _Measures, language) -> bool:
        return m.non_space > 0 and sum(c.isdigit() for c in m.text) / m.non_space > self.config.max_digit_ratio

    def _special_characters(self, m: _Measures, language) -> bool:
        return (m.non_space > 0 and sum(_is_special(c) for c in m.text) / m.non_space
                > self.config.max_special_character_ratio)

    def _character_repetition(self, m: _Measures, language) -> bool:
        ratio = measure.character_repetition_ratio(m.text, self.config.character_repetition_n)
        return ratio > self.config.max_character_repetition_ratio

    def _word_repetition(self, m: _Measures, language) -> bool:
        return measure.word_repetition_ratio(m.words, self.config.word_repetition_n) > \
            self.config.max_word_repetition_ratio

    def _stop_word_ratio(self, m: _Measures, language) -> bool:
        return (language in self.config.stop_word_ratio_languages
                and measure.english_stop_word_ratio(m.words) < self.config.min_stop_word_ratio)

    def _no_punctuation(self, m: _Measures, language) -> bool:
        if len(m.words) < self.config.punctuation_min_words:
            return False
        punctuation = sum(unicodedata.category(c).startswith("P") for c in m.text)
        return punctuation / len(m.text) < self.config.min_punctuation_ratio


def _contains_any(text: str, phrases: tuple[str, ...]) -> bool:
    return any(_contains_phrase(text, phrase) for phrase in phrases)


def _contains_phrase(text: str, phrase: str) -> bool:
    """A phrase as whole words ("ad" is not in "read"); phrases ending in punctuation match as written."""
    if not phrase[-1].isalnum() or not phrase[0].isalnum():
        return phrase in text
    index = text.find(phrase)
    while index != -1:
        before = text[index - 1] if index > 0 else " "
        after_index = index + len(phrase)
        after = text[after_index] if after_index < len(text) else " "
        if not before.isalnum() and not after.isalnum():
            return True
        index = text.find(phrase, index + 1)
    return False


def _is_special(char: str) -> bool:
    """OBELICS special characters: punctuation, symbols and emoji (not letters, digits or spaces)."""
    return not (char.isalnum() or char.isspace())
