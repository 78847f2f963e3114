"""The dedup phase of a run: `dedup_global` finds the duplicates across all units, `mark_duplicates`
(run per unit by the pipeline's `dedup_unit`) drops them.

Work files, under `OUT/_work/dedup/`:
  keys/<unit>.parquet     the unit's key rows (kept on resume: computing them is the expensive part)
  groups/…                map_groups outputs (and split files) of the cluster step (removed when it restarts)
  losers/<unit>.parquet   the unit's duplicates: id, kind, duplicate_of
  cluster.json            written last: the step is done, a rerun skips it
then the usual `<unit>.docs.parquet`, `<unit>.rejects.parquet`, `<unit>.stats.json` of the mark step.
"""

from __future__ import annotations

import logging
import math
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from omnicorpus.dedup.cluster import (Losers, StarEdges, WriteUnitLosers, connected_components, count_rows,
                                      group_by_partition)
from omnicorpus.dedup.keys import DOCUMENT_COLUMNS, KINDS, KeyBuilder, rows_per_document
from omnicorpus.dedup.stage import DedupStage
from omnicorpus.io.parquet import write_table
from omnicorpus.io.paths import atomic_write_json
from omnicorpus.stage import StageStats

log = logging.getLogger(__name__)

PHASE = "dedup"


def work_folder(context) -> Path:
    return context.work / PHASE


def unit_documents(context, unit) -> Path:
    return context.phase_input(PHASE, unit)


# ---------------------------------------------------------------------------------------------------------
# Global step


def write_unit_keys(context, unit, unit_index: int, partitions: int) -> dict[str, Any]:
    """Map task: the unit's key rows to keys/<unit>.parquet (atomic, so an existing file is complete)."""
    path = work_folder(context) / "keys" / f"{unit.name}.parquet"
    if not path.exists():
        table = pq.read_table(unit_documents(context, unit), columns=DOCUMENT_COLUMNS)
        keys = KeyBuilder(context.config.dedup).build(table, unit_index, partitions)
        write_table(path, keys, metadata=context.metadata, compression=context.config.write.compression)
    return {"unit": unit.name, "path": str(path), "rows": pq.ParquetFile(path).metadata.num_rows}


def dedup_global(context, units, executor) -> None:
    """Find every duplicate across the units and write each unit's losers (see cluster.py)."""
    folder = work_folder(context)
    done = folder / "cluster.json"
    if done.exists():
        return
    for stale in ("groups", "losers"):
        shutil.rmtree(folder / stale, ignore_errors=True)
    config = context.config.dedup
    documents = sum(pq.ParquetFile(unit_documents(context, unit)).metadata.num_rows for unit in units)
    partitions = max(1, math.ceil(documents * rows_per_document(config) / config.partition_rows))
    keys = executor.map(write_unit_keys, [(context, unit, index, partitions) for index, unit in enumerate(units)],
                        "dedup keys")
    summary = {"documents": documents, "key_rows": sum(result["rows"] for result in keys), "partitions": partitions}
    summary.update(cluster_keys(executor, [result["path"] for result in keys if result["rows"]], partitions,
                                folder, [unit.name for unit in units], context.metadata))
    atomic_write_json(done, summary)
    log.info("dedup: %d documents, %d dropped (%s)", documents,
             sum(summary["losers"].values()), summary["losers"])


def cluster_keys(executor, key_files: list[str], partitions: int, folder: Path, unit_names: list[str],
                 metadata: dict[bytes, bytes]) -> dict[str, Any]:
    """The cluster step over written key files: losers/<unit>.parquet under `folder`; returns counts."""
    groups = folder / "groups"
    summary: dict[str, Any] = {"links": 0, "rounds": 0, "losers": dict.fromkeys(KINDS, 0)}
    edges = group_by_partition(executor, key_files, StarEdges(partitions), groups / "edges", partitions)
    summary["links"] = count_rows(edges) // 2  # (document, local survivor) pairs
    if summary["links"]:
        def report(round_number, rows, changes):
            log.info("dedup components: round %d, %d edge rows, %d changes", round_number, rows, changes)

        if partitions == 1:  # one partition saw every key: its stars are the components
            losers = group_by_partition(executor, edges, Losers(stars_are_final=True), groups / "losers", partitions)
        else:
            stars, summary["rounds"] = connected_components(executor, edges, groups, partitions, report)
            losers = group_by_partition(executor, edges + stars, Losers(), groups / "losers", partitions)
        executor.map_groups(losers, "unit", WriteUnitLosers(str(folder / "losers"), unit_names, metadata),
                            str(groups / "units"), num_partitions=partitions)
        for path in losers:
            kinds = pq.read_table(path, columns=["kind"]).column("kind").to_numpy()
            for code, name in enumerate(KINDS):
                summary["losers"][name] += int((kinds == code).sum())
    shutil.rmtree(groups, ignore_errors=True)
    return summary


# ---------------------------------------------------------------------------------------------------------
# Per unit


def unit_losers(context, unit) -> dict[str, tuple[str, str]]:
    path = work_folder(context) / "losers" / f"{unit.name}.parquet"
    if not path.exists():
        return {}
    rows = pq.read_table(path).to_pydict()
    return {document: (kind, kept) for document, kind, kept in zip(rows["id"], rows["kind"], rows["duplicate_of"])}


def mark_duplicates(context, unit, documents):
    """`transform_unit` body: the unit's duplicates dropped with `dedup.<kind>` and `signals.duplicate_of`."""
    stage = DedupStage(context.config.dedup, unit_losers(context, unit))
    stats = {stage.name: StageStats()}
    from omnicorpus.stage import run_stages

    kept, rejected = run_stages([stage], documents, stats)
    return kept, rejected, stats, {}



def enabled(config) -> bool:
    return config.dedup.any_kind
