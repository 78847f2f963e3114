"""HTML page → interleaved document: trafilatura's main body walked in order into text and image slots.

trafilatura (with `include_images=True`) returns its main body as an XML tree in which images stand as
`<graphic src alt title>` where the page had them. Walking that tree in document order gives the slots:
text blocks (headings, paragraphs, list items, table rows) accumulate into one text slot, joined by blank
lines, until an image interrupts them. See docs/extraction.md for the block rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urljoin, urlsplit

from omnicorpus.document import Document, new_image_info
from omnicorpus.extract.decode import decode_html, looks_binary
from omnicorpus.io.warc import RawPage, registered_domain
from omnicorpus.stage import Stage, StageConfig

FAVOR_CHOICES = ("balanced", "precision", "recall")

# Tags of trafilatura's output tree that start a new block (joined by a blank line) or a new line.
_BLOCK_TAGS = frozenset({"head", "p", "list", "quote", "table", "code", "div", "section", "main", "body"})
_LINE_TAGS = frozenset({"item", "row", "lb"})
_CELL_SEPARATOR = " | "
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")


@dataclass(frozen=True, kw_only=True)
class ExtractConfig(StageConfig):
    # OmniCorpus drops pages without images at extraction (paper §3.1); a text-only run sets this false.
    require_image: bool = True
    # trafilatura options. Comments are off: they cost main-text F1 (anchors §10).
    favor: str = "balanced"
    include_tables: bool = True
    include_comments: bool = False
    # trafilatura's fast mode skips its fallback extractors (OmniCorpus reports ~2x from removing fallbacks).
    fast: bool = False

    def __post_init__(self):
        if self.favor not in FAVOR_CHOICES:
            raise ValueError(f"extract.favor must be one of {FAVOR_CHOICES}, got {self.favor!r}")


class ExtractStage(Stage[ExtractConfig]):
    name = "extract"
    reasons = ("not_html", "no_text", "no_image")
    signals = {"html_bytes": "int64", "text_chars": "int64", "extracted_images": "int32"}

    def setup(self) -> None:
        import trafilatura  # noqa: F401  (imported here: heavy, and only workers need it)

    def process(self, page: RawPage) -> Document | str:
        if looks_binary(page.payload):
            return "not_html"
        html, _ = decode_html(page.payload, page.content_type)
        document = page.shell_document()
        extracted = self._extract(html, page.url)
        if extracted is None:
            return "no_text"
        title, body = extracted
        document.title = title
        for kind, value, attributes in walk_body(body, page.url):
            if kind == "text":
                document.append_text(value)
            else:
                document.append_image(value, new_image_info(status="not_fetched", **attributes))
        document.signals.update(
            html_bytes=len(page.payload),
            text_chars=sum(len(text) for _, text in document.text_slots()),
            extracted_images=document.num_images,
        )
        if not any(True for _ in document.text_slots()):
            return "no_text"
        if self.config.require_image and document.num_images == 0:
            return "no_image"
        return document

    def _extract(self, html: str, url: str):
        from trafilatura import bare_extraction, load_html

        tree = load_html(html)
        if tree is None:
            return None
        title = _title_of(tree)
        result = bare_extraction(
            tree,
            url=url,
            include_images=True,
            include_tables=self.config.include_tables,
            include_comments=self.config.include_comments,
            favor_precision=self.config.favor == "precision",
            favor_recall=self.config.favor == "recall",
            fast=self.config.fast,
            with_metadata=False,
            deduplicate=False,
        )
        if result is None or result.body is None:
            return None
        return title, result.body


def _title_of(tree) -> str | None:
    for xpath in ('//meta[@property="og:title"]/@content', "//title/text()", "//h1//text()"):
        found = tree.xpath(xpath)
        if found:
            title = _SPACES.sub(" ", " ".join(found)).strip()
            if title:
                return title[:1000]
    return None


def absolute_image_url(src: str | None, page_url: str) -> str | None:
    """The absolute http(s) URL of an image source, or None for data: URIs and unusable values."""
    if not src:
        return None
    src = src.strip()
    if not src or src.startswith(("data:", "javascript:", "about:", "blob:")):
        return None
    url = urljoin(page_url, src)
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        return None
    return url


def walk_body(body, page_url: str) -> Iterator[tuple[str, str, dict]]:
    """Yield ('text', block, {}) and ('image', url, attributes) in document order."""
    walker = _BodyWalker(base_url=page_url)
    walker.visit(body)
    walker.flush()
    return iter(walker.items)


class _BodyWalker:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.items: list[tuple[str, str, dict]] = []
        self.lines: list[str] = []  # finished lines of the current block
        self.line: list[str] = []  # pieces of the current line

    def visit(self, element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == "graphic":
            self.flush()
            url = absolute_image_url(element.get("src"), self.base_url)
            if url:
                attributes = {"alt": _clean(element.get("alt")), "title": _clean(element.get("title"))}
                self.items.append(("image", url, attributes))
            self._text(element.tail)
            return
        if tag in _BLOCK_TAGS:
            self.flush()
        elif tag in _LINE_TAGS:
            self.end_line()
        elif tag == "cell" and self.line:
            self.line.append(_CELL_SEPARATOR)
        self._text(element.text)
        for child in element:
            self.visit(child)
        if tag in _BLOCK_TAGS:
            self.flush()
        elif tag in _LINE_TAGS:
            self.end_line()
        self._text(element.tail)

    def _text(self, text: str | None) -> None:
        if text:
            self.line.append(text)

    def end_line(self) -> None:
        line = _SPACES.sub(" ", "".join(self.line)).strip().strip("|").strip()
        for part in line.split("\n"):
            part = part.strip()
            if part:
                self.lines.append(part)
        self.line = []

    def flush(self) -> None:
        self.end_line()
        if self.lines:
            self.items.append(("text", "\n".join(self.lines), {}))
        self.lines = []


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = _SPACES.sub(" ", value).strip()
    return value or None
