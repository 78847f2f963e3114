"""Executors: how unit tasks are run. `local` is the reference (a plain loop); `ray` runs one Ray task per unit.

An executor offers two operations:
- `map(function, arguments, description)` returns the results of `function(*args)` for each argument tuple, in
  order, retrying a task that raises one of `retry_on` up to `retries` times (per-unit map work);
- `map_groups(paths, key, function, output_dir)` reads Parquet files, groups their rows by `key`, applies
  `function(table) -> table` to each group and writes the results as Parquet files under `output_dir`
  (global work: dedup clusters, image frequency counts). `num_partitions` is how many buckets the groups
  are spread over on Ray (one task each; an integer key k goes to bucket k mod num_partitions, so a
  `partition` column 0..n-1 with n buckets gives one task per partition). Output file names and row order
  are not defined: consumers sort by their own keys.
All the pipeline's logic lives in plain functions, so both executors run the same code.
"""

from __future__ import annotations

from typing import Protocol, Sequence


class Executor(Protocol):
    name: str
    workers: int

    def map(self, function, arguments: Sequence[tuple], description: str) -> list: ...

    def map_groups(self, paths: Sequence[str], key: str, function, output_dir: str,
                   columns: Sequence[str] | None = None, num_partitions: int | None = None) -> list[str]: ...

    def close(self) -> None: ...


def make_executor(runner: str, workers: int, ray_address: str | None, object_store_mb: int,
                  retries: int, retry_on: tuple[type[BaseException], ...]) -> Executor:
    if runner == "local":
        from omnicorpus.runner.local import LocalExecutor

        return LocalExecutor(retries=retries, retry_on=retry_on)
    if runner == "ray":
        from omnicorpus.runner.ray import RayExecutor  # the only place Ray is imported

        return RayExecutor(workers=workers, address=ray_address, object_store_mb=object_store_mb,
                           retries=retries, retry_on=retry_on)
    raise ValueError(f"unknown runner {runner!r}; choose local or ray")
