"""`omnicorpus show OUT`: documents in reading order in the terminal, images as `[image: url WxH]`."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TextIO

import pyarrow.parquet as pq

from omnicorpus.document import Document

# Everything but the pixels: `show` never reads image_bytes.
_COLUMNS = ["id", "url", "title", "language", "texts", "images", "image_info", "removed", "signals", "drop_reason",
            "error"]


def iter_documents(output: str | Path, rejects: bool):
    folder = Path(output) / ("rejects" if rejects else "shards")
    paths = sorted(folder.glob("*.parquet"))
    if not paths:
        raise FileNotFoundError(f"no Parquet files in {folder}")
    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=256, columns=_COLUMNS):
            for row in batch.to_pylist():
                row.setdefault("image_bytes", [None] * len(row["texts"]))
                yield Document.from_row(row)


def format_document(document: Document, width: int = 100) -> str:
    lines = [f"=== {document.id}  {document.url}"]
    if document.title:
        lines.append(f"    title: {document.title}")
    if document.language:
        lines.append(f"    language: {document.language}")
    if document.drop_reason:
        lines.append(f"    dropped: {document.drop_reason}" + (f" ({document.error})" if document.error else ""))
    if document.signals.get("duplicate_of"):
        lines.append(f"    duplicate of: {document.signals['duplicate_of']} (the copy kept)")
    lines.append("")
    for text, image, info in zip(document.texts, document.images, document.image_info):
        if text is not None:
            for paragraph in text.split("\n"):
                lines.extend(textwrap.wrap(paragraph, width) or [""])
        else:
            info = info or {}
            size = f" {info['width']}x{info['height']}" if info.get("width") else ""
            status = "" if info.get("status") == "ok" else f" ({info.get('status')})"
            lines.append(f"[image: {image}{size}{status}]")
    for element in document.removed:
        what = element["text"] or element["image_url"] or ""
        lines.append(f"  - removed at {element['position']} ({element['reason']}): {what[:80]}")
    return "\n".join(lines)


def show_documents(output: str | Path, *, limit: int, rejects: bool, document_id: str | None, width: int,
                   stream: TextIO) -> int:
    shown = 0
    for document in iter_documents(output, rejects):
        if document_id is not None and document.id != document_id:
            continue
        print(format_document(document, width), file=stream, end="\n\n")
        shown += 1
        if shown >= limit:
            break
    if document_id is not None and not shown:
        raise FileNotFoundError(f"no document with id {document_id} in {output}")
    return shown
