"""Extracted text + the page's images → slots in page order.

The extractor (trafilatura, text only) decides what the main text is; this module decides which images belong to
it and where they stand, from DOM positions (`omnicorpus.extract.align`):

1. every text node of the extractor's output is located in the page; output blocks are put back in page order
   (extractors append rescued text after the main part, which would put it out of place);
2. an image is kept when it stands inside extracted text, or when at most `gap_chars` characters of text the
   extractor left out separate it from extracted text on both sides (captions do not count: they belong to
   the image); an image before the first or after the last extracted text needs its one side within
   `edge_gap_chars`. Sidebars, teaser lists and footers are separated from the main text by the text the
   extractor dropped with them, so their images fall out with it;
3. slots are rendered with the block rule: headings, paragraphs, lists, tables, quotes and code are blocks joined
   by a blank line within a text slot; list items and table rows are lines joined by a newline; table cells are
   joined by " | "; an image ends the text slot before it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterator

from lxml import etree

from omnicorpus.extract.align import Anchors, DomStream, Locator, cut_after_key_chars
from omnicorpus.extract.sources import ImageSource

# Tags of trafilatura's output tree that start a new block (joined by a blank line) or a new line.
BLOCK_TAGS = frozenset({"head", "p", "list", "quote", "table", "code", "div", "section", "main", "body"})
LINE_TAGS = frozenset({"item", "row", "lb"})
CELL_SEPARATOR = " | "
# A card (an image link and a text link to the same page) holds a title and a line or two: at most this many
# characters of text (whitespace excluded). The teaser cards of the shared pages hold 7 to 250.
CARD_MAX_CHARS = 500
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True, kw_only=True)
class Placement:
    # Left-out characters (whitespace excluded) allowed between an image and extracted text on each side.
    gap_chars: int
    # The same for an image before the first or after the last extracted text (lead images, closing figures).
    edge_gap_chars: int
    # Whether a kept card (an image link and a text link to the same page, whose text the engine kept) makes its
    # picture part of the main text, as in a catalogue. True for trafilatura; resiliparse keeps teaser text, so
    # with it a kept card proves nothing (bench/fidelity.py: image precision 0.873 trusting them, 0.906 not).
    trust_cards: bool = True


@dataclass(frozen=True)
class Item:
    kind: str  # "text" or "image"
    text: str | None = None
    image: ImageSource | None = None


def interleave(body, stream: DomStream, images: list[ImageSource], placement: Placement) -> list[Item]:
    blocks = _located_blocks(body, Locator(stream))
    anchors = Anchors.of([span for block in blocks for span in block.spans])
    kept = sorted(
        ((stream.image_offsets[image.index], image) for image in images
         if image.index in stream.image_offsets
         and keeps_image(image, stream.image_offsets[image.index], anchors, stream, placement)),
        key=lambda pair: pair[0],
    )
    renderer = _Renderer(kept)
    for block in _in_page_order(blocks):
        renderer.render(block.events)
    return renderer.finish()


def keeps_image(image: ImageSource, offset: int, anchors: Anchors, stream: DomStream, placement: Placement) -> bool:
    card = stream.ranges.get(image.card) if image.card is not None else None
    if card is not None and card[1] - card[0] > CARD_MAX_CHARS:
        card = None  # the shared ancestor is a page section, not a card
    if card is not None and not anchors.overlaps(*card):
        return False  # a card for another page whose text the extractor left out: related articles, author boxes
    if anchors.inside(offset):
        return True
    if image.link in ("page", "control") and (card is None or not placement.trust_cards):
        # Between blocks, a picture that leads to another page or works a widget, outside a card whose text was
        # kept, is navigation: teaser thumbnails, logos, author avatars, share and gallery buttons.
        return False
    before, after = anchors.previous_end(offset), anchors.next_start(offset)
    left = None if before is None else _left_out(stream, before, offset, card)
    right = None if after is None else _left_out(stream, offset, after, card)
    if left is None and right is None:
        return False
    if left is None or right is None:
        # Before the first or after the last paragraph: a lead or closing picture.
        return (right if left is None else left) <= placement.edge_gap_chars
    return left <= placement.gap_chars and right <= placement.gap_chars


def _left_out(stream: DomStream, start: int, end: int, card: tuple[int, int] | None) -> int:
    """Characters in [start, end) that are neither captions nor the text of the image's own card."""
    chars = end - start - stream.caption_chars(start, end)
    if card is not None:
        chars -= max(0, min(end, card[1]) - max(start, card[0]))
    return max(0, chars)


# -- the output tree as located events -------------------------------------------------------------------


@dataclass
class _Block:
    events: list[tuple]  # ("start", tag) | ("end", tag) | ("text", text, (start, end) key span or None)
    spans: list[tuple[int, int]]
    offset: int | None  # where the block starts in the page (its first located text)


def _located_blocks(body, locator: Locator) -> list[_Block]:
    """The body's top-level elements as event lists, each text node located in the page (output order)."""
    blocks: list[_Block] = []
    if body.text and body.text.strip():
        blocks.append(_Block([], [], None))
        _add_text(blocks[-1], body.text, locator)
    for child in body:
        block = _Block([], [], None)
        for event, element in etree.iterwalk(child, events=("start", "end")):
            tag = element.tag if isinstance(element.tag, str) else ""
            if event == "start":
                block.events.append(("start", tag))
                _add_text(block, element.text, locator)
            else:
                block.events.append(("end", tag))
                if element is not child:
                    _add_text(block, element.tail, locator)
        _add_text(block, child.tail, locator)
        blocks.append(block)
    return blocks


def _add_text(block: _Block, text: str | None, locator: Locator) -> None:
    if not text:
        return
    span = locator.locate(text)
    if span is not None:
        block.spans.append(span)
        if block.offset is None:
            block.offset = span[0]
    block.events.append(("text", text, span))


def _in_page_order(blocks: list[_Block]) -> list[_Block]:
    """Blocks sorted by page position; a block that could not be located stays right after its predecessor."""
    keyed, previous = [], -1
    for order, block in enumerate(blocks):
        previous = block.offset if block.offset is not None else previous
        keyed.append((previous, order, block))
    return [block for _, _, block in sorted(keyed, key=lambda item: (item[0], item[1]))]


# -- rendering -------------------------------------------------------------------------------------------


class _Renderer:
    def __init__(self, images: list[tuple[int, ImageSource]]):
        self.pending = images  # (offset, image), sorted by offset
        self.next_image = 0
        self.items: list[Item] = []
        self.lines: list[str] = []  # finished lines of the current block
        self.line: list[str] = []  # pieces of the current line
        self.last_offset = -1

    def render(self, events: list[tuple]) -> None:
        for event in events:
            kind = event[0]
            if kind == "text":
                self._text(event[1], event[2])
            elif event[1] in BLOCK_TAGS:
                self.flush()
            elif event[1] in LINE_TAGS:
                self.end_line()
            elif kind == "start" and event[1] == "cell" and self.line:
                self.line.append(CELL_SEPARATOR)

    def _text(self, text: str, span: tuple[int, int] | None) -> None:
        if span is None:  # not located: it stands right after the text before it
            self._images_before(self.last_offset)
            self.line.append(text)
            return
        start, end = span
        self._images_before(start)
        # An image inside this text node (trafilatura joins the text around an <img> it drops): split it there.
        while self.next_image < len(self.pending) and self.pending[self.next_image][0] < end:
            offset = self.pending[self.next_image][0]
            cut = cut_after_key_chars(text, offset - start)
            self.line.append(text[:cut])
            text, start = text[cut:], offset
            self._images_before(offset)
        self.line.append(text)
        self.last_offset = max(self.last_offset, end)

    def finish(self) -> list[Item]:
        self._images_before(float("inf"))
        self.flush()
        return self.items

    def _images_before(self, offset) -> None:
        while self.next_image < len(self.pending) and self.pending[self.next_image][0] <= offset:
            self.flush()
            self.items.append(Item("image", image=self.pending[self.next_image][1]))
            self.next_image += 1

    def end_line(self) -> None:
        line = clean_text("".join(self.line)).strip("|").strip()
        for part in line.split("\n"):
            part = part.strip()
            if part:
                self.lines.append(part)
        self.line = []

    def flush(self) -> None:
        self.end_line()
        if self.lines:
            self.items.append(Item("text", text="\n".join(self.lines)))
        self.lines = []


def clean_text(text: str) -> str:
    """NFC, no control characters, runs of spaces as one space (newlines kept)."""
    return _SPACES.sub(" ", _CONTROL.sub("", unicodedata.normalize("NFC", text))).strip()


def texts_of(items: list[Item]) -> Iterator[str]:
    return (item.text for item in items if item.kind == "text")
