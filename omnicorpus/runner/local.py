"""The local executor: a loop in this process. It defines the reference semantics the Ray runner must match."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from omnicorpus.io.parquet import write_table
from omnicorpus.runner.groups import apply_by_group
from omnicorpus.runner.progress import progress

log = logging.getLogger(__name__)


class LocalExecutor:
    name = "local"
    workers = 1

    def __init__(self, retries: int = 2, retry_on: tuple[type[BaseException], ...] = (OSError,)):
        self.retries = retries
        self.retry_on = retry_on

    def map(self, function, arguments: Sequence[tuple], description: str) -> list:
        results = []
        with progress(len(arguments), description) as bar:
            for args in arguments:
                results.append(self._call(function, args))
                bar.update(1)
        return results

    def _call(self, function, args: tuple):
        for attempt in range(self.retries + 1):
            try:
                return function(*args)
            except self.retry_on as exc:
                if attempt == self.retries:
                    raise
                delay = 0.5 * 2**attempt
                log.warning("task failed (%s: %s); retry %d in %.1f s", type(exc).__name__, exc, attempt + 1, delay)
                time.sleep(delay)

    def map_groups(self, paths: Sequence[str], key: str, function, output_dir: str,
                   columns: Sequence[str] | None = None, num_partitions: int | None = None) -> list[str]:
        """In memory: the reference semantics. Ray runs the same groups as split and reduce tasks (groups.py)."""
        tables = [pq.read_table(path, columns=list(columns) if columns else None) for path in paths]
        tables = [table for table in tables if table.num_rows]
        if not tables:
            return []
        table = pa.concat_tables(tables, promote_options="default").sort_by(key)
        result = apply_by_group(table, key, function)
        if result is None:
            return []
        path = Path(output_dir) / "part-00000.parquet"
        write_table(path, result, metadata={})  # atomic, as the Ray runner's reduce tasks write
        return [str(path)]

    def close(self) -> None:
        pass
