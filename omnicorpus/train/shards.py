"""Finding shards and their work units (file, row group) from Parquet footers, on local paths or fsspec URLs."""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pyarrow.parquet as pq

from omnicorpus.io.paths import is_url


class ShardError(ValueError):
    """The shards named cannot be used (none found, unreadable footer)."""


@dataclass(frozen=True)
class ShardUnit:
    """One row group of one shard file: the unit of work the readers share out."""

    path: str
    row_group: int
    num_rows: int
    # Index of the unit's first row in the canonical order of all units (files sorted, row groups in order).
    first_row: int


def find_shards(specs: list[str]) -> list[str]:
    """Parquet files named by run folders (OUT, meaning OUT/shards), folders, files, globs or fsspec URLs.

    The order is the order given, folders and globs sorted; duplicates removed. Each spec must match a file.
    """
    found: list[str] = []
    for spec in specs:
        matches = _expand(spec)
        if not matches:
            raise ShardError(f"{spec!r} names no .parquet file (give a run folder, a shards folder, files or a glob)")
        found.extend(matches)
    return list(dict.fromkeys(found))


def _expand(spec: str) -> list[str]:
    if is_url(spec):
        fs, root = fsspec.core.url_to_fs(spec)
        if glob.has_magic(spec):
            return sorted(fs.unstrip_protocol(p) for p in fs.glob(root))
        if fs.isdir(root):
            folder = f"{root.rstrip('/')}/shards" if fs.isdir(f"{root.rstrip('/')}/shards") else root
            return sorted(fs.unstrip_protocol(p) for p in fs.glob(f"{folder.rstrip('/')}/*.parquet"))
        return [spec] if fs.exists(root) else []
    if spec.startswith("file://"):
        spec = spec[len("file://"):]
    if glob.has_magic(spec):
        return sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
    path = Path(spec)
    if path.is_dir():
        folder = path / "shards" if (path / "shards").is_dir() else path
        return sorted(str(p) for p in folder.glob("*.parquet"))
    return [str(path)] if path.is_file() else []


def open_parquet(path: str) -> pq.ParquetFile:
    """A ParquetFile on a local path or any fsspec URL (remote reads coalesce column chunks: pre_buffer)."""
    if is_url(path):
        fs, inner = fsspec.core.url_to_fs(path)
        return pq.ParquetFile(fs.open(inner, "rb"), pre_buffer=True)
    return pq.ParquetFile(path)


def list_units(paths: list[str]) -> list[ShardUnit]:
    """Every (file, row group) with its row count, read from the footers only; empty row groups left out."""
    units: list[ShardUnit] = []
    first_row = 0
    for path in paths:
        try:
            metadata = open_parquet(path).metadata
        except (OSError, pq.lib.ArrowInvalid) as exc:
            raise ShardError(f"cannot read the Parquet footer of {path}: {exc}") from exc
        for group in range(metadata.num_row_groups):
            rows = metadata.row_group(group).num_rows
            if rows:
                units.append(ShardUnit(path, group, rows, first_row))
                first_row += rows
    if not units:
        raise ShardError(f"the {len(paths)} shard file(s) hold no documents")
    return units
