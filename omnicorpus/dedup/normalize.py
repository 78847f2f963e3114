"""Normal forms for dedup keys: URLs for exact URL dedup, words of text for content hashes and MinHash shingles.

Text follows datatrove's MinHash normalisation (anchors §4.2): lowercase, unicode compatibility forms with
diacritics stripped, punctuation removed, every number written as 0, whitespace collapsed. Han and kana
characters count one per word, since those scripts put no spaces between words and a whitespace split would
make a whole paragraph one "word".

`normalize_text` says it with regular expressions, one text at a time: the readable reference. `tokenize_batch`
does the same to a whole batch of texts with numpy over their code points (the regex passes measured 0.8 ms per
9 kB text, most of the signature time; bench/dedup.py), and a test holds the two to the same words.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import numpy as np

DOCUMENT_SEPARATOR = "\x00"

# After NFKD, accents are separate combining marks (Latin, Greek, Cyrillic diacritics; kana voicing marks):
# deleted, so "café" becomes "cafe". Marks of other scripts are not word characters: they separate words.
_DIACRITIC_RANGES = ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F),
                     (0x3099, 0x309A))
# Hiragana, katakana, CJK ideographs (extension A, unified, compatibility): one word per character.
_WIDE_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))


def _character_class(ranges) -> str:
    return "[" + "".join(f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges) + "]"


_DIACRITICS = re.compile(_character_class(_DIACRITIC_RANGES))
# Punctuation, symbols and "_" (which `\w` would keep) become spaces, so "end.Start" is two words.
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_NUMBERS = re.compile(r"\d+")
_WIDE_SCRIPTS = re.compile("(" + _character_class(_WIDE_RANGES) + ")")


def normalize_text(text: str) -> str:
    """The normal form of one text: its words joined by single spaces."""
    text = _DIACRITICS.sub("", unicodedata.normalize("NFKD", text.lower()))
    text = _PUNCTUATION.sub(" ", text)
    text = _NUMBERS.sub("0", text)
    text = _WIDE_SCRIPTS.sub(r" \1 ", text)
    return " ".join(text.split())


# Classes of code points for the vectorised path; `\w` is `str.isalnum()` or "_", `\d` is `str.isdecimal()`,
# exactly as Python's `re` defines them for str patterns.
SEPARATOR, WORD, DIGIT, WIDE, DIACRITIC = range(5)


@functools.cache
def _class_table() -> np.ndarray:
    """The class of every code point (1.1 M entries, built once per process in ~0.2 s)."""
    table = np.zeros(sys.maxunicode + 1, dtype=np.uint8)
    characters = map(chr, range(sys.maxunicode + 1))
    table[[i for i, c in enumerate(characters) if c.isalnum()]] = WORD
    table[[i for i in range(sys.maxunicode + 1) if chr(i).isdecimal()]] = DIGIT
    for low, high in _WIDE_RANGES:
        block = table[low : high + 1]
        block[block == WORD] = WIDE
    for low, high in _DIACRITIC_RANGES:
        table[low : high + 1] = DIACRITIC
    return table


@dataclass
class Tokens:
    """The words of a batch of texts, as spans of one array of normalised code points."""

    code_points: np.ndarray  # uint32: the normalised batch; 0 separates texts, words are maximal spans
    starts: np.ndarray  # int64 [words]: first code point of each word
    ends: np.ndarray  # int64 [words]: one past its last code point
    owners: np.ndarray  # int64 [words]: the text each word belongs to
    texts: int


def tokenize_batch(texts: list[str]) -> Tokens:
    """The words of `normalize_text(text)` for every text, in one pass of numpy over the whole batch."""
    joined = DOCUMENT_SEPARATOR.join(text.replace(DOCUMENT_SEPARATOR, " ") for text in texts).lower()
    if not joined.isascii():
        joined = unicodedata.normalize("NFKD", joined)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    classes = _class_table()[points]
    keep = classes != DIACRITIC
    points, classes = points[keep], classes[keep]
    # A run of digits becomes one "0".
    digit = classes == DIGIT
    run_start = digit & ~np.concatenate(([False], digit[:-1]))
    keep = ~digit | run_start
    points, classes = points[keep], classes[keep]
    points = np.where(classes == DIGIT, np.uint32(ord("0")), points)
    in_word = classes != SEPARATOR
    wide = classes == WIDE
    before = np.concatenate(([False], in_word[:-1]))
    after = np.concatenate((in_word[1:], [False]))
    wide_before = np.concatenate(([False], wide[:-1]))
    wide_after = np.concatenate((wide[1:], [False]))
    starts = np.flatnonzero(in_word & (~before | wide | wide_before))
    ends = np.flatnonzero(in_word & (~after | wide | wide_after)) + 1
    owners = np.cumsum(points == 0)[starts]
    return Tokens(points, starts, ends, owners, len(texts))


# ---------------------------------------------------------------------------------------------------------
# URLs

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters that track a click, not name a page (Google Analytics, Facebook, Google Ads, Microsoft).
_TRACKING_PARAMETERS = re.compile(r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid)$", re.IGNORECASE)


def normalize_url(url: str | None) -> str | None:
    """A URL's identity for exact URL dedup, or None when there is no usable URL.

    Two captures are the same page when they differ only in: scheme (http/https), host case, a leading
    "www.", a default port, a fragment, a trailing slash, percent-encoding of unreserved characters, the
    order of query parameters, or click-tracking parameters (utm_*, fbclid, gclid, ...).
    """
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # an invalid port or IPv6 literal: keep the URL as its own identity
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = quote(unquote(parts.path), safe="/%:@!$&'()*+,;=~") or "/"
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    query = sorted((key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True)
                   if not _TRACKING_PARAMETERS.match(key))
    web = scheme in ("http", "https", "")
    return urlunsplit(("web" if web else scheme, host, path, urlencode(query), ""))
