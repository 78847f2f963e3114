"""The in-memory document: one row of the contract, with helpers that keep the slot invariants.

Stages receive and return `Document`s. Slots are parallel lists as in the Parquet layout, so converting to
and from Arrow is a plain field copy; the helpers here (`remove_slot`, `normalize_slots`) are how stages edit
a document without breaking "exactly one of text/image per slot, no empty text, no two adjacent texts".
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, fields
from typing import Any, Iterator

import pyarrow as pa

from omnicorpus import schema

IMAGE_INFO_FIELDS = tuple(schema.image_info_fields())
TEXT_BLOCK_SEPARATOR = "\n\n"


def document_id(warc_record_id: str | None, warc_file: str | None = None, offset: int | None = None) -> str:
    """Stable id: 96 bits of sha1 over the WARC record id (or file and offset when there is none)."""
    key = warc_record_id or f"{warc_file}@{offset}"
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:24]


def new_image_info(**values: Any) -> dict[str, Any]:
    unknown = set(values) - set(IMAGE_INFO_FIELDS)
    if unknown:
        raise KeyError(f"unknown image_info fields {sorted(unknown)}; allowed: {IMAGE_INFO_FIELDS}")
    info = dict.fromkeys(IMAGE_INFO_FIELDS)
    info.update(values)
    return info


@dataclass
class Document:
    id: str
    url: str
    domain: str | None = None
    title: str | None = None
    crawl: str | None = None
    fetch_time: dt.datetime | None = None
    warc_file: str | None = None
    warc_record_id: str | None = None
    warc_offset: int | None = None
    warc_length: int | None = None
    texts: list[str | None] = field(default_factory=list)
    images: list[str | None] = field(default_factory=list)
    image_info: list[dict[str, Any] | None] = field(default_factory=list)
    image_bytes: list[bytes | None] = field(default_factory=list)
    language: str | None = None
    language_score: float | None = None
    signals: dict[str, Any] = field(default_factory=dict)
    removed: list[dict[str, Any]] = field(default_factory=list)
    drop_reason: str | None = None
    error: str | None = None

    # -- building --------------------------------------------------------------------------------------

    def append_text(self, text: str) -> None:
        """Add a text block; it joins the previous slot when that one is text too."""
        text = text.strip()
        if not text:
            return
        if self.texts and self.texts[-1] is not None:
            self.texts[-1] = self.texts[-1] + TEXT_BLOCK_SEPARATOR + text
        else:
            self._append_slot(text, None, None, None)

    def append_image(self, url: str, info: dict[str, Any] | None = None, data: bytes | None = None) -> None:
        self._append_slot(None, url, info if info is not None else new_image_info(), data)

    def _append_slot(self, text, image, info, data) -> None:
        self.texts.append(text)
        self.images.append(image)
        self.image_info.append(info)
        self.image_bytes.append(data)

    # -- reading ---------------------------------------------------------------------------------------

    @property
    def num_images(self) -> int:
        return sum(image is not None for image in self.images)

    def text_slots(self) -> Iterator[tuple[int, str]]:
        return ((i, text) for i, text in enumerate(self.texts) if text is not None)

    def image_slots(self) -> Iterator[int]:
        return (i for i, image in enumerate(self.images) if image is not None)

    @property
    def text(self) -> str:
        """All text blocks in order, joined by blank lines (images left out)."""
        return TEXT_BLOCK_SEPARATOR.join(text for _, text in self.text_slots())

    # -- editing ---------------------------------------------------------------------------------------

    def remove_slot(self, position: int, reason: str) -> None:
        """Remove slot `position`, record it in `removed`, and restore the invariants."""
        text, image = self.texts[position], self.images[position]
        self._record_removal(position, "text" if text is not None else "image", reason, text, image)
        for slots in (self.texts, self.images, self.image_info, self.image_bytes):
            del slots[position]
        self.normalize_slots()

    def remove_paragraph(self, position: int, index: int, reason: str) -> None:
        """Remove block `index` of text slot `position`, record it, and restore the invariants.

        A slot left empty disappears. To remove several blocks, go from the last to the first: the positions
        and indexes of the earlier ones then stay valid.
        """
        text = self.texts[position]
        if text is None:
            raise ValueError(f"slot {position} is an image, not text")
        blocks = text.split(TEXT_BLOCK_SEPARATOR)
        paragraph = blocks.pop(index)
        self._record_removal(position, "text", reason, paragraph, None)
        self.texts[position] = TEXT_BLOCK_SEPARATOR.join(blocks)
        self.normalize_slots()

    def _record_removal(self, position, kind, reason, text, image_url) -> None:
        self.removed.append({"position": position, "kind": kind, "reason": reason, "text": text,
                             "image_url": image_url})

    def normalize_slots(self) -> None:
        """Drop empty text slots and merge adjacent ones (after removals or edits)."""
        texts, images, infos, blobs = [], [], [], []
        for text, image, info, blob in zip(self.texts, self.images, self.image_info, self.image_bytes):
            if image is None:
                text = (text or "").strip()
                if not text:
                    continue
                if texts and texts[-1] is not None:
                    texts[-1] = texts[-1] + TEXT_BLOCK_SEPARATOR + text
                    continue
            texts.append(text)
            images.append(image)
            infos.append(info)
            blobs.append(blob)
        self.texts, self.images, self.image_info, self.image_bytes = texts, images, infos, blobs

    # -- Arrow -----------------------------------------------------------------------------------------

    def to_row(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in fields(self)}
        row["signals"] = dict(self.signals)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Document":
        values = {f.name: row.get(f.name) for f in fields(cls)}
        for name in ("texts", "images", "image_info", "image_bytes", "removed"):
            values[name] = list(values[name] or [])
        signals = dict(values["signals"] or {})
        signals.pop("_none", None)
        values["signals"] = {key: value for key, value in signals.items() if value is not None}
        return cls(**values)


def to_table(documents: list[Document], arrow_schema: pa.Schema) -> pa.Table:
    """Build a table with the declared schema (never inferred). Unknown signal fields are an error."""
    allowed = set(schema.signal_fields_of(arrow_schema))
    rows = []
    for document in documents:
        row = document.to_row()
        unknown = set(row["signals"]) - allowed
        if unknown:
            raise schema.ContractError(
                f"document {document.id} has undeclared signal fields {sorted(unknown)}; "
                f"declared: {sorted(allowed)}"
            )
        if not allowed:
            row["signals"] = {"_none": None}
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=arrow_schema)


def from_table(table: pa.Table) -> list[Document]:
    return [Document.from_row(row) for row in table.to_pylist()]
