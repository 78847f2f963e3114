"""Image sources resolved in the DOM before extraction: what a browser would finally show for each `<img>`.

Pages rarely put the real image in `src`. This module looks at every `<img>` of a parsed page once and finds:

- which images count: those the page hides (`hidden`, inline `display:none`) and those with no source at all
  are removed; a `<noscript>` holding one image replaces the image placeholder just before it (the pattern
  Medium and most lazy loaders emit; Readability.js does the same);
- the real URL: a lazy-load attribute (the set OBELICS checks plus common variants) wins, since a script swaps
  it in; then a `src` that is a real image (not missing, not a `data:` URI, not a placeholder file), as OBELICS
  and mmc4 take it and as a crawler fetched it into the WARC; otherwise (or with `prefer_src=False`) the
  candidates of `srcset`, `data-srcset` and the `<source>` elements of an enclosing `<picture>`, of which the
  largest (or the one closest to `target_width`) is kept; relative URLs are made absolute against
  `<base href>` when the page has one, else the page URL;
- context: alt, title, the caption of the image's figure or box, the declared width and height;
- what a click on it does (opens a picture, another page, a script control), and whether it is a card: an
  image and a text link to the same page in one small box (layout.py decides what that means for placement).

`resolve_images(tree, page_url)` returns one `ImageSource` per image in document order and rewrites each `<img>`
to a plain `src` naming its index (`marker_url(i)`), which is how the page-position step (align.py) knows which
image stands where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from lxml import etree

# Lazy-load attributes, most specific first. OBELICS' list (anchors §2.4: data-src, data-src-fg,
# data-scroll-image, data-lateloadsrc, data-img-src, data-original, data-gt-lazy-src, data-lazy, data-lazy-src,
# src2) plus the common variants of lazysizes, WordPress and jQuery lazyload.
LAZY_SRC_ATTRIBUTES = (
    "data-lazy-src", "data-original", "data-src", "data-src-fg", "data-scroll-image", "data-lateloadsrc",
    "data-img-src", "data-gt-lazy-src", "data-lazy", "data-original-src", "data-hi-res-src", "data-full-src",
    "data-large-src", "data-url", "src2",
)
LAZY_SRCSET_ATTRIBUTES = ("data-lazy-srcset", "data-srcset", "data-original-set")
# Placeholder files lazy loaders put in src until the real image loads: names made only of these words (at
# least one of the core ones) and numbers, such as blank.gif, spacer.gif, lazy-placeholder.png, grey-1x1.png.
_PLACEHOLDER_WORDS = frozenset({"blank", "spacer", "pixel", "transparent", "placeholder", "lazy", "lazyload",
                                "loading", "loader", "empty", "grey", "gray", "clear", "trans", "dot", "1x1",
                                "img", "image", "px", "default"})
_PLACEHOLDER_CORE = _PLACEHOLDER_WORDS - {"img", "image", "px", "default", "1x1", "dot"}
_FILE_NAME = re.compile(r"([^/]+)\.(?:gif|png|jpe?g|svg|webp)$", re.IGNORECASE)
_DIMENSION = re.compile(r"^\s*(\d{1,6})(?:\.\d+)?\s*(?:px)?\s*$", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
MARKER_HOST = "img.omnicorpus.invalid"  # .invalid never resolves (RFC 2606)
_MARKER = re.compile(rf"^https?://{re.escape(MARKER_HOST)}/(\d+)\.jpg$")


@dataclass
class ImageSource:
    """One `<img>` of the page as a browser would show it."""

    index: int  # position among the page's images, document order
    url: str  # absolute http(s) URL
    alt: str | None = None
    title: str | None = None
    caption: str | None = None
    declared_width: int | None = None
    declared_height: int | None = None
    # What a click on the image does: None (not a link), "image" (opens a picture), "page" (goes to another page),
    # "control" (href="#..." or javascript:, a script widget such as a gallery strip or an expand button).
    link: str | None = None
    # When the image links to the same page as a text link right next to it, the element holding both: a card
    # for another page (a related article, an author profile, a product in a catalogue).
    card: object | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class SrcsetCandidate:
    url: str
    width: int | None = None  # the "w" descriptor
    density: float | None = None  # the "x" descriptor


def marker_url(index: int) -> str:
    # The .jpg suffix: extractors (trafilatura in image mode) keep an <img> only when its src looks like an image.
    return f"https://{MARKER_HOST}/{index}.jpg"


def marker_index(url: str | None) -> int | None:
    match = _MARKER.match(url or "")
    return int(match.group(1)) if match else None


def parse_srcset(value: str | None) -> list[SrcsetCandidate]:
    """Candidates of a srcset attribute, parsed as the HTML standard says: a URL is a run of non-spaces (commas
    inside it are part of it, trailing commas end it), then descriptors up to the next comma outside parentheses."""
    text = value or ""
    candidates: list[SrcsetCandidate] = []
    position, length = 0, len(text)
    while position < length:
        while position < length and (text[position].isspace() or text[position] == ","):
            position += 1
        start = position
        while position < length and not text[position].isspace():
            position += 1
        url = text[start:position]
        descriptors = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            start, depth = position, 0
            while position < length and (depth or text[position] != ","):
                depth += {"(": 1, ")": -1}.get(text[position], 0)
                position += 1
            descriptors = text[start:position]
        if url:
            candidates.append(_candidate(url, descriptors))
    return candidates


def _candidate(url: str, descriptors: str) -> SrcsetCandidate:
    width = density = None
    for descriptor in descriptors.split():
        number, unit = descriptor[:-1], descriptor[-1:].lower()
        try:
            if unit == "w":
                width = int(number)
            elif unit == "x":
                density = float(number)
        except ValueError:
            continue
    return SrcsetCandidate(url, width, density)


def pick_candidate(candidates: list[SrcsetCandidate], target_width: int = 0) -> SrcsetCandidate | None:
    """The largest candidate (by width, else by density), or with `target_width` the one closest to it."""
    if not candidates:
        return None
    if target_width > 0 and any(c.width for c in candidates):
        return min((c for c in candidates if c.width), key=lambda c: (abs(c.width - target_width), -c.width))
    return max(candidates, key=lambda c: (c.width or 0, c.density or 1.0))


def absolute_url(src: str | None, base_url: str) -> str | None:
    """The absolute http(s) URL of an image source, or None for data: URIs and unusable values."""
    if not src:
        return None
    src = src.strip()
    if not src or src.startswith(("data:", "javascript:", "about:", "blob:", "#")):
        return None
    try:
        url = urljoin(base_url, src)
        parts = urlsplit(url)
    except ValueError:  # e.g. an invalid IPv6 host
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url


def is_placeholder(src: str | None) -> bool:
    if not src or not src.strip():
        return True
    src = src.strip()
    if src.startswith(("data:", "about:", "javascript:", "#")):
        return True
    path = urlsplit(src).path if "://" in src else src.split("?", 1)[0]
    name = _FILE_NAME.search(path)
    if not name:
        return False
    words = {word for word in re.split(r"[_.\-]+", name.group(1).lower()) if word and not word.isdigit()}
    return bool(words) and words <= _PLACEHOLDER_WORDS and bool(words & _PLACEHOLDER_CORE)


def base_url_of(tree, page_url: str) -> str:
    for href in tree.xpath("//base/@href")[:1]:
        base = absolute_url(href, page_url)
        if base:
            return base
    return page_url


def resolve_images(tree, page_url: str, target_width: int = 0, prefer_src: bool = True,
                   captions: list | None = None) -> list[ImageSource]:
    """Resolve every `<img>` of `tree` in place (see the module docstring); returns the resolved images.

    An `<img>` with no usable source is removed from the tree (its tail text stays)."""
    base = base_url_of(tree, page_url)
    for img in _HIDDEN_IMAGES(tree):  # not shown: hidden="" or an inline display:none on it or around it
        _remove_keeping_tail(img)
    _drop_sourceless_images(tree)
    _unwrap_noscript_images(tree)
    images: list[ImageSource] = []
    text_links = _TextLinks(tree)
    captions = _captions_by_container(caption_elements(tree) if captions is None else captions)
    for img in list(tree.iter("img")):
        url = _source_of(img, base, target_width, prefer_src)
        if url is None:
            _remove_keeping_tail(img)
            continue
        source = ImageSource(
            index=len(images), url=url, alt=_clean(img.get("alt")), title=_clean(img.get("title")),
            caption=_caption_of(img, captions), declared_width=_dimension(img.get("width")),
            declared_height=_dimension(img.get("height")),
        )
        _describe_link(source, img, text_links)
        images.append(source)
        img.attrib.clear()
        img.set("src", marker_url(source.index))
        if source.alt:
            img.set("alt", source.alt)
    etree.strip_tags(tree, "source")  # used up; unwrapped, not removed, since libxml2 nests the <img> inside
    return images


def _source_of(img, base: str, target_width: int, prefer_src: bool) -> str | None:
    attributes = img.attrib
    for attribute in LAZY_SRC_ATTRIBUTES:
        if attribute in attributes:
            value = attributes[attribute]
            url = absolute_url(value, base)
            if url and not is_placeholder(value):
                return url
    src = attributes.get("src")
    src_url = absolute_url(src, base) if not is_placeholder(src) else None
    if src_url and prefer_src:
        return src_url
    candidates: list[SrcsetCandidate] = []
    for attribute in LAZY_SRCSET_ATTRIBUTES + ("srcset",):
        if attribute in attributes:
            candidates.extend(parse_srcset(attributes[attribute]))
    # libxml2 does not know <source> is empty and nests what follows inside it: look for the <picture>.
    picture = next(img.iterancestors("picture"), None)
    if picture is not None:
        for source in picture.iter("source"):
            if (source.get("type") or "image/").startswith("image/"):
                for attribute in LAZY_SRCSET_ATTRIBUTES + ("srcset",):
                    candidates.extend(parse_srcset(source.get(attribute)))
    candidates = [c for c in candidates if not is_placeholder(c.url) and absolute_url(c.url, base)]
    if src_url:
        # src is the 1x picture: it competes with the srcset candidates at its declared width.
        candidates.append(SrcsetCandidate(src.strip(), _dimension(img.get("width")), 1.0))
    best = pick_candidate(candidates, target_width)
    return absolute_url(best.url, base) if best else None


_IMAGE_FILE = re.compile(r"\.(?:jpe?g|png|gif|webp|avif|bmp|svg|tiff?)$", re.IGNORECASE)
# How far up from an image a caption element still belongs to it (div > a > img next to a caption div is
# common), and how far up the image's own <figure> may be.
CAPTION_LEVELS = 3
FIGURE_LEVELS = 8
# How far up from an image's link a text link to the same page still belongs to the same card.
CARD_LEVELS = 3


class _TextLinks:
    """Links that show text, by href (the other half of a teaser card), collected on first use; and how many
    pictures a candidate card holds."""

    def __init__(self, tree):
        self.tree = tree
        self._by_href: dict[str, list] | None = None
        self._pictures: dict = {}

    def pictures_in(self, element) -> int:
        if element not in self._pictures:
            self._pictures[element] = sum(1 for _ in element.iter("img"))
        return self._pictures[element]

    def get(self, href: str) -> list:
        if self._by_href is None:
            self._by_href = {}
            for link in self.tree.iter("a"):
                target = (link.get("href") or "").strip()
                if target and not target.startswith(("#", "javascript:")) and "".join(link.itertext()).strip():
                    self._by_href.setdefault(target, []).append(link)
        return self._by_href.get(href, [])


def _describe_link(source: ImageSource, img, text_links: _TextLinks) -> None:
    link = next(img.iterancestors("a"), None)
    if link is None:
        return
    href = (link.get("href") or "").strip()
    if not href or href.startswith(("#", "javascript:")):
        source.link = "control"
        return
    path = urlsplit(href).path if "://" in href else href.split("?", 1)[0]
    if _IMAGE_FILE.search(path):
        source.link = "image"
        return
    source.link = "page"
    around = list(_ancestors(link, CARD_LEVELS))
    for other in text_links.get(href):
        if other is not link:
            shared = next((a for a in _ancestors(other, CARD_LEVELS) if a in around), None)
            if shared is not None:
                if text_links.pictures_in(shared) == 1:  # a card shows one picture; more is a page section
                    source.card = shared
                return


def _ancestors(element, levels: int):
    for _ in range(levels):
        element = element.getparent()
        if element is None:
            return
        yield element


def _has_source(img) -> bool:
    if img.get("src", "").strip() or img.get("srcset", "").strip():
        return True
    return any(img.get(a, "").strip() for a in LAZY_SRC_ATTRIBUTES + LAZY_SRCSET_ATTRIBUTES) or any(
        picture.find(".//source") is not None for picture in img.iterancestors("picture"))


def _drop_sourceless_images(tree) -> None:
    for img in list(tree.iter("img")):
        if not _has_source(img):
            _remove_keeping_tail(img)


def _unwrap_noscript_images(tree) -> None:
    """A noscript with a single image replaces the single-image element just before it (a lazy placeholder)."""
    for noscript in list(tree.iter("noscript")):
        image = _single_image(noscript, allow_root=False)
        if image is None:
            continue
        previous = noscript.getprevious()
        placeholder = _single_image(previous) if previous is not None else None
        if placeholder is None:
            continue
        for name, value in placeholder.attrib.items():  # keep alt/title/size the fallback may lack
            if name not in image.attrib and name not in ("src", "srcset") + LAZY_SRC_ATTRIBUTES:
                image.set(name, value)
        image.tail = previous.tail
        previous.getparent().replace(previous, image)
        _remove_keeping_tail(noscript)


def _single_image(element, allow_root: bool = True):
    """The one `<img>` an element consists of (the element itself, or its only child chain), else None."""
    if allow_root and element.tag == "img":
        return element
    if not isinstance(element.tag, str) or (element.text or "").strip():
        return None
    children = [child for child in element if isinstance(child.tag, str)]
    if len(children) != 1 or (children[0].tail or "").strip():
        return None
    return _single_image(children[0])


# (@style and ...): translate() only where there is a style to read, 15 % less time for the same images.
_HIDDEN_IMAGES = etree.XPath(
    "//img[ancestor-or-self::*[@hidden or (@style and contains(translate(@style, ' ', ''), 'display:none'))]]")
_CAPTION_CANDIDATES = etree.XPath("//figcaption | //*[contains(@class, 'aption')]")


def caption_elements(tree) -> list:
    """Captions: `<figcaption>`, and elements whose class names a caption (Wikipedia's thumbcaption, WordPress'
    wp-caption-text, most CMS themes)."""
    return [element for element in _CAPTION_CANDIDATES(tree)
            if element.tag == "figcaption" or "caption" in element.get("class", "").lower()]


def _captions_by_container(captions: list) -> dict:
    """Caption elements by the ancestors they caption: CAPTION_LEVELS up, and the nearest figure."""
    containers: dict = {}
    for element in captions:
        for ancestor in _caption_containers(element):
            containers.setdefault(ancestor, []).append(element)
            if ancestor.tag == "figure":  # a caption inside a figure is that figure's only
                break
    return containers


def _caption_containers(element):
    """Ancestors within CAPTION_LEVELS, then the nearest `<figure>` within FIGURE_LEVELS."""
    for level, ancestor in enumerate(element.iterancestors()):
        if level >= FIGURE_LEVELS:
            return
        if level < CAPTION_LEVELS:
            yield ancestor
        elif ancestor.tag == "figure":
            yield ancestor
            return


def _caption_of(img, containers: dict) -> str | None:
    """The caption of the nearest container holding one (the image's figure at most); None when that
    container holds several captions, since it is then a section of the page, not the image's box."""
    ancestors = list(_caption_containers(img))
    for ancestor in ancestors:
        captions = [c for c in containers.get(ancestor, ()) if c not in ancestors]
        if len(captions) == 1:
            text = _clean(" ".join(captions[0].itertext()))
            return text[:2000] if text else None
        if captions:
            return None
    return None


def _dimension(value: str | None) -> int | None:
    match = _DIMENSION.match(value or "")
    return int(match.group(1)) if match else None


def _remove_keeping_tail(element) -> None:
    parent = element.getparent()
    if parent is None:
        return
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = _SPACES.sub(" ", value).strip()
    return value or None
