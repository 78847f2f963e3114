"""The images and image_frequency phases: the I/O around the pure stages of `omnicorpus.images.stage`.

images (a global fetch step, then one task per unit):
  1. plan, per unit: the image URLs of the unit's documents that pass the pre-filters (URL ban words, declared
     size) and that neither the unit's WARC nor the image store holds → `_work/images/wanted/<unit>.parquet`;
  2. fetch, per *fetch partition*: every wanted URL of the run goes to the partition of its host (a stable
     hash of the host name), is fetched once, decoded, validated and hashed, and its row is written into
     `_work/images/fetch/<unit>.part-<k>.parquet` for each unit that wants it. Splitting by host makes the
     URL dedup, the per-host connection limit and the robots.txt cache hold for the whole run, not per task;
  3. resolve, per unit: each image slot gets its bytes from the WARC, then the store, then the fetch rows,
     and `ImagesStage` applies the outcome (keep with bytes, remove with `images.<status>`, drop the document
     with `images.too_few_images`).
image_frequency (a global count step, then one task per unit):
  1. keys, per unit: (image key, document id) for every image of the kept documents;
  2. count: the executor's `map_groups` groups the keys of the whole run and keeps those seen in two or
     more documents → `_work/image_frequency/counts/`;
  3. mark, per unit: `ImageFrequencyStage` records `dup_count` and removes images over the cap.

Each step writes atomically and skips work whose output exists, so an interrupted run resumes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from omnicorpus.document import from_table
from omnicorpus.images.decode import inspect_image
from omnicorpus.images.fetch import FetchResult, fetch_urls, host_of
from omnicorpus.images.stage import ImageFrequencyStage, ImageOutcome, ImagesStage, frequency_key, prefilter
from omnicorpus.images.status import OK
from omnicorpus.images.store import open_store
from omnicorpus.io.parquet import write_table
from omnicorpus.io.paths import atomic_write_json, read_json
from omnicorpus.stage import StageStats, run_stages

log = logging.getLogger(__name__)

WANTED_SCHEMA = pa.schema([("url", pa.string()), ("host", pa.string())])
# One row per fetched URL: the store layout (url, data) plus what the fetch and the decoder learned.
FETCH_SCHEMA = pa.schema([
    ("url", pa.string()), ("status", pa.string()), ("error", pa.string()), ("http_status", pa.int32()),
    ("final_url", pa.string()), ("content_type", pa.string()), ("attempts", pa.int32()), ("data", pa.binary()),
    ("width", pa.int32()), ("height", pa.int32()), ("format", pa.string()), ("byte_size", pa.int64()),
    ("sha256", pa.string()), ("phash", pa.string()), ("dhash", pa.string()),
])
KEYS_SCHEMA = pa.schema([("key", pa.string()), ("document", pa.string())])
COUNTS_SCHEMA = pa.schema([("key", pa.string()), ("documents", pa.int64())])
_FACT_FIELDS = ("width", "height", "format", "byte_size", "sha256", "phash", "dhash")


# ---------------------------------------------------------------------------------------------------------
# images, step 1 and 2 (the phase's global step)


def fetch_images(context, units, executor) -> None:
    """Plan the URLs each unit still needs, then fetch each of them once, split by host."""
    _store(context.config.images.store, context.output)  # a bad store path fails here, before any unit
    if not context.config.images.fetch:
        return
    wanted = executor.map(plan_unit_fetches, [(context, unit) for unit in units], "images: plan")
    folder = context.work / "images" / "fetch"
    plan_file = folder / "plan.json"
    if plan_file.exists():  # a resumed run keeps its partitioning, so old and new files never mix
        partitions = read_json(plan_file)["partitions"]
    else:
        partitions = max(1, executor.workers)
        atomic_write_json(plan_file, {"partitions": partitions, "wanted_urls": sum(wanted)})
    if not sum(wanted):
        return
    results = executor.map(fetch_partition, [(context, k, partitions, [u.name for u in units])
                                             for k in range(partitions)], "images: fetch")
    total: Counter = Counter()
    for result in results:
        total.update(result["status"])
    log.info("images fetched: %s", ", ".join(f"{status} {count}" for status, count in sorted(total.items())))


def plan_unit_fetches(context, unit) -> int:
    """Write the URLs this unit needs fetched; returns how many."""
    path = _wanted_file(context, unit.name)
    if path.exists():
        return pq.read_metadata(path).num_rows
    config = context.config.images
    table = pq.read_table(context.unit_file(context.previous_phase("images"), unit, "docs.parquet"),
                          columns=["images", "image_info"])
    candidates: dict[str, None] = {}
    for urls, infos in zip(table.column("images").to_pylist(), table.column("image_info").to_pylist()):
        for url, info in zip(urls, infos):
            if url is not None and prefilter(url, info, config) is None:
                candidates[url] = None
    held: set[str] = set()
    if config.resolve_from_warc and candidates:
        held |= set(_warc_images(context, unit, candidates, columns=["url"]))
    store = _store(config.store, context.output)
    if store is not None:
        held |= store.contains(set(candidates) - held)
    urls = [url for url in candidates if url not in held]
    write_table(path, pa.table({"url": urls, "host": [host_of(url) for url in urls]}, schema=WANTED_SCHEMA),
                metadata=context.metadata)
    return len(urls)


def host_partition(host: str, partitions: int) -> int:
    """A stable (process-independent) partition for a host name."""
    return int.from_bytes(hashlib.sha1(host.encode("utf-8")).digest()[:8], "big") % partitions


def fetch_partition(context, partition: int, partitions: int, unit_names: list[str]) -> dict[str, Any]:
    """Fetch the wanted URLs of every unit whose host falls in this partition; one row per (unit, URL)."""
    folder = context.work / "images" / "fetch"
    done = folder / f"part-{partition:05d}.stats.json"
    if done.exists():
        return read_json(done)
    config = context.config.images
    wanting: dict[str, list[str]] = {}  # URL → units that want it, in unit order
    outstanding: Counter = Counter()
    for name in unit_names:
        table = pq.read_table(_wanted_file(context, name))
        for url, host in zip(table.column("url").to_pylist(), table.column("host").to_pylist()):
            if host_partition(host, partitions) == partition:
                wanting.setdefault(url, []).append(name)
                outstanding[name] += 1
    pending: dict[str, list[dict[str, Any]]] = {name: [] for name in outstanding}

    def on_row(row: dict[str, Any]) -> None:
        # A unit's file is written as soon as its last URL is in. URLs are fetched in unit order within the
        # fetcher's window, so the rows held here are bounded by that window, not by the partition's size.
        for name in wanting[row["url"]]:
            pending[name].append(row)
            outstanding[name] -= 1
            if outstanding[name] == 0:
                rows = sorted(pending.pop(name), key=lambda r: r["url"])
                write_table(folder / f"{name}.part-{partition:05d}.parquet",
                            pa.Table.from_pylist(rows, schema=FETCH_SCHEMA), metadata=context.metadata)

    stats = fetch_urls(wanting, config, on_row, functools.partial(fetch_row, config=config))
    result = {"partition": partition, **stats.to_json()}
    atomic_write_json(done, result)
    return result


def fetch_row(result: FetchResult, config) -> dict[str, Any]:
    """The row of one fetched URL: its fetch outcome and, for bytes that arrived, the decoder's verdict."""
    row = {"url": result.url, "status": result.status, "error": result.error, "http_status": result.http_status,
           "final_url": result.final_url, "content_type": result.content_type, "attempts": result.attempts}
    if result.status == OK:
        facts = inspect_image(result.data, config)
        row.update({name: getattr(facts, name) for name in _FACT_FIELDS}, status=facts.status, error=facts.error,
                   data=facts.data if facts.status == OK else None)
    return row


def _wanted_file(context, unit_name: str) -> Path:
    return context.work / "images" / "wanted" / f"{unit_name}.parquet"


# ---------------------------------------------------------------------------------------------------------
# images, step 3 (the per-unit task)


def resolve_images(context, unit, documents):
    """`transform_unit` body: outcomes for every URL of the unit, then `ImagesStage` on each document."""
    config = context.config.images
    needed = {url for document in documents for slot in document.image_slots()
              if prefilter(url := document.images[slot], document.image_info[slot], config) is None}
    outcomes: dict[str, ImageOutcome] = {}
    if config.resolve_from_warc and needed:
        for url, data in _warc_images(context, unit, needed).items():
            outcomes[url] = ImageOutcome.from_facts(inspect_image(data, config), "warc")
    store = _store(config.store, context.output)
    if store is not None:
        for url, data in store.get(needed - set(outcomes)).items():
            outcomes[url] = ImageOutcome.from_facts(inspect_image(data, config), "store")
    if config.fetch:
        for row in _fetched_rows(context, unit, needed - set(outcomes)):
            info = {name: row[name] for name in _FACT_FIELDS}
            outcomes[row["url"]] = ImageOutcome(row["status"], "http", info, row["data"])
    stage = ImagesStage(config, outcomes)
    stats = {stage.name: StageStats()}
    kept, rejected = run_stages([stage], documents, stats)
    return kept, rejected, stats, {"image_status": dict(sorted(stage.status_counts.items()))}


def _warc_images(context, unit, urls, columns=("url", "data")) -> dict[str, bytes | None]:
    """The unit's own WARC image records (stored by the extract phase) for these URLs."""
    path = context.unit_file("extract", unit, "images.parquet")
    if not path.exists():
        return {}
    table = pq.read_table(path, columns=list(columns), filters=[("url", "in", sorted(urls))])
    data = table.column("data").to_pylist() if "data" in columns else [None] * table.num_rows
    return dict(zip(table.column("url").to_pylist(), data))


def _fetched_rows(context, unit, urls) -> list[dict[str, Any]]:
    paths = sorted((context.work / "images" / "fetch").glob(f"{unit.name}.part-*.parquet"))
    if not paths or not urls:
        return []
    return pq.read_table(paths, schema=FETCH_SCHEMA, filters=[("url", "in", sorted(urls))]).to_pylist()


@functools.lru_cache(maxsize=4)
def _store(path: str, run_output: str):
    """One store object per process, store and run (a folder store indexes its files once per run)."""
    return open_store(path)


# ---------------------------------------------------------------------------------------------------------
# image_frequency


def count_image_frequency(context, units, executor) -> None:
    """Global step: how many documents of the run hold each image key (only keys held by two or more)."""
    folder = context.work / "image_frequency"
    marker = folder / "counts.json"
    if marker.exists():
        return
    keys = executor.map(write_image_keys, [(context, unit) for unit in units], "image_frequency: keys")
    counts_dir = folder / "counts"
    if counts_dir.exists():
        shutil.rmtree(counts_dir)  # a partial count from an interrupted run
    files = executor.map_groups([path for path in keys if path], "key", count_documents, str(counts_dir))
    atomic_write_json(marker, {"files": sorted(files)})


def write_image_keys(context, unit) -> str | None:
    path = context.work / "image_frequency" / f"{unit.name}.keys.parquet"
    if not path.exists():
        key = context.config.image_frequency.key
        source = context.unit_file(context.previous_phase("image_frequency"), unit, "docs.parquet")
        documents = from_table(pq.read_table(source, columns=["id", "url", "images", "image_info"]))
        rows = {(frequency_key(document.images[slot], document.image_info[slot], key), document.id)
                for document in documents for slot in document.image_slots()}
        table = pa.Table.from_pylist([{"key": k, "document": d} for k, d in sorted(rows)], schema=KEYS_SCHEMA)
        write_table(path, table, metadata=context.metadata)
    return str(path) if pq.read_metadata(path).num_rows else None


def count_documents(group: pa.Table) -> pa.Table:
    """`map_groups` function: one key's rows → (key, documents) when two or more documents hold it."""
    documents = pc.count_distinct(group.column("document")).as_py()
    if documents < 2:
        return COUNTS_SCHEMA.empty_table()
    return pa.table({"key": [group.column("key")[0].as_py()], "documents": [documents]}, schema=COUNTS_SCHEMA)


def mark_image_frequency(context, unit, documents):
    """`transform_unit` body: `dup_count` on every image, images over the cap removed."""
    config = context.config.image_frequency
    keys = {frequency_key(document.images[slot], document.image_info[slot], config.key)
            for document in documents for slot in document.image_slots()}
    files = read_json(context.work / "image_frequency" / "counts.json")["files"]
    counts: dict[str, int] = {}
    if files and keys:
        table = pq.read_table(files, schema=COUNTS_SCHEMA, filters=[("key", "in", sorted(keys))])
        counts = dict(zip(table.column("key").to_pylist(), table.column("documents").to_pylist()))
    stage = ImageFrequencyStage(config, counts, context.config.images.min_images)
    stats = {stage.name: StageStats()}
    kept, rejected = run_stages([stage], documents, stats)
    return kept, rejected, stats, {}
