"""Boilerplate rules for the resiliparse engine: what its main-content pass keeps and trafilatura's would not.

resiliparse's `main_content=True` drops navigation, headers and footers by tag, but keeps what sits inside the
article's frame: share bars, "related articles" teasers, author boxes, newsletter boxes, ad widgets. Their
text lowers text precision and their pictures image precision (docs/extraction.md). Two cheap passes,
measured on the shared pages (bench/fidelity.py), bring the engine to the image targets:

- `boilerplate_elements`: forms (comment, search, newsletter and donation forms) and the elements whose class or id
  names them as page furniture. The vocabulary is the one trafilatura's discard rules use (trafilatura 2.3.1,
  `xpaths.py`, OVERALL_DISCARD_XPATH: share/social, newsletter, tags, sidebar/banner/breadcrumb/button,
  author/byline, navigation/menu, ad networks and widgets, footer, consent, related/next/most-popular,
  meta/rating/timestamp/slide/overlay), restricted as trafilatura restricts it to container tags. trafilatura
  applies it inside the container it chose as the article; here it runs on the whole page, so an element holding
  more than `max_share` (half) of the page's visible text is never counted as furniture (a wrapper such as
  `id="gigya-share-btns-2_gig_containerParent"` around the whole article; an ASP.NET `<form>` around the page).
  The engine hides what is found from resiliparse (the `hidden` attribute, which it honours) and unhides it after.
- `drop_orphan_headings`: a heading whose section kept no text ("Related articles", "Newsletter",
  "Comments" once their content is gone) is removed from the extracted blocks.

Each element is looked at once, a class or id value is tested once per page (pages repeat them), and only the
outermost furniture is measured, so both passes cost about 1.3 ms a page on the shared pages, with lxml doing the
walking (the same vocabulary as XPath expressions,
as trafilatura runs it, cost 5-10 ms: lxml calls Python's `re` for every node).
"""

from __future__ import annotations

import re

from lxml import etree

from omnicorpus.extract.align import text_key

# Containers the rules apply to (trafilatura: div, item, list, p, section, span; plus the sectioning tags
# resiliparse keeps when they sit inside the article).
CONTAINER_TAGS = ("div", "li", "ul", "ol", "p", "section", "span", "aside", "nav", "footer")

# Tokens searched in a class attribute and in an id attribute (regular expressions, unanchored unless marked).
_BOTH = (
    "^shar", "social", "viral",  # share bars
    "newsletter", "syndication",
    "tags",
    "sidebar", "banner", "bread-?crumb", "button",
    "author",
)
_CLASS_ONLY = (
    "^(?:nav|post-nav)", "subnav", "avigation", "navbar", "navbox", "menu", "bar",
    " ad ", "-ad-", "(?:^| )ad-", "dfp[Aa]d", "outbrain", "taboola", "criteo", "paid-?content", "widget",
    "footer", "Footer",
    "byline", "Byline",
    "share-", "sociable", "embedded", "embed",
    "tag-list",
    "consent", "modal-content", "permission",
    "elated", "next-", "-stories", "most-popular", "more-on",  # related, next, top stories
    "meta", "rating", "attachment", "timestamp", "user-info", "user-profile", "-icon", "article-infos",
    "message-container", "slide", "viewport", "overlay",
    "options", "expand", "obfuscated", "blurred",
)
_ID_ONLY = (
    "footer", "Footer", "share", "Share", "nav", "Nav", "menu", "related", "message-container", "premium", "^ad-",
)
CLASS_PATTERN = re.compile("|".join(_BOTH + _CLASS_ONLY))
ID_PATTERN = re.compile("|".join(_BOTH + _ID_ONLY))

# An element holding more than this share of the page's visible text is content, whatever its name says
# (bench/fidelity.py on the shared pages, readability text F1: 0.937 at 0.33, 0.951 at 0.5, 0.932 at 0.66).
MAX_SHARE = 0.5


def boilerplate_elements(tree, max_share: float = MAX_SHARE) -> list:
    """The forms and container elements of `tree` whose class or id names them as page furniture, outermost
    only (what they contain goes with them), in document order."""
    limit = max_share * visible_chars(tree)
    verdicts: dict[tuple[bool, str], bool] = {}
    found: list = []
    taken: set = set()
    for element in tree.iter("form", *CONTAINER_TAGS):
        if element.tag != "form" and not _named_furniture(element.get("class"), element.get("id"), verdicts):
            continue
        if taken and any(ancestor in taken for ancestor in element.iterancestors()):
            continue
        if len(element.text_content()) <= limit:
            found.append(element)
            taken.add(element)
    return found


def visible_chars(tree) -> int:
    """Characters of the page's text outside scripts and style sheets (which can outweigh it many times)."""
    unseen = sum(len(element.text or "") for element in tree.iter("script", "style", "noscript", "template"))
    return len(tree.text_content()) - unseen


def _named_furniture(class_value: str | None, id_value: str | None, verdicts: dict) -> bool:
    for is_class, value in ((True, class_value), (False, id_value)):
        if not value:
            continue
        verdict = verdicts.get((is_class, value))
        if verdict is None:
            verdict = verdicts[(is_class, value)] = bool((CLASS_PATTERN if is_class else ID_PATTERN).search(value))
        if verdict:
            return True
    return False


_HEADINGS = etree.XPath("//h1|//h2|//h3|//h4|//h5|//h6")


def drop_orphan_headings(body, tree) -> None:
    """Remove from `body` (one block per child) each heading block not followed by text of its own section.

    A block is a heading when its text is the text of an `<h1>`-`<h6>` of the page; its section runs to the next
    heading of the same or a higher level. A heading at the end, or directly followed by such a heading, heads
    nothing the extraction kept.
    """
    levels: dict[str, int] = {}
    for heading in _HEADINGS(tree):
        key = text_key(heading.text_content())
        if key:
            levels.setdefault(key, int(heading.tag[1]))
    if not levels:
        return
    blocks = list(body)
    block_levels = [levels.get(text_key("".join(block.itertext()))) for block in blocks]
    for index, block in enumerate(blocks):
        level = block_levels[index]
        if level is None:
            continue
        following = block_levels[index + 1] if index + 1 < len(blocks) else 0
        if index + 1 == len(blocks) or (following is not None and following <= level):
            body.remove(block)
