"""The mark stage: drops the documents the cluster step found to be duplicates, naming the kind and the copy kept."""

from __future__ import annotations

from omnicorpus.dedup.config import DedupConfig
from omnicorpus.dedup.keys import KINDS
from omnicorpus.document import Document
from omnicorpus.stage import Stage


class DedupStage(Stage[DedupConfig]):
    """`losers` maps a document id to (kind, id of the document kept in its cluster)."""

    name = "dedup"
    reasons = KINDS
    signals = {"duplicate_of": "string"}

    def __init__(self, config: DedupConfig, losers: dict[str, tuple[str, str]] | None = None):
        super().__init__(config)
        self.losers = losers or {}

    def process(self, document: Document) -> Document | str:
        found = self.losers.get(document.id)
        if found is None:
            return document
        kind, kept = found
        document.signals["duplicate_of"] = kept
        return kind
