"""Where extracted text stands in the page: the DOM as one text stream, and extracted pieces located in it.

The page's visible text, in document order, is flattened into one *key*: NFC text with whitespace and control
characters removed (so the spacing an extractor adds or drops does not matter). Each image stands at an offset
of that key. An extractor's output pieces (its text nodes) are found in the key with a forward search from the
previous piece, so every extracted piece gets a DOM position; pieces too short to be told apart inherit the
position of the piece before them.

With both on one axis, an image's place among the extracted text is known exactly, and so is how much text the
extractor left out between the image and the nearest extracted text (its *gap*), which is what decides whether
an image belongs to the main body (see `ImagePlacement`).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from lxml import etree

from omnicorpus.extract.sources import caption_elements, marker_index

# Subtrees whose text a browser does not show as page text.
HIDDEN_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "textarea", "select",
                         "option", "svg", "math", "iframe", "object", "embed", "canvas", "button"})
_UNSEEN = re.compile(r"[\s\u00ad\u200b-\u200f\u2028-\u202f\u2060\ufeff\x00-\x1f\x7f-\x9f]+")
# The characters of _UNSEEN that str.split() does not already remove (it removes every str.isspace()
# character, which is what \s matches): text_key splits first, which is faster on a whole page's text.
_UNSEEN_NOT_SPACE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060\ufeff\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]+")
# Pieces with fewer key characters than this are not searched for: too likely to match in the wrong place.
MIN_ANCHOR_CHARS = 3


def text_key(text: str | None) -> str:
    """Comparable form of a text: NFC, without whitespace, soft hyphens, zero-width and control characters."""
    if not text:
        return ""
    return _UNSEEN_NOT_SPACE.sub("", "".join(unicodedata.normalize("NFC", text).split()))


@dataclass
class DomStream:
    key: str
    image_offsets: dict[int, int]  # image index (marker) -> key offset where it stands
    captions: list[tuple[int, int]]  # key intervals of caption text, sorted
    ranges: dict = field(default_factory=dict)  # element -> key interval, for the elements asked for
    _caption_starts: list[int] = field(default_factory=list)

    def caption_chars(self, start: int, end: int) -> int:
        """Characters of caption text inside [start, end)."""
        total = 0
        for caption_start, caption_end in self.captions[max(0, bisect_right(self._caption_starts, start) - 1):]:
            if caption_start >= end:
                break
            total += max(0, min(end, caption_end) - max(start, caption_start))
        return total


# Private-use characters marking, in the serialized text, where images stand and where captions and tracked
# elements begin and end. NFC leaves them alone and pages practically never contain them; any that a page does
# contain are removed from the key first.
_IMAGE, _CAPTION_START, _CAPTION_END, _OPEN, _CLOSE, _STOP = "\ue000", "\ue002", "\ue003", "\ue004", "\ue005", "\ue001"
_SENTINELS = re.compile(f"{_IMAGE}(\\d+){_STOP}|{_CAPTION_START}|{_CAPTION_END}|{_OPEN}(\\d+){_STOP}|{_CLOSE}(\\d+){_STOP}")
_PRIVATE = re.compile("[\ue000-\ue005]")


def build_stream(tree, track=(), captions: list | None = None) -> DomStream:
    """Flatten the visible text of `tree` in document order; the key interval of each element of `track` is
    recorded in `ranges`.

    The tree is changed on the way (hidden subtrees removed, markers added), so call this after the extractor
    has run on it. All the work is done by lxml and the regex engine: a page costs a few C passes, whatever its
    size or depth, instead of a Python call per element.
    """
    etree.strip_elements(tree, *HIDDEN_TAGS, with_tail=False)
    for img in tree.iter("img"):
        index = marker_index(img.get("src"))
        img.text = f"{_IMAGE}{index}{_STOP}" if index is not None else None
    for caption in caption_elements(tree) if captions is None else captions:
        _wrap(caption, _CAPTION_START, _CAPTION_END)
    tracked = list(dict.fromkeys(track))
    for number, element in enumerate(tracked):
        _wrap(element, f"{_OPEN}{number}{_STOP}", f"{_CLOSE}{number}{_STOP}")
    text = etree.tostring(tree, method="text", encoding="unicode", with_tail=False)
    return _parse_markers(text_key(text), tracked)


def _wrap(element, before: str, after: str) -> None:
    element.text = before + (element.text or "")
    if len(element):
        element[-1].tail = (element[-1].tail or "") + after
    else:
        element.text += after


def _parse_markers(marked: str, tracked: list) -> DomStream:
    pieces: list[str] = []
    length = 0
    images: dict[int, int] = {}
    captions: list[tuple[int, int]] = []
    caption_starts: list[int] = []
    opened: dict[int, int] = {}
    ranges: dict = {}
    position = 0
    for match in _SENTINELS.finditer(marked):
        piece = _PRIVATE.sub("", marked[position:match.start()])
        pieces.append(piece)
        length += len(piece)
        position = match.end()
        marker = match.group(0)[0]
        if marker == _IMAGE:
            images[int(match.group(1))] = length
        elif marker == _CAPTION_START:
            caption_starts.append(length)
        elif marker == _CAPTION_END and caption_starts:
            captions.append((caption_starts.pop(), length))
        elif marker == _OPEN:
            opened[int(match.group(2))] = length
        elif marker == _CLOSE:
            number = int(match.group(3))
            ranges[tracked[number]] = (opened.pop(number, length), length)
    pieces.append(_PRIVATE.sub("", marked[position:]))
    captions.sort()
    return DomStream("".join(pieces), images, captions, ranges, [start for start, _ in captions])


@dataclass
class Anchors:
    """DOM key spans of extracted pieces, in key order, with fast gap queries."""

    starts: list[int]
    ends: list[int]

    @classmethod
    def of(cls, spans: list[tuple[int, int]]) -> "Anchors":
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return cls([s for s, _ in merged], [e for _, e in merged])

    def inside(self, offset: int) -> bool:
        """True when `offset` lies strictly within one extracted span (an image in the middle of a paragraph)."""
        i = bisect_right(self.starts, offset) - 1
        return i >= 0 and self.starts[i] < offset < self.ends[i]

    def overlaps(self, start: int, end: int) -> bool:
        """True when extracted text lies in [start, end)."""
        i = bisect_left(self.ends, start + 1)
        return i < len(self.starts) and self.starts[i] < end

    def previous_end(self, offset: int) -> int | None:
        i = bisect_right(self.ends, offset) - 1
        return self.ends[i] if i >= 0 else None

    def next_start(self, offset: int) -> int | None:
        i = bisect_left(self.starts, offset)
        return self.starts[i] if i < len(self.starts) else None


class Locator:
    """Finds extracted pieces in the DOM key, in output order."""

    def __init__(self, stream: DomStream):
        self.key = stream.key
        self.cursor = 0
        self.spans: list[tuple[int, int]] = []

    def locate(self, text: str | None) -> tuple[int, int] | None:
        """The key span of `text` (None when it is too short or not found)."""
        key = text_key(text)
        if len(key) < MIN_ANCHOR_CHARS:
            return None
        position = self.key.find(key, self.cursor)
        if position < 0:
            position = self.key.find(key)  # output out of page order: look from the start
            if position < 0:
                return None
        self.cursor = position + len(key)
        self.spans.append((position, position + len(key)))
        return position, position + len(key)


def cut_after_key_chars(text: str, count: int) -> int:
    """The index in `text` after its first `count` key characters (those `text_key` keeps)."""
    if count <= 0:
        return 0
    for index, character in enumerate(text):
        if not _UNSEEN.match(character):
            count -= 1
            if count == 0:
                return index + 1
    return len(text)
