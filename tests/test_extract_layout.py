"""Which images belong to the main text, where they stand, and the slot rule."""

import re
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

from omnicorpus.extract.align import Locator, build_stream
from omnicorpus.extract.fidelity import image_candidates, image_scores, normalize_url, same_picture, tokens
from omnicorpus.extract.html import ExtractConfig, ExtractStage
from omnicorpus.extract.layout import Placement, interleave
from omnicorpus.extract.sources import ImageSource, resolve_images
from omnicorpus.io.warc import RawPage

FIXTURES = Path(__file__).parent / "fixtures" / "html"
URL = "https://example.org/blog/post.html"
PARAGRAPH = ("The restoration took the whole winter, one careful step after another in the cold barn, and every "
             "evening ended with oil on our hands and a list for the next day. ")


def extract(html: str, url: str = URL, **config):
    page = RawPage(url=url, warc_file="t.warc", record_id="<urn:uuid:t>", offset=0, payload=html.encode(),
                   content_type="text/html; charset=utf-8")
    return ExtractStage(ExtractConfig(**{"require_image": False, **config})).process(page)


def article(*blocks: str, aside: str = "", footer: str = "") -> str:
    body = "\n".join(blocks)
    return (f"<html><head><title>Restoring a bicycle</title></head><body><nav><a href='/'>Home</a></nav>"
            f"<main><article><h1>Restoring a bicycle</h1>{body}</article>{aside}</main>"
            f"<footer>{footer}Copyright 2024 Example</footer></body></html>")


def slots(document) -> list[str]:
    return [f"img:{url.rsplit('/', 1)[-1]}" if url else f"text:{text[:12]}"
            for text, url in zip(document.texts, document.images)]


def test_figures_between_paragraphs_keep_their_place_and_caption():
    document = extract(article(
        f"<p>First. {PARAGRAPH}</p>",
        "<figure><img src='/img/frame.jpg' alt='The frame' width='800' height='600'>"
        "<figcaption>The rusty frame as found</figcaption></figure>",
        f"<p>Second. {PARAGRAPH}</p>",
        f"<p>Third. {PARAGRAPH}<img src='/img/inline.png'> and the rest of the third paragraph.</p>"))
    assert slots(document) == ["text:Restoring a ", "img:frame.jpg", "text:Second. The ",
                               "img:inline.png", "text:and the rest"]
    info = document.image_info[1]
    assert (info["alt"], info["caption"], info["declared_width"], info["declared_height"]) == (
        "The frame", "The rusty frame as found", 800, 600)
    assert "rusty frame as found" not in document.text  # the caption is the image's, in image_info


def test_sidebar_footer_and_teaser_images_fall_out_with_their_text():
    related = "".join(f"<li><a href='/story-{n}.html'><img src='/thumbs/{n}.jpg'></a>"
                      f"<a href='/story-{n}.html'>Another story number {n} you may like</a></li>" for n in range(4))
    document = extract(article(
        f"<p>First. {PARAGRAPH}</p>", "<img src='/img/lead.jpg'>", f"<p>Second. {PARAGRAPH}</p>",
        aside=f"<aside><h2>Related</h2><ul>{related}</ul></aside>",
        footer="<a href='/'><img src='/img/logo.png'></a>"))
    assert [url for url in document.images if url] == ["https://example.org/img/lead.jpg"]


def test_a_catalogue_keeps_the_pictures_of_the_cards_whose_text_is_extracted():
    cards = "".join(f"<article class='product'><a href='/book-{n}.html'><img src='/covers/{n}.jpg'></a>"
                    f"<h3><a href='/book-{n}.html'>Book {n}</a></h3><p class='price'>Price: £{n}1.50 and in stock "
                    f"with free delivery across the whole country for {n} days</p></article>" for n in range(6))
    document = extract(f"<html><body><main><h1>All books</h1><section>{cards}</section></main></body></html>")
    assert [url.rsplit("/", 1)[-1] for url in document.images if url] == [f"{n}.jpg" for n in range(6)]


def test_text_is_exactly_trafilaturas_text_only_extraction():
    from trafilatura import extract as trafilatura_extract

    html = article(f"<p>First. {PARAGRAPH}</p>", "<figure><img src='/a.jpg'><figcaption>Cap</figcaption></figure>",
                   "<ul><li>One item of the list</li><li>Another item</li></ul>", f"<p>Last. {PARAGRAPH}</p>")
    document = extract(html)
    expected = trafilatura_extract(html, url=URL, include_comments=False, deduplicate=False, fast=True)
    assert tokens(document.text) == tokens(expected)  # trafilatura's txt adds "- " before list items


def test_slot_rule_blocks_lines_and_cells():
    document = extract(article(
        "<h2>Parts needed</h2>", f"<p>{PARAGRAPH}</p>", "<ul><li>Two tyres</li><li>A chain</li></ul>",
        "<table><tr><th>Part</th><th>Price</th></tr><tr><td>Tyre</td><td>20 EUR</td></tr></table>"))
    (text,) = [t for t in document.texts if t]
    assert "Parts needed\n\nThe restoration" in text
    assert "Two tyres\nA chain" in text
    assert "Part | Price\nTyre | 20 EUR" in text


def test_output_out_of_page_order_is_put_back_in_page_order():
    tree = lxml_html.fromstring("<html><body><p>Alpha paragraph text.</p><img src='/one.jpg'>"
                                "<p>Beta paragraph text.</p><img src='/two.jpg'><p>Gamma paragraph text.</p>"
                                "</body></html>")
    images = resolve_images(tree, URL)
    body = etree.fromstring("<body><p>Beta paragraph text.</p><p>Gamma paragraph text.</p>"
                            "<p>Alpha paragraph text.</p></body>")  # an extractor that appended rescued text
    items = interleave(body, build_stream(tree), images, Placement(gap_chars=100, edge_gap_chars=10))
    assert [item.text or item.image.url.rsplit("/", 1)[-1] for item in items] == [
        "Alpha paragraph text.", "one.jpg", "Beta paragraph text.", "two.jpg", "Gamma paragraph text."]


def test_pieces_are_located_in_the_page_despite_spacing_and_markup():
    tree = lxml_html.fromstring("<html><head><title>T</title><script>var x = 'Alpha';</script></head><body>"
                                "<p>Al<b>pha</b>  beta,\n gamma.</p><p>Delta</p></body></html>")
    stream = build_stream(tree)
    assert stream.key == "Alphabeta,gamma.Delta"
    locator = Locator(stream)
    assert locator.locate("Alpha beta, gamma.") == (0, 16)
    assert locator.locate("Delta") == (16, 21)
    assert locator.locate("no such text") is None and locator.locate("a") is None


def _scores(name: str):
    source = (FIXTURES / name / "source.html").read_text(encoding="utf-8")
    url = "http://fakehost/test/page.html"
    document = extract(source, url=url)
    expected_tree = lxml_html.fromstring((FIXTURES / name / "expected.html").read_text(encoding="utf-8"))
    page_images = [image_candidates(img, url) for img in lxml_html.fromstring(source).iter("img")]
    expected = same_picture([c for c in (image_candidates(img, url) for img in expected_tree.iter("img")) if c],
                            page_images)
    return document, image_scores([normalize_url(u) for u in document.images if u], expected)


def test_real_page_whose_extractor_output_is_out_of_order_keeps_image_order():
    # trafilatura emits this page's breadcrumbs and logos after its story; the document follows the page.
    document, scores = _scores("hukumusume")
    assert scores.kendall_tau == 1.0 and scores.recall == 1.0
    assert document.texts.index(next(t for t in document.texts if t and "欲張りなイヌ" in t)) > 0


def test_real_page_with_captioned_step_photos_keeps_every_photo():
    # eHow puts each step photo in a <figure> beside the step text; a trafilatura with images dropped all 11.
    document, scores = _scores("ehow-1")
    assert scores.matched == scores.expected == 11 and scores.kendall_tau == 1.0
    assert scores.precision == 1.0  # the "other people are reading" teaser thumbnails stay out
    captions = [info["caption"] for info in document.image_info if info]
    assert sum(bool(c) and re.search(r"\(Lucy Akins\)", c) is not None for c in captions) >= 9


def test_images_never_appear_twice_for_one_img_tag():
    document = extract(article(f"<p>{PARAGRAPH}</p>", "<a href='/big.jpg'><img src='/small.jpg'></a>",
                               f"<p>{PARAGRAPH}</p>"), favor="recall")
    assert [url for url in document.images if url] == ["https://example.org/small.jpg"]


def test_placement_needs_no_image_source_object_beyond_its_fields():
    image = ImageSource(index=0, url="https://example.org/a.jpg")
    assert image.link is None and image.card is None


def _warc_page(path):
    from omnicorpus.io.warc import ReadConfig, WarcReader

    return next(item for item in WarcReader(str(path), ReadConfig()).read()
                if isinstance(item, RawPage) and item.payload)


@pytest.mark.parametrize("favor", ["balanced", "recall"])
def test_books_catalogue_keeps_each_cover_once_in_either_mode(books_warc, favor):
    document = ExtractStage(ExtractConfig(favor=favor)).process(_warc_page(books_warc))
    covers = [url for url in document.images if url]
    assert len(covers) == len(set(covers)) == 20 and all("/media/cache/" in url for url in covers)


def test_mona_lisa_keeps_the_article_images_and_drops_the_page_chrome(mona_lisa_warc):
    page = _warc_page(mona_lisa_warc)
    document = ExtractStage(ExtractConfig()).process(page)
    kept = [url for url in document.images if url]
    all_images = re.findall(r'<img[^>]+src="([^"]+)"', page.payload.decode("utf-8"))
    assert len(all_images) == 24 and len(kept) == 20
    for chrome in ("Padlock-silver", "search-ltr.png", "wikimedia-button.png", "poweredby_mediawiki"):
        assert not any(chrome in url for url in kept)  # hidden, header and footer images
    captions = [info["caption"] for info in document.image_info if info and info["caption"]]
    assert "Vacant wall in the Salon Carré, Louvre" in captions
