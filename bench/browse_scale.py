"""How fast the browser's pages are on a large run, against reading the same Parquet files with pyarrow.

    python bench/browse_scale.py [--documents 1000000] [--folder /tmp/browse-bench] [--repeat 5]

Writes (once; reused while the document count matches) a synthetic run in the output layout: documents of
3 text paragraphs and 2 images (one with ~6 KB of image bytes in kept documents), languages, domains, a
quality signal, 30 % rejected with a reason; shards of 100k documents with the trunk's 1k-document row groups.
Then serves it with `omnicorpus browse` on 127.0.0.1 and times each page over HTTP (median of --repeat, the
overview's first, uncached load separately), next to the pyarrow peers a notebook would use: loading every
column but the pixels, and a dataset filter on `id` to fetch one document.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnicorpus import schema  # noqa: E402
from omnicorpus.browse.server import make_server  # noqa: E402
from omnicorpus.io.parquet import file_metadata  # noqa: E402

BENCH_VERSION = 2  # bump when the generated run changes, so an old one is rewritten
SHARD_DOCUMENTS = 100_000
ROW_GROUP_DOCUMENTS = 1_000  # the trunk's default write.row_group_docs
LANGUAGES = ["en", "de", "fr", "es", "zh"]
REASONS = ["filter.quality.short_doc", "filter.language.not_target", "dedup.near_duplicate", "images.none_left"]
WORDS = ("the of and to in is was for on that with as by at from his her an which are this be were has had "
         "image photo museum painting river city market train garden kitchen recipe history season player "
         "school music bridge harbour mountain village library window engine forest coast island").split()


def document_id(number: int) -> str:
    """Random-looking ids like a real run's (sha1 of the WARC record id), so row-group statistics cannot
    narrow a search by id, for DuckDB or for pyarrow."""
    return hashlib.sha1(str(number).encode()).hexdigest()[:24]


def paragraph_pool(rng: np.random.Generator, size: int = 4096) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=rng.integers(30, 90))).capitalize() + "." for _ in range(size)]


def build_table(start: int, count: int, rejected: bool, pool: list[str], png: bytes, arrow_schema: pa.Schema,
                rng: np.random.Generator) -> pa.Table:
    numbers = range(start, start + count)
    picks = rng.integers(0, len(pool), size=(count, 3))
    texts, images, infos, blobs = [], [], [], []
    for row, number in enumerate(numbers):
        first, second, third = (pool[i] for i in picks[row])
        texts.append([f"Document {number}. {first}", None, f"{second}\n\n{third}", None])
        images.append([None, f"https://img{number % 97}.example/{number}-a.jpg", None,
                       f"https://img{number % 89}.example/{number}-b.jpg"])
        stored = not rejected
        infos.append([None, {"status": "ok" if stored else "not_fetched", "width": 40, "height": 30,
                             "format": "png", "alt": f"picture {number}"}, None, {"status": "not_fetched"}])
        # Distinct bytes per image, as in a real run (identical ones would be dictionary-encoded away).
        blobs.append([None, png + rng.bytes(2048) if stored else None, None, None])
    domains = [f"site{int(x)}.example" for x in rng.zipf(1.3, size=count) % 5000]
    quality = rng.random(count).astype("float32")
    columns = {
        "id": [document_id(number) for number in numbers],
        "url": [f"https://{domain}/page/{number}" for domain, number in zip(domains, numbers)],
        "domain": domains,
        "title": [f"Page {number}" for number in numbers],
        "texts": texts, "images": images, "image_info": infos, "image_bytes": blobs,
        "language": rng.choice(LANGUAGES, size=count, p=[0.6, 0.15, 0.1, 0.1, 0.05]).tolist(),
        "language_score": rng.random(count).astype("float32"),
        "signals": [{"text_chars": sum(len(t) for t in doc if t), "quality": float(q)}
                    for doc, q in zip(texts, quality)],
        "removed": [[] for _ in numbers],
        "drop_reason": rng.choice(REASONS, size=count).tolist() if rejected else [None] * count,
    }
    return pa.Table.from_pydict({field.name: columns.get(field.name, [None] * count) for field in arrow_schema},
                                schema=arrow_schema)


def make_run(folder: Path, documents: int) -> Path:
    marker = folder / "_SUCCESS"
    if marker.exists() and json.loads((folder / "stats.json").read_text()).get("bench") == BENCH_VERSION:
        return folder
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.effect_noise((40, 30), 64).convert("RGB").save(buffer, format="PNG")
    png = buffer.getvalue()  # a valid PNG; the 2 KB of noise appended to each copy are ignored by decoders
    rng = np.random.default_rng(0)
    pool = paragraph_pool(rng)
    arrow_schema = schema.document_schema({"text_chars": "int64", "quality": "float32"})
    metadata = file_metadata("bench", "bench")
    for sub in ("shards", "rejects"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    kept_total = documents * 7 // 10
    dropped: dict[str, int] = {}
    for index, start in enumerate(range(0, documents, SHARD_DOCUMENTS)):
        count = min(SHARD_DOCUMENTS, documents - start)
        kept = min(max(kept_total - start, 0), count)
        for rejected, first, size in ((False, start, kept), (True, start + kept, count - kept)):
            if not size:
                continue
            table = build_table(first, size, rejected, pool, png, arrow_schema, rng)
            table = table.replace_schema_metadata(metadata)
            name = f"shard-{index:05d}.parquet" if not rejected else f"unit-{index:05d}.parquet"
            if rejected:
                table = table.set_column(table.schema.get_field_index("image_bytes"), "image_bytes",
                                         pa.array([[None] * 4] * size, type=arrow_schema.field("image_bytes").type))
                for reason, n in zip(*np.unique(table.column("drop_reason").to_numpy(zero_copy_only=False),
                                                return_counts=True)):
                    dropped[str(reason)] = dropped.get(str(reason), 0) + int(n)
            pq.write_table(table, folder / ("rejects" if rejected else "shards") / name,
                           row_group_size=ROW_GROUP_DOCUMENTS, compression="zstd")
        print(f"  wrote documents {start:,}–{start + count:,}", flush=True)
    stats = {"bench": BENCH_VERSION, "funnel": {"input": documents, "kept": kept_total, "dropped": dropped},
             "stages": {"filter": {"input": documents, "kept": kept_total, "dropped": dropped}}}
    (folder / "stats.json").write_text(json.dumps(stats))
    (folder / "run.json").write_text(json.dumps({"config_source": "bench", "config": {}, "inputs": []}))
    marker.write_text("")
    return folder


def get(port: int, target: str) -> tuple[float, int, int]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    connection.request("GET", target)
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed, response.status, len(body)


def timed(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/browse-bench"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    folder = make_run(args.folder / f"run-{args.documents}", args.documents)
    size = sum(path.stat().st_size for path in folder.rglob("*.parquet"))
    print(f"run: {args.documents:,} documents, {size / 1e9:.2f} GB of Parquet ({time.perf_counter() - started:.0f} s)")

    server = make_server([folder], port=0, labels_path=args.folder / "labels.sqlite")
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    middle = document_id(args.documents * 7 // 20)  # a kept document in the middle of the run
    # Each repetition opens another document: the first visit finds it by its id (later ones are remembered).
    others = [document_id(args.documents * 7 // 20 + 1 + k) for k in range(args.repeat)]
    pages = {
        "overview (first load, computes the aggregates)": "/run/0/",
        "overview (cached)": "/run/0/",
        "samples, no filter": "/run/0/samples?seed=1",
        "samples, page 50": "/run/0/samples?seed=1&page=50",
        "samples, language + domain": "/run/0/samples?seed=1&language=de&domain=site3.example",
        "samples, URL contains": "/run/0/samples?seed=1&url=page%2F12345",
        "samples, full text (2 words)": "/run/0/samples?seed=1&q=harbour+kitchen",
        "samples, signal range + images": "/run/0/samples?seed=1&min.quality=0.2&max.quality=0.21&min_images=2",
        "samples, drop reason": "/run/0/samples?seed=1&reason=dedup.near_duplicate",
        "document view (first visit)": [f"/run/0/doc/{other}" for other in others],
        "one image (after its document)": [f"/run/0/image/{other}/1" for other in others],
    }
    results = {}
    for name, targets in pages.items():
        repeat = 1 if name.startswith("overview (first") else args.repeat
        times = []
        for index in range(repeat):
            target = targets[index] if isinstance(targets, list) else targets
            elapsed, status, length = get(port, target)
            assert status == 200, (name, status)
            times.append(elapsed)
        results[name] = statistics.median(times)
        print(f"{name:<52} {results[name] * 1000:9.1f} ms  ({length:,} B)", flush=True)
    server.shutdown()

    shards = sorted((folder / "shards").glob("*.parquet"))
    columns = [name for name in pq.read_schema(shards[0]).names if name != "image_bytes"]
    load_all = timed(lambda: pq.read_table(shards, columns=columns), 1)
    dataset = ds.dataset(shards, format="parquet")
    lookup = timed(lambda: dataset.to_table(columns=columns, filter=pc.field("id") == middle), args.repeat)
    print(f"{'peer: pyarrow reads all kept documents, no pixels':<52} {load_all * 1000:9.1f} ms")
    print(f"{'peer: pyarrow dataset filter id == x (one document)':<52} {lookup * 1000:9.1f} ms")
    print(f"ratio document view / pyarrow id filter: {results['document view (first visit)'] / lookup:.2f}")
    print(f"ratio samples page / pyarrow load-all: {results['samples, no filter'] / load_all:.3f}")


if __name__ == "__main__":
    main()
