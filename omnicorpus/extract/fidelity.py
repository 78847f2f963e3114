"""Fidelity metrics of an interleaved extraction against ground truth (used by bench/fidelity.py).

- `token_f1(extracted, reference)`: bag-of-tokens precision/recall/F1 of a main text against a reference text.
  Tokens are casefolded word runs of the NFC text; Han, kana and hangul characters count one token each, so Chinese and
  Japanese pages are scored on characters instead of on whole unsegmented lines.
- `snippet_scores(extracted, with_snippets, without_snippets)`: trafilatura's own evaluation protocol
  (tests/evaldata.json, `evaluate_result` in its comparison scripts: `snippet in result`) weighted by tokens:
  tokens of a `with` snippet found in the text are true positives, not found false negatives; tokens of a
  `without` snippet (boilerplate) found in the text are false positives. "Found" is a substring test, as
  trafilatura's, on the casefolded tokens joined by single spaces (so line breaks and punctuation do not matter);
  the snippets were cut from the page at arbitrary characters ("runggelenk operierte worden", "ann. Nach
  Informationen"), so a snippet may start or end inside a word.
- `image_scores(extracted_urls, expected_images)`: recall and precision of image URLs against the images of a
  reference extraction, and Kendall's tau between the two orders over the matched pairs. An expected image is
  matched by any of its candidate URLs (src, srcset entries), because a resolver may rightly pick another
  resolution of the same picture.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Sequence
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from omnicorpus.extract.sources import LAZY_SRC_ATTRIBUTES, LAZY_SRCSET_ATTRIBUTES, is_placeholder, parse_srcset

_WORDS = re.compile(r"\w+")
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_SPLIT = re.compile(f"[{_CJK}]|[^{_CJK}]+")
_HAS_CJK = re.compile(f"[{_CJK}]")


def tokens(text: str | None) -> list[str]:
    """Casefolded word tokens of the NFC text; each CJK character is a token of its own."""
    result = []
    for word in _WORDS.findall(unicodedata.normalize("NFC", text or "").casefold()):
        if _HAS_CJK.search(word):
            result.extend(_CJK_SPLIT.findall(word))
        else:
            result.append(word)
    return result


@dataclass(frozen=True)
class Scores:
    true_positives: float
    false_positives: float
    false_negatives: float

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: "Scores") -> "Scores":
        return Scores(self.true_positives + other.true_positives, self.false_positives + other.false_positives,
                      self.false_negatives + other.false_negatives)


def token_f1(extracted: str, reference: str) -> Scores:
    got, want = Counter(tokens(extracted)), Counter(tokens(reference))
    overlap = sum((got & want).values())
    return Scores(overlap, sum(got.values()) - overlap, sum(want.values()) - overlap)


def snippet_scores(extracted: str, with_snippets: Iterable[str], without_snippets: Iterable[str]) -> Scores:
    text = " ".join(tokens(extracted))
    true_positives = false_negatives = false_positives = 0
    for snippet in with_snippets:
        words = tokens(snippet)
        if " ".join(words) in text:
            true_positives += len(words)
        else:
            false_negatives += len(words)
    for snippet in without_snippets:
        words = tokens(snippet)
        if words and " ".join(words) in text:
            false_positives += len(words)
    return Scores(true_positives, false_positives, false_negatives)


def normalize_url(url: str, base: str | None = None) -> str | None:
    """A comparable form of an image URL: absolute, percent-decoded, lowercase scheme and host, no fragment.
    None for data: URIs and values that are not http(s) URLs."""
    url = (url or "").strip()
    if not url or url.startswith("data:"):
        return None
    if base:
        url = urljoin(base, url)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), unquote(parts.path), unquote(parts.query), ""))


def image_candidates(img, base: str) -> frozenset[str]:
    """Normalized URLs that identify one `<img>`: src, srcset entries, lazy-load attributes and the srcset
    entries of the `<source>` elements of its `<picture>` (placeholders left out)."""
    urls = [img.get(name) or "" for name in ("src",) + LAZY_SRC_ATTRIBUTES]
    for name in ("srcset",) + LAZY_SRCSET_ATTRIBUTES:
        urls += [c.url for c in parse_srcset(img.get(name))]
    picture = next(img.iterancestors("picture"), None)
    if picture is not None:
        for source in picture.iter("source"):
            for name in ("srcset",) + LAZY_SRCSET_ATTRIBUTES:
                urls += [c.url for c in parse_srcset(source.get(name))]
    return frozenset({normalize_url(url, base) for url in urls if not is_placeholder(url)} - {None})


def same_picture(expected: list[frozenset[str]], page_images: list[frozenset[str]]) -> list[frozenset[str]]:
    """Widen each expected image's URLs with every URL the source page gives for the same `<img>` (another
    resolution in srcset, the lazy-load original), so a resolver that picks another version of the same picture
    is not counted wrong."""
    widened = []
    for candidates in expected:
        urls = set(candidates)
        for page_candidates in page_images:
            if page_candidates & candidates:
                urls |= page_candidates
        widened.append(frozenset(urls))
    return widened


@dataclass(frozen=True)
class ImageScores:
    matched: int
    extracted: int
    expected: int
    kendall_tau: float | None  # None when fewer than two images matched

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.matched / self.extracted if self.extracted else 1.0


def image_scores(extracted: Sequence[str], expected: Sequence[frozenset[str]]) -> ImageScores:
    """`extracted`: normalized URLs in output order. `expected`: per reference image, its normalized candidates.

    Each expected image (in reference order) is matched to the earliest unmatched extracted image among its
    candidates, so repeated URLs pair up in order.
    """
    used = [False] * len(extracted)
    pairs: list[tuple[int, int]] = []  # (expected position, extracted position)
    for want_position, candidates in enumerate(expected):
        for got_position, url in enumerate(extracted):
            if not used[got_position] and url in candidates:
                used[got_position] = True
                pairs.append((want_position, got_position))
                break
    return ImageScores(len(pairs), len(extracted), len(expected), kendall_tau([got for _, got in pairs]))


def kendall_tau(order: Sequence[int]) -> float | None:
    """Kendall's tau between positions 0..n-1 and `order` (distinct values): 1.0 when `order` is increasing."""
    n = len(order)
    if n < 2:
        return None
    concordant = discordant = 0
    for i in range(n):
        for j in range(i + 1, n):
            if order[i] < order[j]:
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / (n * (n - 1) / 2)
