"""Group-bys as two rounds of map tasks over Parquet files: what `map_groups` does on a distributed executor.

1. **Split** (one task per input file): each row goes to a *bucket*, a stable function of its group key
   (`key mod buckets` for integers, CRC-32 of the bytes otherwise), and the file is written again sorted by
   bucket, one row group per bucket (`<exchange>/split-<file>.parquet`). The task returns which row groups
   hold which bucket.
2. **Reduce** (one task per non-empty bucket): reads only its bucket's row groups of every split file, calls
   the function once per distinct key, and writes `<output>/part-<bucket>.parquet`.

A split task holds one input file, a reduce task one bucket, whatever the size of the whole input: memory is
bounded by the inputs' file size and the number of buckets. Ray Data's sort shuffle did not stay bounded on the
dedup cluster step (its read and reduce tasks grew about 2x for 10x the rows: docs/benchmarks.md), so the
exchange is done here, with Parquet files where a shuffle would keep blocks. The functions are plain, so any
executor's `map` can run them; no file is ever rewritten in place, and every write is atomic.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from omnicorpus.io.parquet import write_table

# Rows per row group of a split file, below Parquet's own cap (2^20 rows), so a bucket's row groups are known
# without reading the file back.
ROW_GROUP_ROWS = 1 << 19


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        return libc if hasattr(libc, "malloc_trim") else None  # glibc only
    except (OSError, TypeError):
        return None


_LIBC = _libc()


def release_memory() -> None:
    """Hands what a finished task freed back to the OS: Arrow's pool (mimalloc) and glibc (numpy's arrays)
    keep freed pages for reuse, so a long-lived worker otherwise grows with the tasks it has run, not with
    the one it runs (measured: docs/benchmarks.md, "Memory of the cluster step")."""
    pa.default_memory_pool().release_unused()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def buckets_of(column: pa.ChunkedArray | pa.Array, buckets: int) -> np.ndarray:
    """The bucket (0..buckets-1) of each value: the same in every process, so a key's rows meet in one."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_unsigned_integer(column.type):
        return (column.fill_null(0).to_numpy().astype(np.uint64) % np.uint64(buckets)).astype(np.int64)
    if pa.types.is_integer(column.type):
        return column.fill_null(0).to_numpy().astype(np.int64) % buckets  # numpy's modulo by a positive number is >= 0
    if not (pa.types.is_string(column.type) or pa.types.is_binary(column.type)
            or pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)):
        raise TypeError(f"map_groups: cannot bucket a key of type {column.type}; use an integer, string or binary key")
    encoded = column.dictionary_encode()
    dictionary = [value.encode("utf-8") if isinstance(value, str) else value
                  for value in encoded.dictionary.to_pylist()]
    per_value = np.array([zlib.crc32(value) % buckets for value in dictionary], dtype=np.int64)
    if not len(per_value):  # every key is null
        return np.zeros(len(column), dtype=np.int64)
    indices = encoded.indices.fill_null(-1).to_numpy()
    return np.where(indices >= 0, per_value[np.maximum(indices, 0)], 0)


def split_file(path: str, key: str, buckets: int, columns: Sequence[str] | None, output: str) -> dict[int, list[int]]:
    """Map task: `path`'s rows written to `output` sorted by bucket; returns bucket -> its row groups there."""
    table = pq.read_table(path, columns=list(columns) if columns else None)
    if not table.num_rows:
        return {}
    bucket = buckets_of(table.column(key), buckets)
    order = np.argsort(bucket, kind="stable")
    table, bucket = table.take(pa.array(order)), bucket[order]
    present, starts = np.unique(bucket, return_index=True)
    stops = np.append(starts[1:], len(bucket))
    bounds, row_groups = [], {}
    for value, start, stop in zip(present.tolist(), starts.tolist(), stops.tolist()):
        row_groups[value] = []
        for chunk in range(start, stop, ROW_GROUP_ROWS):
            row_groups[value].append(len(bounds))
            bounds.append((chunk, min(chunk + ROW_GROUP_ROWS, stop)))
    write_table(output, table, metadata={}, bounds=bounds, compression="none")
    del table, bucket
    release_memory()
    return row_groups


def sorted_by_key(table: pa.Table, key: str) -> pa.Table:
    """`table` sorted by `key`, or `table` itself when it holds one key value (one partition: no copy)."""
    keys = table.column(key)
    if keys.null_count in (0, len(keys)):
        bounds = pc.min_max(keys)
        if keys.null_count or bounds["min"] == bounds["max"]:
            return table
    return table.sort_by(key)


def apply_by_group(table: pa.Table, key: str, function) -> pa.Table | None:
    """`function` on the rows of each distinct `key` value of a table sorted by `key` (nulls last, together);
    the non-empty results concatenated, or None."""
    if not table.num_rows:
        return None
    keys = table.column(key)
    boundaries = [0]
    if table.num_rows > 1:
        following, preceding = keys.slice(1), keys.slice(0, table.num_rows - 1)
        changed = pc.and_not(pc.not_equal(following, preceding).fill_null(True),
                             pc.and_(pc.is_null(following), pc.is_null(preceding)))
        boundaries += (np.flatnonzero(changed.to_numpy(zero_copy_only=False)) + 1).tolist()
    boundaries.append(table.num_rows)
    results = [function(table.slice(start, stop - start)) for start, stop in zip(boundaries, boundaries[1:])]
    results = [result for result in results if result is not None and result.num_rows]
    return pa.concat_tables(results, promote_options="default") if results else None


def reduce_bucket(parts: list[tuple[str, list[int]]], key: str, function, output: str) -> str | None:
    """Map task: the rows of one bucket (row groups of split files) grouped by `key`; `output` or None if empty."""
    table = pa.concat_tables([pq.ParquetFile(path).read_row_groups(row_groups) for path, row_groups in parts],
                             promote_options="default")
    # Rebinding drops the unsorted table before the function runs: the task holds one copy of its bucket.
    table = sorted_by_key(table, key)
    result = apply_by_group(table, key, function)
    del table
    written = result is not None
    if written:
        write_table(output, result, metadata={})
    del result
    release_memory()
    return output if written else None


def plan_reduces(splits: list[dict[int, list[int]]], split_paths: list[str]) -> dict[int, list[tuple[str, list[int]]]]:
    """bucket -> the (split file, row groups) that hold it, buckets ascending."""
    plan: dict[int, list[tuple[str, list[int]]]] = {}
    for path, row_groups in zip(split_paths, splits):
        for bucket, groups in row_groups.items():
            plan.setdefault(int(bucket), []).append((path, groups))
    return dict(sorted(plan.items()))


def output_name(output_dir: str, bucket: int) -> str:
    return str(Path(output_dir) / f"part-{bucket:05d}.parquet")
