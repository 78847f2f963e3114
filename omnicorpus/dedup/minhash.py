"""MinHash signatures of many documents at once, and the LSH band keys built from them.

The permutations and their arithmetic are datasketch's (`MinHash(scheme="affine32")`: the shingle hash is
pre-mixed with the MurmurHash3 finalizer, then `a * h + b mod 2^32` with odd `a`), so a signature here equals
`datasketch.MinHash(num_perm, seed, hashfunc=shingle_hash).update_batch(shingles)` (a test says so). What is
ours is getting the shingle hashes: datasketch takes each shingle as bytes and hashes it with SHA-1 in a
Python loop, which measures as the bottleneck (bench/dedup.py). Here a batch of documents is one array of
normalised code points (`tokenize_batch`); a polynomial prefix hash over it (one cumulative sum) gives every
word's hash at once, n consecutive word hashes combine into the shingle hash, and the permutations run as
[permutations x shingles] products over blocks of shingles with a per-document minimum.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from omnicorpus.dedup.normalize import Tokens, tokenize_batch

SIGNATURE_DTYPE = np.uint32
EMPTY_HASH = np.uint32(0xFFFFFFFF)  # datasketch's initial value: a document without words keeps it

_MASK = (1 << 64) - 1
# Word hashes are polynomials in B^-1 modulo 2^64 over code points; B is odd, so it has an inverse.
_BASE = 0x100000001B3  # the 64-bit FNV prime
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
_LENGTH_MIX = 0x9E3779B97F4A7C15  # 2^64 / golden ratio: mixes a word's length into its hash
_SHINGLE_BASE = 0xC2B2AE3D27D4EB4F  # combines n word hashes into a shingle hash
# Shingles per block of the permutation product: 4k x 112 permutations x 4 bytes = 1.8 MB, about the L2
# cache; larger blocks measured slower.
_BLOCK_SHINGLES = 4096


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer on a uint64 array (a bijection that spreads every input bit)."""
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xFF51AFD7ED558CCD)
    values = values ^ (values >> np.uint64(33))
    values = values * np.uint64(0xC4CEB9FE1A85EC53)
    return values ^ (values >> np.uint64(33))


def fmix32(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (datasketch's pre-mix for the affine32 scheme)."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    return values ^ (values >> np.uint32(16))


# -- the one-at-a-time reference ---------------------------------------------------------------------------


def word_hash(word: str) -> int:
    """64-bit hash of one normalised word: sum(code point_j * B^-j) + length * K, modulo 2^64."""
    value, power = 0, 1
    for character in word:
        value = (value + ord(character) * power) & _MASK
        power = (power * _BASE_INVERSE) & _MASK
    return (value + len(word) * _LENGTH_MIX) & _MASK


def shingles(normalized: str, ngram: int) -> list[tuple[str, ...]]:
    """Word n-grams of one normalised text; a text of 1 to n-1 words is one shingle of all its words."""
    words = normalized.split()
    if len(words) < ngram:
        return [tuple(words)] if words else []
    return [tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]


def shingle_hash(shingle: tuple[str, ...]) -> int:
    """The 32-bit hash of one shingle, the reference for the vectorised path (and a datasketch `hashfunc`)."""
    value = 0
    for word in shingle:
        value = (value * _SHINGLE_BASE + word_hash(word)) & _MASK
    return int(fmix64(np.array([value], dtype=np.uint64))[0] >> np.uint64(32))


# -- the batch path ---------------------------------------------------------------------------------------


@dataclass
class Sketches:
    """Per document of a batch: its MinHash signature and the digest of its normalised words."""

    signatures: np.ndarray  # [documents, num_perm] uint32; EMPTY_HASH everywhere for a text without words
    has_words: np.ndarray  # [documents] bool
    content_digests: list[bytes]  # 16-byte BLAKE2b of the document's word hashes (b"" without words)


class MinHasher:
    """Signatures with `num_perm` permutations over word `ngram`s, seeded like datasketch's MinHash."""

    def __init__(self, num_perm: int = 112, ngram: int = 5, seed: int = 1):
        from datasketch import MinHash

        self.num_perm, self.ngram, self.seed = num_perm, ngram, seed
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        self._a = np.asarray(a, dtype=SIGNATURE_DTYPE)[:, None]
        self._b = np.asarray(b, dtype=SIGNATURE_DTYPE)[:, None]
        self._inverse_powers = np.ones(1, dtype=np.uint64)  # B^-i
        self._powers = np.ones(1, dtype=np.uint64)  # B^i

    def sketch(self, texts: list[str]) -> Sketches:
        count = len(texts)
        signatures = np.full((count, self.num_perm), EMPTY_HASH, dtype=SIGNATURE_DTYPE)
        if count == 0:
            return Sketches(signatures, np.zeros(0, dtype=bool), [])
        tokens = tokenize_batch(texts)
        words = self._word_hashes(tokens)
        first_word = np.searchsorted(tokens.owners, np.arange(count + 1))
        digests = [hashlib.blake2b(words[start:stop].tobytes(), digest_size=16).digest() if stop > start else b""
                   for start, stop in zip(first_word[:-1].tolist(), first_word[1:].tolist())]
        hashes, owners = self._shingle_hashes(words, tokens.owners, first_word)
        if len(hashes):
            self._min_permuted(hashes, owners, signatures)
        return Sketches(signatures, first_word[1:] > first_word[:-1], digests)

    def _word_hashes(self, tokens: Tokens) -> np.ndarray:
        points = tokens.code_points
        self._ensure_powers(len(points) + 1)
        prefix = np.zeros(len(points) + 1, dtype=np.uint64)
        np.cumsum(points.astype(np.uint64) * self._inverse_powers[: len(points)], out=prefix[1:])
        hashes = (prefix[tokens.ends] - prefix[tokens.starts]) * self._powers[tokens.starts]
        return hashes + (tokens.ends - tokens.starts).astype(np.uint64) * np.uint64(_LENGTH_MIX)

    def _shingle_hashes(self, words: np.ndarray, owners: np.ndarray, first_word: np.ndarray):
        """32-bit hashes of every shingle, ordered by document, with the document of each."""
        n = self.ngram
        count = len(words) - n + 1
        if count > 0:
            full = np.flatnonzero(owners[n - 1 :] == owners[:count])  # n-grams that stay in one document
            value = np.zeros(len(full), dtype=np.uint64)
            for offset in range(n):
                value = value * np.uint64(_SHINGLE_BASE) + words[full + offset]
            hashes, shingle_owners = [value], [owners[full]]
        else:
            hashes, shingle_owners = [], []
        words_per_document = np.diff(first_word)
        for document in np.flatnonzero((words_per_document > 0) & (words_per_document < n)).tolist():
            value = np.zeros(1, dtype=np.uint64)  # a short document: one shingle of all its words
            for word in words[first_word[document] : first_word[document + 1]]:
                value = value * np.uint64(_SHINGLE_BASE) + word
            hashes.append(value)
            shingle_owners.append(np.array([document]))
        if not hashes:
            return np.zeros(0, dtype=SIGNATURE_DTYPE), np.zeros(0, dtype=np.int64)
        hashes, shingle_owners = np.concatenate(hashes), np.concatenate(shingle_owners)
        order = np.argsort(shingle_owners, kind="stable")
        return (fmix64(hashes[order]) >> np.uint64(32)).astype(SIGNATURE_DTYPE), shingle_owners[order]

    def _ensure_powers(self, length: int) -> None:
        if len(self._powers) >= length:
            return
        size = max(length, 2 * len(self._powers))
        one = np.ones(1, dtype=np.uint64)  # a Python 1 would promote the uint64 arrays to float64
        self._powers = np.concatenate((one, np.cumprod(np.full(size - 1, _BASE, dtype=np.uint64))))
        self._inverse_powers = np.concatenate((one, np.cumprod(np.full(size - 1, _BASE_INVERSE, dtype=np.uint64))))

    def _min_permuted(self, hashes: np.ndarray, owners: np.ndarray, signatures: np.ndarray) -> None:
        """signatures[d] = min over d's shingles of (a * fmix32(h) + b) mod 2^32, per permutation."""
        mixed = fmix32(hashes)
        for block_start in range(0, len(mixed), _BLOCK_SHINGLES):
            block = slice(block_start, block_start + _BLOCK_SHINGLES)
            block_owners = owners[block]
            permuted = self._a * mixed[None, block]  # [permutations, shingles]
            permuted += self._b
            segment_starts = np.flatnonzero(np.concatenate(([True], block_owners[1:] != block_owners[:-1])))
            minima = np.minimum.reduceat(permuted, segment_starts, axis=1).T
            documents = block_owners[segment_starts]
            signatures[documents] = np.minimum(signatures[documents], minima)


def sketch_in_batches(hasher: MinHasher, texts: list[str], batch_characters: int = 400_000):
    """Yield (start, stop, Sketches) over `texts` in batches of about `batch_characters` characters.

    Batches of a few hundred thousand characters measured fastest: large enough to amortise numpy's per-call
    cost, small enough that the batch arrays stay in cache (bench/dedup.py).
    """
    start = 0
    while start < len(texts):
        stop, size = start, 0
        while stop < len(texts) and (stop == start or size + len(texts[stop]) <= batch_characters):
            size += len(texts[stop])
            stop += 1
        yield start, stop, hasher.sketch(texts[start:stop])
        start = stop


# ---------------------------------------------------------------------------------------------------------
# LSH bands


def band_keys(signatures: np.ndarray, bands: int, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit keys per (document, band): documents share a bucket when a band is equal.

    Two keys (128 bits) make a false bucket collision between different bands practically impossible; the
    band index is mixed in, so equal values in different bands never meet.
    """
    count = signatures.shape[0]
    values = signatures[:, : bands * rows].reshape(count, bands, rows).astype(np.uint64)
    band_index = np.arange(bands, dtype=np.uint64)[None, :]
    keys = []
    for salt in (0x5851F42D4C957F2D, 0x14057B7EF767814F):
        key = np.broadcast_to(fmix64(band_index + np.uint64(salt) + np.uint64(seed)), (count, bands)).copy()
        for row in range(rows):
            key = fmix64((key ^ values[:, :, row]) * np.uint64(salt | 1))
        keys.append(key)
    return keys[0], keys[1]


def candidate_probability(jaccard: float | np.ndarray, bands: int, rows: int):
    """P(two documents share at least one band) at a given Jaccard similarity: 1 - (1 - J^r)^b."""
    return 1.0 - (1.0 - np.asarray(jaccard, dtype=float) ** rows) ** bands


def choose_layout(threshold: float, num_perm: int, recall_at_threshold: float = 0.9) -> tuple[int, int]:
    """Bands x rows for a target Jaccard threshold: the most rows per band (fewest false candidates) whose
    S-curve still finds `recall_at_threshold` of the pairs exactly at the threshold.

    datasketch's own choice (`MinHashLSH(threshold=0.8, num_perm=112)`: 9 x 12, equal weights on the false
    positive and false negative areas) finds only 47 % of the pairs at J = 0.8; this rule gives 14 x 8 (92 %),
    datatrove's default. Measured on real near-duplicates in docs/dedup.md.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= recall_at_threshold:
            return bands, rows
    return num_perm, 1
