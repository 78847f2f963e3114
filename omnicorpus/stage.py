"""The stage contract: a pure per-document transform that returns the document or a declared reason.

A stage never does I/O and never imports Ray, so the same object runs in a loop, in a Ray task and in a
unit test. Heavy state (models, indexes) is built in `setup()`, once per worker, on first use.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Iterable, TypeVar

from omnicorpus import schema
from omnicorpus.document import Document

log = logging.getLogger(__name__)

ConfigT = TypeVar("ConfigT")


@dataclass(frozen=True, kw_only=True)
class StageConfig:
    enabled: bool = True


class Stage(Generic[ConfigT]):
    """Subclasses set `name`, `reasons`, `signals` and implement `process`.

    `process` returns the (possibly edited) document, or a short rule name from `reasons`, which becomes the
    drop reason "<name>.<rule>". Elements it removes go through `Document.remove_slot` so they are recorded.
    """

    name: ClassVar[str]
    reasons: ClassVar[tuple[str, ...]] = ()
    signals: ClassVar[dict[str, str]] = {}

    def __init__(self, config: ConfigT):
        self.config = config
        self._ready = False

    def setup(self) -> None:
        """Load heavy state. Called once before the first document."""

    def process(self, item: Any) -> Document | str:
        raise NotImplementedError

    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def reason_code(self, rule: str) -> str:
        if rule not in self.reasons:
            raise ValueError(f"stage {self.name} returned undeclared rule {rule!r}; declared: {self.reasons}")
        return f"{self.name}.{rule}"

    @classmethod
    def check_declared(cls) -> None:
        """Every rule of the stage must be listed in schemas/drop-reasons.toml."""
        missing = [rule for rule in cls.reasons if not schema.is_declared_reason(f"{cls.name}.{rule}")]
        if missing:
            raise schema.ContractError(
                f"stage {cls.name} declares reasons missing from schemas/drop-reasons.toml: {missing}"
            )


@dataclass
class StageStats:
    """The funnel of one stage: input == kept + sum(dropped)."""

    input: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    removed: Counter = field(default_factory=Counter)  # element-level removals by reason

    def add(self, other: "StageStats") -> None:
        self.input += other.input
        self.kept += other.kept
        self.dropped.update(other.dropped)
        self.removed.update(other.removed)

    def check(self, name: str) -> None:
        if self.input != self.kept + sum(self.dropped.values()):
            raise AssertionError(
                f"stage {name}: input {self.input} != kept {self.kept} + dropped {sum(self.dropped.values())}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "removed_elements": dict(sorted(self.removed.items())),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "StageStats":
        return cls(data["input"], data["kept"], Counter(data["dropped"]), Counter(data.get("removed_elements", {})))


def run_stage(stage: Stage, item: Any, stats: StageStats, on_error_document) -> tuple[Document | None, Document | None]:
    """Apply one stage to one item. Returns (kept document, rejected document); exactly one is set.

    `on_error_document(item)` builds the reject row for an item that never became a document (a raw page).
    """
    stats.input += 1
    removed_before = len(item.removed) if isinstance(item, Document) else 0
    try:
        stage.ensure_setup()
        result = stage.process(item)
    except Exception as exc:  # a bad record: an error row, and the unit goes on
        log.debug("stage %s failed on a record", stage.name, exc_info=True)
        document = item if isinstance(item, Document) else on_error_document(item)
        # An exception may name what went wrong (e.g. a timeout): error.<stage>.<error_code>.
        code = getattr(exc, "error_code", None)
        document.drop_reason = f"error.{stage.name}.{code}" if code else f"error.{stage.name}"
        document.error = f"{type(exc).__name__}: {exc}"[:2000]
        stats.dropped[document.drop_reason] += 1
        return None, document
    if isinstance(result, str):
        document = item if isinstance(item, Document) else on_error_document(item)
        document.drop_reason = stage.reason_code(result)
        stats.dropped[document.drop_reason] += 1
        # Elements the stage removed before dropping the document are in its `removed` column: count them too.
        stats.removed.update(element["reason"] for element in document.removed[removed_before:])
        return None, document
    if isinstance(result, Document):
        stats.removed.update(element["reason"] for element in result.removed[removed_before:])
    stats.kept += 1
    return result, None


# Documents pass the stages in batches of this many, one stage over the whole batch before the next: a stage's
# model and tables stay in the CPU cache across the batch (fastText language ID: 1.7 ms a document between two
# extractions, 0.7 ms batched; docs/benchmarks.md). Outputs do not depend on it: rows keep their input order.
BATCH_DOCS = 64


def run_batch(
    stages: Iterable[Stage], numbered: list[tuple[int, Any]], stats: dict[str, StageStats], on_error_document=None
) -> tuple[list[tuple[int, Document]], list[tuple[int, Document]]]:
    """Run (number, item) pairs through stages, a stage at a time; returns (kept, rejected) pairs, kept in input
    order and rejected in the order of the stages that dropped them (sort by number for input order)."""
    survivors, rejected = numbered, []
    for stage in stages:
        passed = []
        for number, item in survivors:
            current, reject = run_stage(stage, item, stats.setdefault(stage.name, StageStats()), on_error_document)
            if reject is not None:
                rejected.append((number, reject))
            else:
                passed.append((number, current))
        survivors = passed
    return survivors, rejected


def run_stages(
    stages: Iterable[Stage], documents: Iterable[Document], stats: dict[str, StageStats]
) -> tuple[list[Document], list[Document]]:
    """Run documents through stages in order (in batches of BATCH_DOCS); returns (kept, rejected), each in the
    order of `documents`."""
    kept, rejected = [], []
    stages = list(stages)
    numbered = list(enumerate(documents))
    for start in range(0, len(numbered), BATCH_DOCS):
        passed, dropped = run_batch(stages, numbered[start:start + BATCH_DOCS], stats)
        kept.extend(document for _, document in passed)
        rejected.extend(document for _, document in sorted(dropped, key=lambda pair: pair[0]))
    return kept, rejected
