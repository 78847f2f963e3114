"""HTML page → interleaved document: main text from trafilatura, images placed by their DOM position.

One parse per page (lxml, through trafilatura's loader), then:

1. `sources.resolve_images` resolves every `<img>` in the DOM (lazy-load attributes, srcset and `<picture>`,
   noscript fallbacks, `<base href>`) and records alt, title, figcaption and declared size;
2. trafilatura extracts the main text *without* images, so the text is exactly trafilatura's text-only
   extraction (turning its image mode on changes which blocks it keeps: trafilatura issue #194);
3. `align.build_stream` flattens the page's visible text and notes where each image stands;
4. `layout.interleave` locates that text in the page, puts it back in page order, keeps the images that stand
   within it and renders the slots (block rule in docs/extraction.md).

Cheap checks run first on the decoded text: a page that is binary junk is `extract.not_html`; with
`require_image`, a page without any `<img` tag is `extract.no_image` before it is parsed. Each page gets at
most `timeout_seconds` of CPU time; a page that needs more becomes an `error.extract.timeout` row.
"""

from __future__ import annotations

import re
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass

from lxml import etree
from lxml import html as lxml_html

from omnicorpus.document import Document, new_image_info
from omnicorpus.extract.align import build_stream
from omnicorpus.extract.decode import decode_html, looks_binary
from omnicorpus.extract.engines import ENGINES, resiliparse_body, trafilatura_body
from omnicorpus.extract.layout import Placement, clean_text, interleave
from omnicorpus.extract.sources import caption_elements, resolve_images
from omnicorpus.io.warc import RawPage
from omnicorpus.stage import Stage, StageConfig

FAVOR_CHOICES = ("balanced", "precision", "recall")
_IMG_TAG = re.compile(r"<img[\s/>]", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, kw_only=True)
class ExtractConfig(StageConfig):
    # OmniCorpus drops pages without images at extraction (paper §3.1); a text-only run sets this false.
    require_image: bool = True
    # Which extractor decides the main text (engines.py): "trafilatura" (meets every fidelity target, measured in
    # docs/extraction.md) or "resiliparse" (1.8x faster phase 1, image precision 0.785 against 0.911; trafilatura
    # where it finds no text). Images are placed the same way.
    engine: str = "trafilatura"
    # trafilatura options. Comments are off: they cost main-text F1 (anchors §10). Balanced is trafilatura's
    # default; with it the books.toscrape.com catalogue keeps its 20 covers, and recall mode scores within one
    # or two pages of it on the shared pages (docs/extraction.md).
    favor: str = "balanced"
    include_tables: bool = True
    include_comments: bool = False
    # trafilatura without its fallback extractors (readability, justext), as OmniCorpus runs it ("fallbacks
    # removed: about 2x faster", paper §3.1): one parse per page; measured cost in docs/extraction.md.
    fast: bool = True
    # A real src is the image (OBELICS and mmc4 take src first; it is what a crawler stored in the WARC). False
    # takes the best srcset/<picture> candidate even then. Without a usable src the candidates decide anyway.
    prefer_src: bool = True
    # srcset/<picture>: 0 takes the largest candidate; a width in px takes the candidate closest to it.
    srcset_width: int = 0
    # Image placement (docs/extraction.md): characters of left-out text allowed between an image and the
    # extracted text on each side, and on the one side of a lead or closing picture; measured on the
    # readability pages (bench/fidelity.py: 60 loses recall, 150 loses precision; 0-10 at the edges).
    image_gap_chars: int = 100
    image_edge_gap_chars: int = 10
    # The resiliparse engine: hide class/id-named page furniture from it and drop headings left without a section
    # (extract/boilerplate.py; image precision 0.785 -> 0.906 on the shared pages, docs/extraction.md), and take
    # trafilatura's text instead where resiliparse's has fewer than this many non-space characters (it keeps only
    # the title on 2 shared pages, 49 and 100 characters; the next shortest has 484).
    resiliparse_boilerplate: bool = True
    resiliparse_min_chars: int = 200
    # CPU seconds one page may take; datatrove gives trafilatura 1 s of wall time, we allow more because the
    # step also parses and places images, and CPU time does not grow when the machine is busy.
    timeout_seconds: float = 2.0

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"extract.engine must be one of {ENGINES}, got {self.engine!r}")
        if self.favor not in FAVOR_CHOICES:
            raise ValueError(f"extract.favor must be one of {FAVOR_CHOICES}, got {self.favor!r}")
        for name in ("srcset_width", "image_gap_chars", "image_edge_gap_chars", "resiliparse_min_chars"):
            if getattr(self, name) < 0:
                raise ValueError(f"extract.{name} must be >= 0, got {getattr(self, name)}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"extract.timeout_seconds must be > 0, got {self.timeout_seconds}")


class ExtractTimeout(Exception):
    """A page took longer than extract.timeout_seconds; it becomes an error.extract.timeout row."""

    error_code = "timeout"


class ExtractStage(Stage[ExtractConfig]):
    name = "extract"
    reasons = ("not_html", "no_text", "no_image")
    signals = {"html_bytes": "int64", "text_chars": "int64", "page_images": "int32", "extracted_images": "int32"}

    def setup(self) -> None:
        import trafilatura  # noqa: F401  (imported here: heavy, and only workers need it)

        if self.config.engine == "resiliparse":
            import resiliparse.extract.html2text  # noqa: F401

    def process(self, page: RawPage) -> Document | str:
        with cpu_time_limit(self.config.timeout_seconds):
            return self._process(page)

    def _process(self, page: RawPage) -> Document | str:
        if looks_binary(page.payload):
            return "not_html"
        html, _ = decode_html(page.payload, page.content_type)
        if self.config.require_image and not _IMG_TAG.search(html):
            return "no_image"
        document = page.shell_document()
        extracted = self._extract(html, page.url)
        if extracted is None:
            return "no_text"
        document.title, items, page_images = extracted
        for item in items:
            if item.kind == "text":
                document.append_text(item.text)
            else:
                image = item.image
                document.append_image(image.url, new_image_info(
                    status="not_fetched", alt=image.alt, title=image.title, caption=image.caption,
                    declared_width=image.declared_width, declared_height=image.declared_height))
        document.signals.update(
            html_bytes=len(page.payload),
            text_chars=sum(len(text) for _, text in document.text_slots()),
            page_images=page_images,
            extracted_images=document.num_images,
        )
        if not any(True for _ in document.text_slots()):
            return "no_text"
        if self.config.require_image and document.num_images == 0:
            return "no_image"
        return document

    def _extract(self, html: str, url: str):
        tree = parse_html(html)
        if tree is None:
            return None
        title = _title_of(tree)
        captions = caption_elements(tree)
        images = resolve_images(tree, url, self.config.srcset_width, self.config.prefer_src, captions)
        engine = self.config.engine
        body = resiliparse_body(tree, self.config) if engine == "resiliparse" else None
        if body is not None and _key_chars(body) < self.config.resiliparse_min_chars:
            body = None
        if body is None:
            # trafilatura is the default engine, and resiliparse's fallback where it finds (almost) no main text.
            engine, body = "trafilatura", trafilatura_body(tree, url, self.config)
        if body is None:
            return None
        # The engine worked on its own copy of the page: this tree can now be flattened (and changed on the way).
        stream = build_stream(tree, [image.card for image in images if image.card is not None], captions)
        placement = Placement(gap_chars=self.config.image_gap_chars, edge_gap_chars=self.config.image_edge_gap_chars,
                              trust_cards=engine == "trafilatura")
        return title, interleave(body, stream, images, placement), len(images)


# The parser trafilatura's loader uses, with HtmlElement for every element (trafilatura takes only HtmlElement
# trees) chosen in C: lxml.html's own class lookup calls Python for every element touched, which cost more than
# the parse itself across image resolution and page positions (bench/extract_profile.py).
_HTML_PARSER = etree.HTMLParser(collect_ids=False, default_doctype=False, encoding="utf-8", remove_comments=True,
                                remove_pis=True)
_HTML_PARSER.set_element_class_lookup(etree.ElementDefaultClassLookup(
    element=lxml_html.HtmlElement, comment=lxml_html.HtmlComment, pi=lxml_html.HtmlProcessingInstruction,
    entity=lxml_html.HtmlEntity))
# Characters lxml refuses in strings it is given (trafilatura removes them before parsing): deleted from the
# UTF-8 bytes, where they are single bytes, and the two noncharacters U+FFFE and U+FFFF.
_XML_INVALID_BYTES = bytes([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
_NONCHARACTERS = ("\ufffe".encode(), "\uffff".encode())
# libxml2 mishandles a doctype with a slash and a self-closing <html/> (lxml bug 1955915); trafilatura's loader
# removes both the same way.
_SLASHED_DOCTYPE = re.compile(r"^< ?! ?DOCTYPE[^>]*/[^<>]*>", re.IGNORECASE)
_SELF_CLOSING_HTML = re.compile(r"(<html.*?)\s*/>", re.IGNORECASE)


def parse_html(html: str):
    """The page as an lxml tree of HtmlElement, or None when it is not HTML (what trafilatura's `load_html` does,
    at about half its cost: the control characters are removed from bytes, not with a regex over the text)."""
    beginning = html[:50].lower()
    if "doctype" in beginning:
        first_line, newline, rest = html.partition("\n")
        html = _SLASHED_DOCTYPE.sub("", first_line, count=1) + newline + rest
    for line in html[:4096].splitlines()[:4]:
        if "<html" in line and line.endswith("/>"):
            html = _SELF_CLOSING_HTML.sub(r"\1>", html, count=1)
            break
    data = html.encode("utf-8", "replace").translate(None, _XML_INVALID_BYTES)
    if b"\xef\xbf" in data:
        for noncharacter in _NONCHARACTERS:
            data = data.replace(noncharacter, b"")
    try:
        tree = etree.fromstring(data, parser=_HTML_PARSER)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):  # nothing to parse, e.g. only whitespace
        return None
    # Not HTML at all (no <html> near the start and next to nothing parsed): trafilatura's rejection test.
    if tree is None or ("html" not in beginning and len(tree) < 2):
        return None
    return tree


def _key_chars(body) -> int:
    """Non-space characters of an engine's output."""
    return sum(len("".join(text.split())) for text in body.itertext())


def _title_of(tree) -> str | None:
    for xpath in ('//meta[@property="og:title"]/@content', "//title/text()", "//h1//text()"):
        found = tree.xpath(xpath)
        if found:
            title = clean_text(_SPACES.sub(" ", " ".join(found)))
            if title:
                return title[:1000]
    return None


@contextmanager
def cpu_time_limit(seconds: float):
    """Raise ExtractTimeout in this block once the process has used `seconds` of CPU time in it.

    Uses the profiling timer (SIGPROF), so a page is not cut short because the machine is busy. Signals only
    reach the main thread: elsewhere the block runs without a limit. C code (the lxml parse) finishes its call
    before the signal is handled, so the input size limits of the read stage still matter.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    message = f"extraction took more than {seconds} CPU seconds"
    expired = False

    def expire(signum, frame):
        nonlocal expired
        expired = True
        raise ExtractTimeout(message)

    previous = signal.signal(signal.SIGPROF, expire)
    # The timer repeats every 50 ms of CPU after the first expiry: library code that catches the exception
    # (trafilatura's own fallbacks do) gets it again until the block is left.
    signal.setitimer(signal.ITIMER_PROF, seconds, 0.05)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        # None: the previous handler was not set from Python; the default is what it was.
        signal.signal(signal.SIGPROF, previous if previous is not None else signal.SIG_DFL)
    if expired:  # a library swallowed every expiry and returned: its result came too late to be trusted
        raise ExtractTimeout(message)
