"""The Ray executor: one Ray task per unit, on an embedded Ray or a running cluster.

This is the only module of the package that imports Ray, so Ray's API changes stop here. Settings follow what
behaves on small machines (reference/packages.md §3): `address="local"` so a stray `ray start` cluster is never
joined by accident, a capped object store, no dashboard, usage stats off.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import ray

from omnicorpus.runner.progress import progress

log = logging.getLogger(__name__)

# The shuffle behind map_groups. On 2 cores a tiny group-by took 7-17 s with Ray Data 2.60's default
# (shuffle_v2, hash partitioning) and the actor-based hash shuffle, against 2-5 s with the sort-based pull
# shuffle, which runs as plain tasks (bench/dedup.py cluster compares their memory too).
SHUFFLE_STRATEGY = "sort_shuffle_pull_based"


class RayExecutor:
    name = "ray"

    def __init__(self, workers: int = 0, address: str | None = None, object_store_mb: int = 512,
                 retries: int = 2, retry_on: tuple[type[BaseException], ...] = (OSError,)):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.retries = retries
        self.retry_on = retry_on
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            if address is None:
                ray.init(address="local", num_cpus=workers or os.cpu_count(),
                         object_store_memory=object_store_mb * 1024 * 1024, include_dashboard=False,
                         logging_level=logging.WARNING, log_to_driver=True)
            else:
                ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True)
        self.workers = int(ray.cluster_resources().get("CPU", 1))

    def map(self, function, arguments: Sequence[tuple], description: str) -> list:
        if not arguments:
            return []
        task = ray.remote(num_cpus=1, max_retries=self.retries, retry_exceptions=list(self.retry_on))(function)
        references = [task.remote(*args) for args in arguments]
        results = {}
        pending = list(references)
        with progress(len(references), description) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for reference in done:
                    results[reference] = ray.get(reference)
                    bar.update(1)
        return [results[reference] for reference in references]

    def map_groups(self, paths: Sequence[str], key: str, function, output_dir: str,
                   columns: Sequence[str] | None = None, num_partitions: int | None = None) -> list[str]:
        """Ray Data: read → groupby (a distributed shuffle) → map_groups → write; no single-node step."""
        if not paths:
            return []
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.shuffle_strategy = ray.data.context.ShuffleStrategy(SHUFFLE_STRATEGY)
        dataset = ray.data.read_parquet(list(paths), columns=list(columns) if columns else None)
        # Ray's default of 200 hash partitions costs seconds of overhead on small inputs; a few per CPU suffice.
        partitions = num_partitions or max(1, 2 * self.workers)
        grouped = dataset.groupby(key, num_partitions=partitions).map_groups(function, batch_format="pyarrow")
        grouped.write_parquet(output_dir)
        return sorted(str(path) for path in Path(output_dir).glob("*.parquet"))

    def close(self) -> None:
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
