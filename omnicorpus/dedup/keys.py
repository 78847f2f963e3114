"""Per unit: the dedup keys of every document, as rows of a Parquet table for the cluster step.

One row per (document, key): its normalised URL, its content hash, its set of image URLs, and one row per LSH
band of its MinHash signature. Documents that share a key of a kind are duplicates of that kind.

A document is a *node*: bytes that sort in keep order (the document to keep sorts first), then name the
document. `[priority: 16 bytes][document id: UTF-8][unit index: 4 bytes]`, the priority being two big-endian
unsigned 64-bit numbers, smaller is better: for "newest", the negated capture time; for "longest", "most_images"
and "quality", the negated length, image count or score, then the negated capture time. The id breaks ties, so
every choice of survivor is deterministic, and the cluster step can pick a cluster's survivor as its smallest
node without looking anything up.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from omnicorpus.dedup.config import DedupConfig
from omnicorpus.dedup.minhash import MinHasher, band_keys, sketch_in_batches
from omnicorpus.dedup.normalize import normalize_url

# Kinds of duplicates, by code; a smaller code is stronger evidence and names the drop reason first.
KINDS = ("url", "content", "image_set", "near")
URL, CONTENT, IMAGE_SET, NEAR = range(len(KINDS))

KEY_SCHEMA = pa.schema([
    ("partition", pa.int32()),
    ("kind", pa.int8()),
    ("key", pa.uint64()),
    ("key2", pa.uint64()),
    ("node", pa.binary()),
])
# Columns of the unit's documents the keys need.
DOCUMENT_COLUMNS = ["id", "url", "fetch_time", "texts", "images", "signals"]

PRIORITY_BYTES = 16
UNIT_BYTES = 4
_WORST = (1 << 64) - 1


def pack_node(priority: tuple[int, int], document_id: str, unit: int) -> bytes:
    return struct.pack(">QQ", *priority) + document_id.encode("utf-8") + struct.pack(">I", unit)


def node_ids(nodes: pa.Array) -> pa.Array:
    """The document ids of an array of nodes."""
    return pc.binary_slice(nodes, PRIORITY_BYTES, -UNIT_BYTES).cast(pa.string())


def node_units(nodes: pa.Array) -> list[int]:
    """The unit indexes of an array of nodes."""
    return [int.from_bytes(tail, "big") for tail in pc.binary_slice(nodes, -UNIT_BYTES).to_pylist()]


# ---------------------------------------------------------------------------------------------------------
# Keep priorities


def _descending(values: np.ndarray) -> np.ndarray:
    """uint64 codes that sort the values (non-negative integers) from largest to smallest."""
    return np.uint64(_WORST) - values.astype(np.uint64)


def _newest(table: pa.Table) -> np.ndarray:
    """Negated capture time in ms; a document without one sorts after every dated one."""
    times = pc.cast(table.column("fetch_time"), pa.int64())
    present = pc.is_valid(times).to_numpy(zero_copy_only=False)
    shifted = times.fill_null(0).to_numpy().astype(np.int64).view(np.uint64) ^ np.uint64(1 << 63)
    return np.where(present, _descending(shifted), np.uint64(_WORST))


def _scores(table: pa.Table, field: str) -> np.ndarray:
    """Negated quality scores as sortable codes; a document without a (finite) score sorts last."""
    signals = table.column("signals")
    if field not in [f.name for f in signals.type]:
        return np.full(table.num_rows, _WORST, dtype=np.uint64)
    values = pc.cast(pc.struct_field(signals, field), pa.float64()).fill_null(np.nan).to_numpy()
    bits = values.view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    ordered = np.where(negative, ~bits, bits | np.uint64(1 << 63))  # IEEE-754 bits in numeric order
    return np.where(np.isfinite(values), _descending(ordered), np.uint64(_WORST))


def priorities(table: pa.Table, texts: list[str], image_counts: np.ndarray, config: DedupConfig) -> np.ndarray:
    """[documents, 2] uint64: the keep priority of each document under `config.keep` (smaller is kept)."""
    newest = _newest(table)
    if config.keep == "newest":
        primary = newest
        newest = np.zeros_like(newest)
    elif config.keep == "longest":
        primary = _descending(np.array([len(text) for text in texts], dtype=np.uint64))
    elif config.keep == "most_images":
        primary = _descending(image_counts)
    else:
        primary = _scores(table, config.quality_field)
    return np.stack([primary, newest], axis=1)


# ---------------------------------------------------------------------------------------------------------
# Keys


def _digest_pair(kind: str, value: bytes) -> tuple[int, int]:
    """128 bits of BLAKE2b over a kind-salted value, as two uint64 (exact keys never collide across kinds)."""
    digest = hashlib.blake2b(value, digest_size=16, person=kind.encode()[:16]).digest()
    return struct.unpack(">QQ", digest)


class KeyBuilder:
    """Turns a unit's documents into key rows; holds the MinHasher (its permutations) between units."""

    def __init__(self, config: DedupConfig):
        self.config = config
        near = config.near
        self.bands, self.rows = near.layout
        self._hasher = MinHasher(near.num_perm, near.ngram, near.seed) if near.enabled else None

    def build(self, table: pa.Table, unit_index: int, partitions: int) -> pa.Table:
        """The key rows of a unit's documents (columns DOCUMENT_COLUMNS), sorted by kind then document."""
        config = self.config
        texts = ["\n\n".join(text for text in slots if text) for slots in table.column("texts").to_pylist()]
        image_lists = [[url for url in slots if url] for slots in table.column("images").to_pylist()]
        image_counts = np.array([len(urls) for urls in image_lists], dtype=np.uint64)
        priority = priorities(table, texts, image_counts, config)
        ids = table.column("id").to_pylist()
        nodes = [pack_node((int(first), int(second)), document_id, unit_index)
                 for (first, second), document_id in zip(priority.tolist(), ids)]
        kinds, keys, keys2, owners = [], [], [], []

        def add(kind: int, document: int, pair: tuple[int, int]) -> None:
            kinds.append(kind)
            keys.append(pair[0])
            keys2.append(pair[1])
            owners.append(document)

        if config.url:
            for document, url in enumerate(table.column("url").to_pylist()):
                normal = normalize_url(url)
                if normal is not None:
                    add(URL, document, _digest_pair("url", normal.encode("utf-8")))
        if config.image_set:
            for document, urls in enumerate(image_lists):
                unique = sorted(set(urls))
                if len(unique) >= config.image_set_min_images:
                    add(IMAGE_SET, document, _digest_pair("image_set", "\n".join(unique).encode("utf-8")))
        columns = [np.array(kinds, dtype=np.int8), np.array(keys, dtype=np.uint64),
                   np.array(keys2, dtype=np.uint64), np.array(owners, dtype=np.int64)]
        if config.content or self._hasher is not None:
            columns = self._text_keys(texts, columns)
        kind, key, key2, owner = columns
        order = np.lexsort((owner, kind))  # by kind, then document: a stable, readable file
        kind, key, key2, owner = kind[order], key[order], key2[order], owner[order]
        rows = pa.table({
            "partition": pa.array((key % np.uint64(partitions)).astype(np.int32)),
            "kind": pa.array(kind),
            "key": pa.array(key),
            "key2": pa.array(key2),
            "node": pa.array(nodes, pa.binary()).take(pa.array(owner)),
        }, schema=KEY_SCHEMA)
        return rows

    def _text_keys(self, texts: list[str], columns: list[np.ndarray]) -> list[np.ndarray]:
        hasher = self._hasher or MinHasher(1, self.config.near.ngram, self.config.near.seed)
        for start, stop, sketches in sketch_in_batches(hasher, texts):
            documents = np.arange(start, stop, dtype=np.int64)
            with_words = documents[sketches.has_words]
            if self.config.content and len(with_words):
                pairs = np.array([_digest_pair("content", sketches.content_digests[i - start]) for i in with_words],
                                 dtype=np.uint64)
                columns = _append(columns, CONTENT, pairs[:, 0], pairs[:, 1], with_words)
            if self._hasher is not None and len(with_words):
                band, band2 = band_keys(sketches.signatures[sketches.has_words], self.bands, self.rows,
                                        self.config.near.seed)
                owners = np.repeat(with_words, self.bands)
                columns = _append(columns, NEAR, band.ravel(), band2.ravel(), owners)
        return columns


def _append(columns, kind: int, key: np.ndarray, key2: np.ndarray, owners: np.ndarray) -> list[np.ndarray]:
    kinds, keys, keys2, all_owners = columns
    return [np.concatenate((kinds, np.full(len(key), kind, dtype=np.int8))), np.concatenate((keys, key)),
            np.concatenate((keys2, key2)), np.concatenate((all_owners, owners))]


def rows_per_document(config: DedupConfig) -> int:
    """The most key rows one document can have (sizes the partitions before any key is computed)."""
    bands = config.near.layout[0] if config.near.enabled else 0
    return int(config.url) + int(config.content) + int(config.image_set) + bands
