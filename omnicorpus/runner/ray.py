"""The Ray executor: one Ray task per unit, on an embedded Ray or a running cluster.

This is the only module of the package that imports Ray, so Ray's API changes stop here. Settings follow what
behaves on small machines (reference/packages.md §3): `address="local"` so a stray `ray start` cluster is never
joined by accident, a capped object store, no dashboard, usage stats off.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Sequence

import ray

from omnicorpus.runner.groups import output_name, plan_reduces, reduce_bucket, split_file
from omnicorpus.runner.progress import progress

log = logging.getLogger(__name__)


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
        """Split tasks then reduce tasks (runner/groups.py), one bucket per partition: no single-node step, and
        no task holds more than one input file or one bucket."""
        if not paths:
            return []
        buckets = num_partitions or max(1, 2 * self.workers)
        exchange = Path(output_dir) / "_exchange"
        split_paths = [str(exchange / f"split-{index:05d}.parquet") for index in range(len(paths))]
        splits = self.map(split_file, [(str(path), key, buckets, columns, split)
                                       for path, split in zip(paths, split_paths)], f"{key} group-by: split")
        plan = plan_reduces(splits, split_paths)
        outputs = self.map(reduce_bucket, [(parts, key, function, output_name(output_dir, bucket))
                                           for bucket, parts in plan.items()], f"{key} group-by: reduce")
        shutil.rmtree(exchange, ignore_errors=True)
        return sorted(path for path in outputs if path)

    def close(self) -> None:
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
