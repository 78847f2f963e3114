"""The resiliparse engine's boilerplate rules (extract/boilerplate.py) and the linked-picture rule of placement."""

import pytest
from lxml import etree

from omnicorpus.extract.align import build_stream
from omnicorpus.extract.boilerplate import boilerplate_elements, drop_orphan_headings
from omnicorpus.extract.engines import blocks_of, resiliparse_body
from omnicorpus.extract.html import ExtractConfig, parse_html
from omnicorpus.extract.layout import Placement, interleave
from omnicorpus.extract.sources import caption_elements, resolve_images
from tests.builders import html_page
from tests.test_extract import LONG, extract, page_of
from tests.test_extract_layout import URL

TEASERS = "".join(f"<li><a href='/story-{n}.html'>Another story number {n} you may like a lot</a>"
                  f"<p>What happened next in the story number {n}, told in one line.</p></li>" for n in range(4))
FURNITURE = (
    "<div class='share-buttons'><span>Share on Facebook</span> <span>Share by e-mail</span></div>",
    f"<h2>Related articles</h2><div class='related-posts'><ul>{TEASERS}</ul></div>",
    "<div class='newsletter-box'><p>Subscribe to our weekly newsletter and never miss a story again.</p></div>",
    "<div id='comments-title-bar' class='author-info'><p>Written by Jane Doe, our workshop editor since 2009.</p></div>",
)


def furnished_page() -> str:
    return html_page("Restoring a bicycle", LONG, '<img src="/img/frame.jpg" alt="The frame">',
                     "Sanding took a week. " + LONG, *FURNITURE)


def test_named_furniture_is_left_out_of_the_resiliparse_text():
    document, rejected = extract(page_of(furnished_page()), engine="resiliparse")
    assert rejected is None
    text = document.text
    assert "Sanding took a week." in text and "The restoration took the whole winter" in text
    for furniture in ("Share on Facebook", "Another story number", "weekly newsletter", "Written by Jane Doe",
                      "Related articles"):
        assert furniture not in text, furniture
    assert document.images == [None, "https://example.org/img/frame.jpg", None]


def test_without_the_rules_resiliparse_keeps_the_furniture():
    document, _ = extract(page_of(furnished_page()), engine="resiliparse", resiliparse_boilerplate=False)
    assert "Share on Facebook" in document.text and "weekly newsletter" in document.text


def test_a_wrapper_named_like_furniture_that_holds_the_article_is_kept():
    # A share widget's id on the element around the whole article (readability's bug-1255978 page does this).
    html = html_page("Knee pain", f"<div id='gigya-share-btns-2_gig_containerParent'><p>{LONG}</p><img src='k.jpg'>"
                     f"<p>Rest helps. {LONG}</p><div class='share-bar'>Share this</div></div>")
    tree = parse_html(html)
    found = boilerplate_elements(tree)
    assert [element.get("class") for element in found] == ["share-bar"]
    document, _ = extract(page_of(html), engine="resiliparse")
    assert "Rest helps." in document.text and "Share this" not in document.text


def test_only_container_tags_count_and_each_attribute_has_its_own_words():
    tree = parse_html("<html><body class='sidebar-left'><article class='related'><p>x</p></article>"
                      "<div id='main-nav'>a</div><div class='nav-tabs'>b</div><div class='canvas'>c</div>"
                      "<div id='premium-box'>d</div><div class='premium'>e</div><a class='share-link'>f</a>"
                      "</body></html>")
    names = [(element.get("id"), element.get("class")) for element in boilerplate_elements(tree, max_share=1.0)]
    # <body> and <article> are never furniture; "premium" is an id word only; <a> is not a container.
    assert names == [("main-nav", None), (None, "nav-tabs"), ("premium-box", None)]


def test_the_page_tree_is_left_as_it_was():
    tree = parse_html(html_page("Title", LONG, "<div class='share-bar' hidden>Share</div>", *FURNITURE))
    before = etree.tostring(tree)
    resiliparse_body(tree, ExtractConfig(engine="resiliparse"))
    assert etree.tostring(tree) == before  # the hidden attributes it set are gone, the page's own one is back


def test_headings_left_without_a_section_are_dropped():
    tree = parse_html("<html><body><h1>Title</h1><h2>Part one</h2><h3>Detail</h3><p>Text</p>"
                      "<h2>More stories</h2><h2>Comments</h2></body></html>")
    body = blocks_of("Title\n\nPart one\n\nDetail\n\nText\n\nMore stories\n\nComments")
    drop_orphan_headings(body, tree)
    # "Part one" heads "Detail", which heads text: both stay; the last two head nothing.
    assert [block.text for block in body] == ["Title", "Part one", "Detail", "Text"]


def test_a_heading_is_known_by_its_whole_text_not_by_a_prefix():
    tree = parse_html("<html><body><p>Hello there</p><h2>Hello</h2></body></html>")
    body = blocks_of("Hello there\n\nHello")
    drop_orphan_headings(body, tree)
    assert [block.text for block in body] == ["Hello there"]
    lone = blocks_of("Hello there")
    drop_orphan_headings(lone, tree)
    assert [block.text for block in lone] == ["Hello there"]


@pytest.mark.parametrize("minimum, engine", [(0, "resiliparse"), (10**6, "trafilatura")])
def test_a_short_resiliparse_text_is_replaced_by_trafilaturas(minimum, engine):
    # resiliparse's main-content pass leaves out a short list that trafilatura keeps: that tells the texts apart.
    html = html_page("Restoring a bicycle", LONG, '<img src="/img/frame.jpg">',
                     "<ul><li>One bell</li><li>Two lights</li></ul>", "Sanding took a week. " + LONG)
    document, _ = extract(page_of(html), engine="resiliparse", resiliparse_min_chars=minimum)
    assert ("One bell" in document.text) == (engine == "trafilatura")
    assert document.images == [None, "https://example.org/img/frame.jpg", None]


def test_resiliparse_min_chars_must_not_be_negative():
    with pytest.raises(ValueError, match="extract.resiliparse_min_chars must be >= 0"):
        ExtractConfig(resiliparse_min_chars=-1)


def place(html: str, kept: list[str], trust_cards: bool = True) -> list[str]:
    """The pictures placed among `kept` (the blocks an engine extracted from `html`), by file name."""
    tree = parse_html(html)
    captions = caption_elements(tree)
    images = resolve_images(tree, URL, 0, True, captions)
    stream = build_stream(tree, [image.card for image in images if image.card is not None], captions)
    items = interleave(blocks_of("\n\n".join(kept)), stream, images,
                       Placement(gap_chars=100, edge_gap_chars=10, trust_cards=trust_cards))
    return [item.image.url.rsplit("/", 1)[-1] for item in items if item.kind == "image"]


def test_a_picture_linking_elsewhere_among_left_out_text_is_navigation():
    paragraphs = [f"Paragraph {n}. {LONG}" for n in range(5)]
    html = ("<html><body><article>"
            f"<p>{paragraphs[0]}</p><div><a href='/shop/bells.html'><img src='/ads/bells.jpg'></a>Buy bells</div>"
            f"<p>{paragraphs[1]}</p><div><a href='/img/big.jpg'><img src='/img/frame.jpg'></a>Photo: Jane</div>"
            f"<p>{paragraphs[2]}</p><div><a href='#gallery'><img src='/img/arrow.png'></a>Next photo</div>"
            f"<p>{paragraphs[3]}</p><div><img src='/img/wheel.jpg'>Credit: Joe</div>"
            f"<p>{paragraphs[4]}</p></article></body></html>")
    # The shop link and the gallery control go; the link to a larger picture and the plain picture stay.
    assert place(html, paragraphs) == ["frame.jpg", "wheel.jpg"]
    # With nothing left out around it, a linked picture stands inside the main text and stays.
    html = f"<html><body><p>{paragraphs[0]}</p><a href='/next.html'><img src='/img/b.jpg'></a><p>{paragraphs[1]}</p>"
    assert place(html, paragraphs[:2]) == ["b.jpg"]


def test_kept_cards_keep_their_pictures_only_when_the_engine_is_trusted_with_them():
    cards = "".join(f"<div class='card'><a href='/book-{n}.html'><img src='/covers/{n}.jpg'></a><span>£{n}1.50</span>"
                    f"<h3><a href='/book-{n}.html'>Book {n}: a long and winding title</a></h3></div>" for n in range(3))
    html = f"<html><body><main><h1>All books</h1>{cards}</main></body></html>"
    kept = ["All books"] + [f"Book {n}: a long and winding title" for n in range(3)]  # the prices left out
    assert place(html, kept, trust_cards=True) == ["0.jpg", "1.jpg", "2.jpg"]  # trafilatura: a catalogue
    assert place(html, kept, trust_cards=False) == []  # resiliparse keeps teaser cards' text as well


def test_forms_are_furniture_unless_they_hold_the_page():
    comment_form = ("<form action='/comment'><h3>Leave a reply</h3><p>Your e-mail address will not be published.</p>"
                    "<textarea name='comment'></textarea><button>Post comment</button></form>")
    document, _ = extract(page_of(html_page("Restoring a bicycle", LONG, '<img src="/img/frame.jpg">',
                                            "Sanding took a week. " + LONG, comment_form)), engine="resiliparse")
    assert "Sanding took a week." in document.text and "will not be published" not in document.text
    # A page whose whole body is one form (ASP.NET does this) keeps its article.
    html = html_page("Restoring a bicycle", LONG, '<img src="/img/frame.jpg">', "Sanding took a week. " + LONG)
    html = html.replace("<body>", "<body><form id='aspnetForm' action='/post.aspx'>").replace("</body>", "</form></body>")
    document, _ = extract(page_of(html), engine="resiliparse")
    assert "Sanding took a week." in document.text and document.images[1] == "https://example.org/img/frame.jpg"
