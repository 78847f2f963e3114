"""Dedup benchmarks: signature throughput against peers, the cluster step's memory, and quality on real pages.

    python bench/dedup.py signatures [--documents 20000] [--repeats 3] [--datatrove-python PY]
    python bench/dedup.py cluster [--documents 100000 1000000] [--lsh] [--system-allocator] [--partition-rows N]
                                  [--runners ray local ray:data ray:data-tuned ray:data-v2]
    python bench/dedup.py quality

`signatures`: MinHash signatures with 112 permutations over word 5-grams of the same real-text documents (cut
from the extracted text of the shared sample pages, with words varied so no two are equal), in one run:
omnicorpus's vectorised path, datasketch's `MinHash.bulk` (SHA-1 per shingle, same normalisation), and
datatrove's `MinhashDedupSignature` (n_grams=5, 14 buckets x 8 hashes, seed 1) run by the Python of a separate
venv where datatrove is installed (it is never a project dependency):

    python -m venv /tmp/dt-venv && /tmp/dt-venv/bin/pip install -U pip
    /tmp/dt-venv/bin/pip install "datatrove[processing]==0.10.1" spacy pyarrow

Each figure is documents per CPU-second (process time of the process doing the work), the median of the
repeats, which run interleaved.

`cluster`: the cluster step (star edges, connected components, losers per unit) on synthetic key rows for N
documents (10 % near-duplicates, 3 % URL duplicates, 2 % exact copies), each configuration in a fresh process;
reports wall time, the driver's peak resident memory and the largest private heap of a Ray worker (sampled while
workers live), against datasketch's in-memory `MinHashLSH` holding the same number of signatures (`--lsh`).
Runners: `ray` (the executor's split and reduce tasks), `local`, and for comparison the group-bys through Ray
Data as the executor had them before: `ray:data` (sort-based pull shuffle), `ray:data-tuned` (one read task per
file, 64 MiB blocks), `ray:data-v2` (Ray Data's default shuffle).

`quality`: pair precision and recall on the labelled near-duplicate set of tests/near_duplicates.py over
thresholds, and how often each band layout makes a candidate of the true pairs, by their exact Jaccard.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import combinations
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SAMPLES = Path("/work/shared/samples") if Path("/work/shared/samples").exists() else ROOT.parent / "shared" / "samples"


# ---------------------------------------------------------------------------------------------------------
# signatures


def real_documents(count: int, seed: int = 0) -> list[str]:
    """`count` distinct real-text documents: windows of paragraphs of the sample pages' extracted text, 2 %
    of words replaced by words of other pages."""
    import trafilatura
    from pages_warc import sample_pages

    pages = []
    for page in sample_pages(SAMPLES):
        text = trafilatura.extract(page.path.read_bytes().decode("utf-8", "replace"), url=page.url)
        if text:
            pages.append([paragraph for paragraph in text.split("\n") if paragraph.strip()])
    vocabulary = sorted({word for paragraphs in pages for paragraph in paragraphs for word in paragraph.split()})
    rng = random.Random(seed)
    documents = []
    for index in range(count):
        paragraphs = pages[index % len(pages)]
        start = rng.randrange(len(paragraphs))
        budget = rng.randint(500, 6000)  # characters
        chosen, size = [], 0
        for paragraph in paragraphs[start:] + paragraphs[:start]:
            if size >= budget:
                break
            chosen.append(paragraph)
            size += len(paragraph)
        words = "\n\n".join(chosen).split(" ")
        for position in rng.sample(range(len(words)), max(1, len(words) // 50)):
            words[position] = rng.choice(vocabulary)
        documents.append(" ".join(words))
    return documents


def time_ours(texts: list[str]) -> float:
    from omnicorpus.dedup.minhash import MinHasher, sketch_in_batches

    hasher = MinHasher(num_perm=112, ngram=5, seed=1)
    hasher.sketch(texts[:10])  # build the code point table once, as a worker does
    start = time.process_time()
    for _ in sketch_in_batches(hasher, texts):
        pass
    return len(texts) / (time.process_time() - start)


def time_keys(texts: list[str]) -> float:
    """The whole per-unit key step: URL, content and band keys, nodes, the Arrow table."""
    import datetime as dt

    from omnicorpus.config import load_config
    from omnicorpus.dedup.keys import KeyBuilder

    builder = KeyBuilder(load_config(None).dedup)
    table = pa.table({
        "id": [f"{i:024x}" for i in range(len(texts))],
        "url": [f"https://example.org/{i}" for i in range(len(texts))],
        "fetch_time": pa.array([dt.datetime(2024, 1, 1)] * len(texts), pa.timestamp("ms", "UTC")),
        "texts": [[text] for text in texts],
        "images": [[None] for _ in texts],
        "signals": pa.array([{"_none": None}] * len(texts), pa.struct([("_none", pa.bool_())])),
    })
    builder.build(table.slice(0, 10), 0, 4)  # builds the code point table once, as a worker does
    start = time.process_time()
    builder.build(table, 0, 4)
    return len(texts) / (time.process_time() - start)


def time_datasketch(texts: list[str]) -> float:
    from datasketch import MinHash

    from omnicorpus.dedup.minhash import shingles
    from omnicorpus.dedup.normalize import normalize_text

    start = time.process_time()
    sets = ([" ".join(shingle).encode("utf-8") for shingle in shingles(normalize_text(text), 5)] for text in texts)
    for _ in MinHash.generator(sets, num_perm=112, seed=1):
        pass
    return len(texts) / (time.process_time() - start)


DATATROVE_SCRIPT = r"""
import json, sys, tempfile, time
import pyarrow.parquet as pq
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
from datatrove.utils.text import simplify_text
texts = pq.read_table(sys.argv[1]).column("text").to_pylist()
with tempfile.TemporaryDirectory() as folder:
    step = MinhashDedupSignature(output_folder=folder, config=MinhashConfig(n_grams=5, num_buckets=14,
                                                                             hashes_per_bucket=8, seed=1))
    step.get_signature(step.get_shingles(texts[0]))
    start = time.process_time()
    for text in texts:
        shingles = step.get_shingles(text)
        if shingles.size:
            step.get_signature(shingles)
    total = time.process_time() - start
    start = time.process_time()
    for text in texts:
        step.word_tokenizer.word_tokenize(simplify_text(text, step.config.norm_config))
    tokenize = time.process_time() - start
print(json.dumps({"docs_per_cpu_s": len(texts) / total, "tokenizer_share": tokenize / total}))
"""


def time_datatrove(python: str, path: Path) -> dict:
    result = subprocess.run([python, "-c", DATATROVE_SCRIPT, str(path)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def signatures(args) -> None:
    texts = real_documents(args.documents)
    sizes = [len(text) for text in texts]
    print(f"{len(texts)} documents, characters: mean {statistics.mean(sizes):.0f}, median "
          f"{statistics.median(sizes):.0f}, min {min(sizes)}, max {max(sizes)}")
    runs: dict[str, list[float]] = {"omnicorpus signatures": [], "omnicorpus keys (all kinds)": [],
                                    "datasketch MinHash.bulk": [], "datatrove MinhashDedupSignature": []}
    shares = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "texts.parquet"
        pq.write_table(pa.table({"text": texts}), path)
        for repeat in range(args.repeats):
            runs["omnicorpus signatures"].append(time_ours(texts))
            runs["omnicorpus keys (all kinds)"].append(time_keys(texts))
            runs["datasketch MinHash.bulk"].append(time_datasketch(texts))
            if args.datatrove_python:
                measured = time_datatrove(args.datatrove_python, path)
                runs["datatrove MinhashDedupSignature"].append(measured["docs_per_cpu_s"])
                shares.append(measured["tokenizer_share"])
            print(f"repeat {repeat + 1}: " + ", ".join(f"{name} {values[-1]:.0f}" for name, values in runs.items()
                                                       if values), flush=True)
    medians = {name: statistics.median(values) for name, values in runs.items() if values}
    datatrove = medians.get("datatrove MinhashDedupSignature")
    print("\n| method | docs per CPU-second (median) | runs | x datatrove |\n|---|---|---|---|")
    for name, value in medians.items():
        ratio = f"{value / datatrove:.1f}" if datatrove else "-"
        print(f"| {name} | {value:,.0f} | {', '.join(f'{v:,.0f}' for v in runs[name])} | {ratio} |")
    if shares:
        print(f"\ndatatrove: word tokeniser {100 * statistics.median(shares):.0f} % of its signature time")


# ---------------------------------------------------------------------------------------------------------
# cluster


def synthetic_keys(documents: int, folder: Path, partitions: int, documents_per_unit: int, seed: int = 0):
    """Key files like the key step writes: URL, content and 14 band keys per document, with duplicates."""
    from omnicorpus.dedup.keys import CONTENT, KEY_SCHEMA, NEAR, URL

    rng = np.random.default_rng(seed)
    bands = 14
    url = rng.integers(0, 2**63, documents, dtype=np.uint64)
    content = rng.integers(0, 2**63, documents, dtype=np.uint64)
    band = rng.integers(0, 2**63, (documents, bands), dtype=np.uint64)
    index = np.arange(documents)
    source = rng.integers(0, np.maximum(index, 1))  # an earlier document to copy from
    roll = rng.random(documents)
    near = (roll < 0.10) & (index > 0)
    shared = rng.random((documents, bands)) < 0.7
    band[near] = np.where(shared[near], band[source[near]], band[near])
    same_url = (roll >= 0.10) & (roll < 0.13) & (index > 0)
    url[same_url] = url[source[same_url]]
    copy = (roll >= 0.13) & (roll < 0.15) & (index > 0)
    content[copy] = content[source[copy]]
    band[copy] = band[source[copy]]
    days = rng.integers(0, 3650, documents).astype(np.uint64)
    files, names = [], []
    for unit, start in enumerate(range(0, documents, documents_per_unit)):
        stop = min(start + documents_per_unit, documents)
        ids = np.arange(start, stop)
        priority = (np.uint64(2**63) - days[ids]).astype(">u8").tobytes()
        nodes = [priority[8 * i : 8 * i + 8] + bytes(8) + f"{doc:024x}".encode() + unit.to_bytes(4, "big")
                 for i, doc in enumerate(ids.tolist())]
        kinds = np.concatenate([np.full(len(ids), URL), np.full(len(ids), CONTENT),
                                np.full(len(ids) * bands, NEAR)]).astype(np.int8)
        keys = np.concatenate([url[ids], content[ids], band[ids].ravel()])
        owners = np.concatenate([np.arange(len(ids)), np.arange(len(ids)), np.repeat(np.arange(len(ids)), bands)])
        table = pa.table({"partition": pa.array((keys % np.uint64(partitions)).astype(np.int32)),
                          "kind": pa.array(kinds), "key": pa.array(keys), "key2": pa.array(keys ^ np.uint64(1)),
                          "node": pa.array(nodes, pa.binary()).take(pa.array(owners))}, schema=KEY_SCHEMA)
        path = folder / "keys" / f"unit-{unit:05d}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path)
        files.append(str(path))
        names.append(f"unit-{unit:05d}")
    return files, names


def _parent(pid: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except (OSError, IndexError):
        return None


class WorkerPeaks:
    """Samples, every 0.1 s in a thread, the memory of the Ray worker processes this process started (the
    embedded Ray's processes descend from it; other Ray instances do not count), while they live (Ray ends some
    workers before the step returns). Per Ray task name it keeps the largest private heap (RssAnon) and the
    largest resident object-store pages (RssShmem: shared, bounded by the object store's size)."""

    def __init__(self):
        import threading

        self.heap: dict[str, int] = {}
        self.shared: dict[str, int] = {}
        self.group_by = ""  # the map_groups function running now (set by the caller)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = str(os.getpid())
        while not self._stop.wait(0.1):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes()
                    if b"ray::" not in command and b"default_worker.py" not in command:
                        continue
                    ancestor = _parent(pid)
                    while ancestor not in (None, "0", "1", me):
                        ancestor = _parent(ancestor)
                    if ancestor != me:
                        continue
                    task = f"{self.group_by}: " + command.split(b"\0")[0].decode(errors="replace")[:50]
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        for field, peaks in (("RssAnon:", self.heap), ("RssShmem:", self.shared)):
                            if line.startswith(field):
                                peaks[task] = max(peaks.get(task, 0), int(line.split()[1]) * 1024)
                except OSError:
                    continue

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        heaviest = sorted(self.heap.items(), key=lambda item: -item[1])[:3]
        return {"largest_worker_heap_mb": round(max(self.heap.values(), default=0) / 2**20),
                "largest_object_store_pages_mb": round(max(self.shared.values(), default=0) / 2**20),
                "heaviest_tasks_mb": {task: round(size / 2**20) for task, size in heaviest}}


PARTITION_ROWS = int(os.environ.get("DEDUP_BENCH_PARTITION_ROWS", "1000000"))  # dedup.partition_rows


def partitions_for(documents: int) -> int:
    return max(1, -(-documents * 16 // PARTITION_ROWS))


def keys_one(args) -> None:
    """Write the synthetic key files of N documents into --scratch (a process of its own, so its memory is
    not counted against the cluster step)."""
    documents = args.documents[0]
    files, names = synthetic_keys(documents, Path(args.scratch), partitions_for(documents), args.documents_per_unit)
    print(json.dumps({"files": files, "names": names}))


def ray_data_map_groups(executor, variant: str):
    """The executor's map_groups as it was before runner/groups.py, through Ray Data, for comparison:
    `data` read_parquet → groupby (sort-based pull shuffle) → map_groups → write_parquet, as the executor had it;
    `data-tuned` the same with one read task per file and 64 MiB blocks (the knobs Ray Data offers against the
    growth `data` shows); `data-v2` with Ray Data 2.60's default shuffle (hash, shuffle_v2)."""
    import ray.data

    def map_groups(paths, key, function, output_dir, columns=None, num_partitions=None):
        if not paths:
            return []
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        strategy = "shuffle_v2" if variant == "data-v2" else "sort_shuffle_pull_based"
        context.shuffle_strategy = ray.data.context.ShuffleStrategy(strategy)
        options = {}
        if variant == "data-tuned":
            context.target_max_block_size = 64 * 2**20
            context.target_shuffle_max_block_size = 64 * 2**20
            options["override_num_blocks"] = len(paths)
        dataset = ray.data.read_parquet(list(paths), columns=list(columns) if columns else None, **options)
        partitions = num_partitions or max(1, 2 * executor.workers)
        grouped = dataset.groupby(key, num_partitions=partitions).map_groups(function, batch_format="pyarrow")
        grouped.write_parquet(output_dir)
        return sorted(str(path) for path in Path(output_dir).glob("*.parquet"))

    return map_groups


def cluster_one(args) -> None:
    """The cluster step over the key files in --scratch, in this (fresh) process; prints a JSON line."""
    import resource

    from omnicorpus.dedup.phase import cluster_keys
    from omnicorpus.runner import make_executor

    documents, label = args.documents[0], args.runners[0]
    runner, _, variant = label.partition(":")  # "ray:data": the group-bys through Ray Data instead (see below)
    if args.system_allocator:
        # Freed memory goes back to the OS at once (Arrow's system allocator; glibc with a fixed mmap threshold),
        # so a long-lived worker's resident heap shows what its current task holds, not what earlier ones left.
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
        os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"
    keys = json.loads(Path(args.scratch, "keys.json").read_text())
    key_rows = sum(pq.ParquetFile(path).metadata.num_rows for path in keys["files"])
    folder = Path(args.scratch) / runner
    executor = make_executor(runner, 2, None, 512, 0, (OSError,))
    driver_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sampler = WorkerPeaks()
    map_groups = executor.map_groups if not variant else ray_data_map_groups(executor, variant)

    def named_map_groups(paths, key, function, *rest, **options):
        sampler.group_by = type(function).__name__
        return map_groups(paths, key, function, *rest, **options)

    executor.map_groups = named_map_groups
    start = time.perf_counter()
    summary = cluster_keys(executor, keys["files"], partitions_for(documents), folder, keys["names"], {})
    wall = time.perf_counter() - start
    workers = sampler.stop()
    executor.close()
    if runner == "local":
        workers = {}
    print(json.dumps({"runner": label, "documents": documents, "key_rows": key_rows, "partition_rows": PARTITION_ROWS,
                      "partitions": partitions_for(documents), "wall_s": round(wall, 1),
                      "driver_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "driver_before_mb": round(driver_before),
                      **workers, "rounds": summary["rounds"], "links": summary["links"],
                      "losers": sum(summary["losers"].values())}))


def lsh_one(args) -> None:
    """datasketch's in-memory MinHashLSH (14 x 8) holding N signatures: its resident memory growth."""
    import resource

    from datasketch import LeanMinHash, MinHashLSH

    documents = args.documents[0]
    rng = np.random.default_rng(0)
    lsh = MinHashLSH(num_perm=112, params=(14, 8))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    for index in range(documents):
        values = rng.integers(0, 2**32, 112, dtype=np.uint64)
        lsh.insert(f"{index:024x}", LeanMinHash(seed=1, hashvalues=values.astype(np.uint32), scheme="affine32"),
                   check_duplication=False)
    print(json.dumps({"runner": "datasketch MinHashLSH", "documents": documents,
                      "wall_s": round(time.perf_counter() - start, 1),
                      "growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)}))


def cluster(args) -> None:
    rows = []

    def child(*arguments) -> dict | None:
        command = [sys.executable, __file__, *arguments, "--documents-per-unit", str(args.documents_per_unit)]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode:
            print(result.stderr[-3000:], file=sys.stderr)
            return None
        return json.loads(result.stdout.strip().splitlines()[-1])

    for documents in args.documents:
        with tempfile.TemporaryDirectory(dir=args.scratch) as scratch:
            keys = child("keys-one", "--documents", str(documents), "--scratch", scratch)
            Path(scratch, "keys.json").write_text(json.dumps(keys))
            for runner in args.runners:
                extra = ["--system-allocator"] if args.system_allocator else []
                row = child("cluster-one", "--runners", runner, "--documents", str(documents), "--scratch", scratch,
                            *extra)
                if row:
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        if args.lsh:
            row = child("lsh-one", "--documents", str(documents))
            if row:
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| documents | key rows | step | partitions | wall s | driver peak MB (before the step) "
          "| largest worker heap MB | object store pages MB | rounds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "growth_mb" in row:
            print(f"| {row['documents']:,} | - | {row['runner']} | - | {row['wall_s']} | +{row['growth_mb']} | - | - "
                  f"| - |")
        else:
            print(f"| {row['documents']:,} | {row['key_rows']:,} | cluster, {row['runner']} runner "
                  f"| {row['partitions']} | {row['wall_s']} | {row['driver_peak_mb']} ({row['driver_before_mb']}) "
                  f"| {row.get('largest_worker_heap_mb', '-')} | {row.get('largest_object_store_pages_mb', '-')} "
                  f"| {row['rounds']} |")


# ---------------------------------------------------------------------------------------------------------
# quality


def quality(args) -> None:
    from omnicorpus.config import load_config
    from omnicorpus.dedup.minhash import MinHasher, band_keys, candidate_probability, choose_layout, shingles
    from omnicorpus.dedup.normalize import normalize_text
    from tests.near_duplicates import dedup_clusters, labelled_set, score_pairs

    labelled = labelled_set()
    documents = [item.document for item in labelled]
    labels = {item.document.id: item.article for item in labelled}
    print(f"{len(documents)} documents, {len(set(labels.values()))} articles x {len(documents) // len(set(labels.values()))} "
          "copies (original, paragraph_swap, boilerplate, truncated, syndicated, recapture, combined)\n")
    print("| threshold | bands x rows | MinHash only: precision | recall | all kinds: precision | recall |")
    print("|---|---|---|---|---|---|")
    only_near = {"dedup.url": False, "dedup.content": False, "dedup.image_set": False}
    for threshold in (0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        cells = []
        for kinds in (only_near, {}):
            config = load_config(None, {"run.runner": "local", "dedup.near": {"threshold": threshold}, **kinds})
            with tempfile.TemporaryDirectory() as folder:
                scores = score_pairs(labels, dedup_clusters(documents, config, Path(folder)))
            cells += [f"{scores.precision:.3f}", f"{scores.recall:.3f}"]
        bands, rows = choose_layout(threshold, 112)
        print(f"| {threshold} | {bands} x {rows} | " + " | ".join(cells) + " |")

    # Candidate rates per band layout, by exact Jaccard, on the labelled set plus harder copies.
    hard = labelled_set(seed=1)
    rng = random.Random(5)
    texts, owners = [item.document.text for item in hard], [item.article for item in hard]
    for item in labelled_set(seed=2, articles=None):
        if item.edit != "original":
            continue
        words = item.document.text.split(" ")
        for keep in (0.55, 0.65, 0.75, 0.85):  # truncated copies: Jaccard about `keep`
            texts.append(" ".join(words[: int(len(words) * keep)]))
            owners.append(item.article)
        for swaps in (3, 6):  # copies with words replaced here and there
            changed = list(words)
            for position in rng.sample(range(len(changed)), min(len(changed), swaps * len(changed) // 100)):
                changed[position] = "changed"
            texts.append(" ".join(changed))
            owners.append(item.article)
    sets = [set(shingles(normalize_text(text), 5)) for text in texts]
    signatures = MinHasher(112, 5, 1).sketch(texts).signatures
    layouts = [("datasketch threshold=0.8", 9, 12), ("default", 14, 8), ("", 16, 7), ("", 11, 10)]
    bins = [(0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)]
    pairs = {bin_: [] for bin_ in bins}
    negatives = []
    for a, b in combinations(range(len(texts)), 2):
        jaccard = len(sets[a] & sets[b]) / max(1, len(sets[a] | sets[b]))
        if owners[a] != owners[b]:
            negatives.append((a, b))
            continue
        for low, high in bins:
            if low <= jaccard < high:
                pairs[(low, high)].append((a, b))
    print(f"\n{len(texts)} documents: true pairs by exact Jaccard of their 5-gram sets; share made candidates "
          "(sharing a band) by each layout, measured (expected from the S-curve at the bin middle)\n")
    print("| bands x rows | " + " | ".join(f"J {low}-{min(high, 1.0)} ({len(pairs[(low, high)])})"
                                         for low, high in bins) + " | non-duplicate pairs made candidates |")
    print("|---|" + "---|" * (len(bins) + 1))
    for name, bands, rows in layouts:
        keys, _ = band_keys(signatures, bands, rows, 1)
        cells = []
        for low, high in bins:
            found = [bool(np.intersect1d(keys[a], keys[b]).size) for a, b in pairs[(low, high)]]
            expected = candidate_probability((low + min(high, 1.0)) / 2, bands, rows)
            cells.append(f"{np.mean(found):.2f} ({expected:.2f})" if found else "-")
        false = sum(bool(np.intersect1d(keys[a], keys[b]).size) for a, b in negatives)
        label = f"{bands} x {rows}" + (f" ({name})" if name else "")
        print(f"| {label} | " + " | ".join(cells) + f" | {false} of {len(negatives)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("signatures", "cluster", "quality", "keys-one", "cluster-one", "lsh-one"))
    parser.add_argument("--documents", type=int, nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datatrove-python", default="/tmp/dt-venv/bin/python" if Path(
        "/tmp/dt-venv/bin/python").exists() else None, help="Python of a venv with datatrove installed")
    parser.add_argument("--runners", nargs="+", default=["ray", "local"])
    parser.add_argument("--documents-per-unit", type=int, default=10_000)
    parser.add_argument("--lsh", action="store_true", help="also measure datasketch's in-memory MinHashLSH")
    parser.add_argument("--scratch", help="folder for the key files (default: the system temp folder)")
    parser.add_argument("--partition-rows", type=int, help="dedup.partition_rows for the cluster step (10^6)")
    parser.add_argument("--system-allocator", action="store_true",
                        help="allocators that return freed memory at once (Arrow system pool, fixed glibc mmap "
                             "threshold), so worker peaks show what tasks hold")
    args = parser.parse_args()
    if args.documents is None:
        args.documents = [20_000] if args.command == "signatures" else [100_000, 1_000_000]
    if args.command == "signatures":
        args.documents = args.documents[0]
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if args.partition_rows:  # children read it from the environment
        os.environ["DEDUP_BENCH_PARTITION_ROWS"] = str(args.partition_rows)
        global PARTITION_ROWS
        PARTITION_ROWS = args.partition_rows
    {"signatures": signatures, "cluster": cluster, "quality": quality, "keys-one": keys_one,
     "cluster-one": cluster_one, "lsh-one": lsh_one}[args.command](args)


if __name__ == "__main__":
    main()
