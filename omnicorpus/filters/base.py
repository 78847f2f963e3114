"""What every filter stage shares: a config whose rules can be skipped one by one, and the check that every
rule (document drops and paragraph removals alike) is declared in schemas/drop-reasons.toml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from omnicorpus import schema
from omnicorpus.document import TEXT_BLOCK_SEPARATOR
from omnicorpus.stage import Stage, StageConfig


@dataclass(frozen=True, kw_only=True)
class FilterConfig(StageConfig):
    """`enabled = false` switches the whole stage off; `skip_rules` switches single rules off."""

    RULES: ClassVar[tuple[str, ...]] = ()
    SECTION: ClassVar[str] = ""
    skip_rules: tuple[str, ...] = ()

    def __post_init__(self):
        unknown = sorted(set(self.skip_rules) - set(self.RULES))
        if unknown:
            raise ValueError(f"{self.SECTION}.skip_rules has unknown rules {unknown}; allowed: {list(self.RULES)}")

    def active(self, rule: str) -> bool:
        return rule not in self.skip_rules


def check_range(section: str, name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{section}.{name} must be in [{low}, {high}], got {value}")


def check_bounds(config, low: str, high: str) -> None:
    """A lower bound must not exceed its upper bound (min_words <= max_words)."""
    if getattr(config, low) > getattr(config, high):
        raise ValueError(f"{config.SECTION}.{low} ({getattr(config, low)}) > {high} ({getattr(config, high)})")


def record_signals(document, values: dict) -> None:
    """Measured values into `signals`; None means "not measured for this document" and is left out."""
    document.signals.update({key: value for key, value in values.items() if value is not None})


class FilterStage(Stage):
    """A stage whose paragraph removals are declared too (`removal_reasons`, recorded as "<name>.<rule>")."""

    removal_reasons: ClassVar[tuple[str, ...]] = ()

    def removal_code(self, rule: str) -> str:
        if rule not in self.removal_reasons:
            raise ValueError(f"stage {self.name} removed a paragraph for undeclared rule {rule!r}")
        return f"{self.name}.{rule}"

    @classmethod
    def check_declared(cls) -> None:
        super().check_declared()
        missing = [rule for rule in cls.removal_reasons if not schema.is_declared_reason(f"{cls.name}.{rule}")]
        if missing:
            raise schema.ContractError(
                f"stage {cls.name} declares removal reasons missing from schemas/drop-reasons.toml: {missing}"
            )


# ---------------------------------------------------------------------------------------------------------
# Paragraphs of a document (blocks of its text slots) and their removal


@dataclass(frozen=True)
class Paragraph:
    position: int  # the text slot
    index: int  # the block within the slot
    text: str
    next_to_image: bool  # first block after an image slot or last block before one

    def is_caption(self, max_words: int) -> bool:
        from omnicorpus.filters.text import words

        return self.next_to_image and len(words(self.text)) <= max_words


def document_paragraphs(document) -> list[Paragraph]:
    result = []
    images = document.images
    for position, text in document.text_slots():
        blocks = text.split(TEXT_BLOCK_SEPARATOR)
        last = len(blocks) - 1
        for index, block in enumerate(blocks):
            after_image = index == 0 and position > 0 and images[position - 1] is not None
            before_image = index == last and position + 1 < len(images) and images[position + 1] is not None
            result.append(Paragraph(position, index, block, after_image or before_image))
    return result


def remove_paragraphs(document, removals: list[tuple[Paragraph, str]]) -> None:
    """Remove paragraphs (with their reason codes), last first, so each recorded position is the slot it held
    in the document the stage received."""
    for paragraph, reason in sorted(removals, key=lambda item: (item[0].position, item[0].index), reverse=True):
        document.remove_paragraph(paragraph.position, paragraph.index, reason)
