"""Parquet files of documents: atomic writes with the run's metadata, row groups capped by docs and bytes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from omnicorpus import schema
from omnicorpus.document import Document, to_table
from omnicorpus.io.paths import temporary_path


def document_bytes(document: Document) -> int:
    """Approximate encoded size of a document: text characters plus image bytes."""
    return sum(len(text) for text in document.texts if text) + sum(len(b) for b in document.image_bytes if b)


def row_group_bounds(sizes: Sequence[int], max_rows: int, max_bytes: int) -> list[tuple[int, int]]:
    """Split rows into consecutive groups of at most max_rows rows and (unless one row is larger) max_bytes."""
    bounds, start, total = [], 0, 0
    for index, size in enumerate(sizes):
        if index > start and (index - start >= max_rows or total + size > max_bytes):
            bounds.append((start, index))
            start, total = index, 0
        total += size
    if start < len(sizes):
        bounds.append((start, len(sizes)))
    return bounds


def file_metadata(config_hash: str, package_version: str) -> dict[bytes, bytes]:
    return {
        schema.META_SCHEMA_VERSION: str(schema.SCHEMA_VERSION).encode(),
        schema.META_CONFIG_HASH: config_hash.encode(),
        schema.META_PACKAGE_VERSION: package_version.encode(),
    }


def write_documents(
    path: str | Path,
    documents: list[Document],
    arrow_schema: pa.Schema,
    *,
    metadata: dict[bytes, bytes],
    row_group_docs: int = 1000,
    row_group_bytes: int = 128 * 1024 * 1024,
    compression: str = "zstd",
    kept: bool | None = None,
) -> int:
    """Validate (when `kept` is given) and write documents atomically. Returns the file size in bytes."""
    table = to_table(documents, arrow_schema)
    if kept is not None:
        schema.validate_table(table, kept=kept)
    sizes = [document_bytes(document) for document in documents]
    return write_table(path, table, metadata=metadata, bounds=row_group_bounds(sizes, row_group_docs, row_group_bytes),
                       compression=compression)


def write_table(
    path: str | Path,
    table: pa.Table,
    *,
    metadata: dict[bytes, bytes],
    bounds: Iterable[tuple[int, int]] | None = None,
    compression: str = "zstd",
) -> int:
    path = Path(path)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    temporary = temporary_path(path)
    with pq.ParquetWriter(temporary, table.schema, compression=None if compression == "none" else compression) as writer:
        if table.num_rows == 0:
            writer.write_table(table)
        for start, stop in bounds if bounds is not None else [(0, table.num_rows)]:
            writer.write_table(table.slice(start, stop - start), row_group_size=max(stop - start, 1))
    os.replace(temporary, path)
    return path.stat().st_size


def read_rows(path: str | Path, start: int, stop: int, columns: list[str] | None = None) -> pa.Table:
    """Rows [start, stop) of a Parquet file, reading only the row groups that hold them."""
    handle = pq.ParquetFile(path)
    groups, first_row, offset = [], None, 0
    for index in range(handle.num_row_groups):
        rows = handle.metadata.row_group(index).num_rows
        if offset + rows > start and offset < stop:
            groups.append(index)
            first_row = offset if first_row is None else first_row
        offset += rows
    if not groups:
        return handle.schema_arrow.empty_table() if columns is None else handle.read(columns=columns).slice(0, 0)
    table = handle.read_row_groups(groups, columns=columns)
    return table.slice(start - first_row, stop - start)


def read_documents(path: str | Path) -> list[Document]:
    from omnicorpus.document import from_table

    return from_table(pq.read_table(path))
