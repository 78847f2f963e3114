"""The per-document image stages: pure transforms over documents, given what the phase learned about URLs.

`ImagesStage` applies the outcome of each image URL (bytes and facts, or a failure status) to the document's
slots, removes images that failed or were filtered, removes repeats of an image inside the document, and
drops documents left with fewer than `images.min_images` images. `ImageFrequencyStage` records `dup_count`
and removes images that appear in too many documents of the run. Neither does I/O: the phase functions in
`omnicorpus.images.phase` read the stores and the counts and hand them over.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from omnicorpus import schema
from omnicorpus.document import Document
from omnicorpus.images.config import ImageFrequencyConfig, ImagesConfig
from omnicorpus.images.decode import ImageFacts, declared_verdict, url_verdict
from omnicorpus.images.status import DUPLICATE_IN_DOCUMENT, OK, STATUSES, UNRESOLVED
from omnicorpus.stage import Stage


@dataclass(frozen=True)
class ImageOutcome:
    """What became of one image URL: a status, where the bytes came from, the image_info facts, the bytes."""

    status: str
    source: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    data: bytes | None = None

    @classmethod
    def from_facts(cls, facts: ImageFacts, source: str) -> "ImageOutcome":
        return cls(facts.status, source, facts.image_info(), facts.data if facts.status == OK else None)


NOT_FETCHED = ImageOutcome("not_fetched")


def prefilter(url: str, info: Mapping[str, Any] | None, config: ImagesConfig) -> str | None:
    """The verdict on an image before any byte is read (URL ban words, declared size), or None."""
    info = info or {}
    return url_verdict(url, config) or declared_verdict(info.get("declared_width"), info.get("declared_height"),
                                                        config)


class _ImageStage(Stage):
    # Element-level reasons this stage writes into `removed`; declared in schemas/drop-reasons.toml too.
    removal_rules: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_declared(cls) -> None:
        super().check_declared()
        missing = [rule for rule in cls.removal_rules if not schema.is_declared_reason(f"{cls.name}.{rule}")]
        if missing:
            raise schema.ContractError(
                f"stage {cls.name} removes elements with reasons missing from schemas/drop-reasons.toml: {missing}"
            )


class ImagesStage(_ImageStage):
    name = "images"
    reasons = ("too_few_images",)
    removal_rules = tuple(status for status in STATUSES if status != OK) + (DUPLICATE_IN_DOCUMENT,)

    def __init__(self, config: ImagesConfig, outcomes: Mapping[str, ImageOutcome]):
        super().__init__(config)
        self.outcomes = outcomes
        self.status_counts: Counter = Counter()  # image slots by status, over every document processed

    def process(self, document: Document) -> Document | str:
        removals: list[tuple[int, str]] = []
        seen: set[tuple[str, str]] = set()
        for slot in document.image_slots():
            url, info = document.images[slot], document.image_info[slot]
            verdict = prefilter(url, info, self.config)
            outcome = ImageOutcome(verdict) if verdict else self.outcomes.get(url, NOT_FETCHED)
            self.status_counts[outcome.status] += 1
            if outcome.status == OK:
                identities = {(kind, value) for kind, value in (("url", url), ("sha256", outcome.info.get("sha256")),
                                                                ("phash", outcome.info.get("phash"))) if value}
                if identities & seen:
                    removals.append((slot, DUPLICATE_IN_DOCUMENT))
                    continue
                seen |= identities
                info.update(outcome.info, source=outcome.source, status=OK)
                document.image_bytes[slot] = outcome.data
            elif outcome.status in UNRESOLVED and self.config.keep_unresolved:
                info.update(outcome.info, source=outcome.source, status=outcome.status)
                document.image_bytes[slot] = None
            else:
                removals.append((slot, outcome.status))
        _remove_slots(document, removals)
        if document.num_images < self.config.min_images:
            return "too_few_images"
        return document


def _remove_slots(document: Document, removals: list[tuple[int, str]], prefix: str = "images") -> None:
    """Remove slots (in page order) with reasons `<prefix>.<rule>`, recorded in page order.

    Last slot first: a removal only merges texts at and after its own position, so every recorded position
    is the slot's index in the document as it entered the stage.
    """
    start = len(document.removed)
    for slot, rule in reversed(removals):
        document.remove_slot(slot, f"{prefix}.{rule}")
    document.removed[start:] = document.removed[start:][::-1]


def frequency_key(url: str, info: Mapping[str, Any] | None, key: str) -> str:
    """The identity counted across documents: `<key>:<value>`, or the URL when the image has no such value."""
    value = url if key == "url" else (info or {}).get(key)
    return f"{key}:{value}" if value else f"url:{url}"


class ImageFrequencyStage(_ImageStage):
    name = "image_frequency"
    reasons = ("too_few_images",)
    removal_rules = ("too_frequent",)

    def __init__(self, config: ImageFrequencyConfig, counts: Mapping[str, int], min_images: int):
        super().__init__(config)
        self.counts = counts
        self.min_images = min_images

    def process(self, document: Document) -> Document | str:
        frequent = []
        for slot in document.image_slots():
            info = document.image_info[slot]
            # A key absent from the counts was seen in one document only (the count step keeps repeats).
            info["dup_count"] = self.counts.get(frequency_key(document.images[slot], info, self.config.key), 1)
            if info["dup_count"] > self.config.max_documents:
                frequent.append(slot)
        _remove_slots(document, [(slot, "too_frequent") for slot in frequent], prefix=self.name)
        if document.num_images < self.min_images:
            return "too_few_images"
        return document
