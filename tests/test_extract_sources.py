"""Image sources resolved in the DOM: lazy loading, srcset/<picture>, noscript fallbacks, base href, context."""

import pytest
from lxml import html as lxml_html

from omnicorpus.extract.sources import (SrcsetCandidate, caption_elements, is_placeholder, marker_index,
                                        parse_srcset, pick_candidate, resolve_images)

PAGE = "https://example.org/blog/post.html"


def resolve(body: str, url: str = PAGE, head: str = "", **options):
    tree = lxml_html.fromstring(f"<html><head>{head}</head><body>{body}</body></html>")
    return tree, resolve_images(tree, url, **options)


def urls(body: str, **options) -> list[str]:
    return [image.url for image in resolve(body, **options)[1]]


# -- srcset ------------------------------------------------------------------------------------------------


def test_srcset_urls_may_hold_commas_and_descriptors_follow_them():
    value = ("https://i.kinja-img.com/upload/c_fill,f_auto,h_80,w_80/a.jpg 80w, "
             "https://i.kinja-img.com/upload/c_fit,q_80,w_320/a.jpg 320w,https://x.org/b.jpg 2x, /c.jpg")
    assert parse_srcset(value) == [
        SrcsetCandidate("https://i.kinja-img.com/upload/c_fill,f_auto,h_80,w_80/a.jpg", width=80),
        SrcsetCandidate("https://i.kinja-img.com/upload/c_fit,q_80,w_320/a.jpg", width=320),
        SrcsetCandidate("https://x.org/b.jpg", density=2.0),
        SrcsetCandidate("/c.jpg"),
    ]
    assert parse_srcset("a.jpg,, b.jpg 1.5x") == [SrcsetCandidate("a.jpg"), SrcsetCandidate("b.jpg", density=1.5)]
    assert parse_srcset("") == [] and parse_srcset(None) == []


def test_the_largest_candidate_or_the_one_closest_to_a_width_is_picked():
    candidates = [SrcsetCandidate("s.jpg", width=320), SrcsetCandidate("l.jpg", width=1600),
                  SrcsetCandidate("m.jpg", width=800)]
    assert pick_candidate(candidates).url == "l.jpg"
    assert pick_candidate(candidates, target_width=700).url == "m.jpg"
    assert pick_candidate([SrcsetCandidate("1x.jpg", density=1.0), SrcsetCandidate("2x.jpg", density=2.0)]).url \
        == "2x.jpg"
    assert pick_candidate([]) is None


def test_a_real_src_is_kept_and_srcset_decides_without_one_or_when_asked():
    srcset = 'srcset="small.jpg 300w, large.jpg 1200w"'
    assert urls(f'<img src="plain.jpg" {srcset}>') == ["https://example.org/blog/plain.jpg"]
    assert urls(f'<img src="plain.jpg" width="600" {srcset}>', prefer_src=False) == [
        "https://example.org/blog/large.jpg"]
    assert urls(f'<img {srcset}>', target_width=400) == ["https://example.org/blog/small.jpg"]
    assert urls(f'<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" {srcset}>') == [
        "https://example.org/blog/large.jpg"]


def test_picture_sources_are_candidates_and_leave_the_tree():
    tree, images = resolve('<picture><source type="image/webp" srcset="/a.webp 1000w, /a-small.webp 500w">'
                           '<source type="video/mp4" srcset="/clip.mp4">'
                           '<img src="data:image/gif;base64,R0lG" alt="A cat"></picture>')
    assert [image.url for image in images] == ["https://example.org/a.webp"]
    assert images[0].alt == "A cat"
    assert tree.find(".//source") is None


# -- lazy loading ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["data-src", "data-original", "data-lazy-src", "data-src-fg", "data-lazy"])
def test_lazy_load_attributes_win_over_a_placeholder_src(attribute):
    assert urls(f'<img src="/img/blank.gif" {attribute}="/photos/real.jpg">') == ["https://example.org/photos/real.jpg"]


def test_lazy_srcset_is_read_when_src_is_a_placeholder():
    assert urls('<img src="data:image/gif;base64,R0lGODlh" data-srcset="/a-320.jpg 320w, /a-960.jpg 960w">') == [
        "https://example.org/a-960.jpg"]


def test_placeholders_and_unusable_sources_are_not_images():
    assert is_placeholder("data:image/gif;base64,R0lG") and is_placeholder("/static/spacer.gif")
    assert is_placeholder("https://cdn.example.org/lazy-placeholder.png") and is_placeholder("")
    assert not is_placeholder("https://example.org/photos/blank-canvas-painting-by-numbers.jpg")
    assert urls('<img src="data:image/png;base64,iVBOR"><img src="javascript:void(0)"><img>') == []


def test_a_noscript_image_replaces_the_placeholder_before_it():
    body = ('<figure><div><div><img src="https://miro.medium.com/max/60/a.png?q=20" width="1894"></div>'
            '<img class="progressive" width="1894"><noscript><img src="https://miro.medium.com/max/3788/a.png"'
            ' width="1894"></noscript></div><figcaption>Memory leak in action</figcaption></figure>')
    tree, images = resolve(body)
    assert [image.url for image in images] == ["https://miro.medium.com/max/3788/a.png"]
    assert images[0].caption == "Memory leak in action" and images[0].declared_width == 1894
    assert tree.find(".//noscript") is None


def test_base_href_resolves_relative_sources():
    _, images = resolve('<img src="pics/a.jpg"><img src="//cdn.example.net/b.jpg">',
                        head='<base href="https://static.example.com/site/">')
    assert [image.url for image in images] == ["https://static.example.com/site/pics/a.jpg",
                                               "https://cdn.example.net/b.jpg"]


def test_images_hidden_by_the_page_are_not_resolved():
    assert urls('<div style="display: none"><img src="/a.jpg"></div><img hidden src="/b.jpg"><img src="/c.jpg">') \
        == ["https://example.org/c.jpg"]


# -- context -----------------------------------------------------------------------------------------------


def test_alt_title_caption_and_declared_size_are_recorded():
    _, images = resolve('<figure><img src="a.jpg" alt=" A  red\nbicycle " title="Bike" width="640" height="480px">'
                        '<figcaption>My <b>first</b> bicycle</figcaption></figure>'
                        '<img src="b.jpg" width="50%" height="auto">')
    first, second = images
    assert (first.alt, first.title, first.caption) == ("A red bicycle", "Bike", "My first bicycle")
    assert (first.declared_width, first.declared_height) == (640, 480)
    assert (second.caption, second.declared_width, second.declared_height) == (None, None, None)


def test_caption_classes_count_but_a_section_with_many_captions_captions_nothing():
    body = ('<div id="content"><div class="topicon"><a href="/wiki/Protection"><img src="lock.png"></a></div>'
            '<div class="thumb"><div class="thumbinner"><a href="/wiki/File:A.jpg"><img src="a.jpg"></a>'
            '<div class="thumbcaption">The first picture</div></div></div>'
            '<div class="thumb"><div class="thumbinner"><a href="/wiki/File:B.jpg"><img src="b.jpg"></a>'
            '<div class="thumbcaption">The second picture</div></div></div></div>')
    tree, images = resolve(body)
    assert [image.caption for image in images] == [None, "The first picture", "The second picture"]
    assert len(caption_elements(tree)) == 2


def test_links_are_described_and_cards_found():
    body = ('<a href="/big.jpg"><img src="a.jpg"></a>'
            '<a href="#" onclick="next()"><img src="b.jpg"></a>'
            '<ul><li><a href="/story-1.html"><img src="c.jpg"></a><h3><a href="/story-1.html">Story one</a></h3></li>'
            '<li><a href="/story-2.html"><img src="d.jpg"></a></li></ul>')
    _, images = resolve(body)
    assert [image.link for image in images] == ["image", "control", "page", "page"]
    assert images[2].card is not None and images[2].card.tag == "li"
    assert images[3].card is None  # no text link to the same page: a linked picture, not a card


def test_each_img_is_rewritten_to_a_marker_of_its_index():
    tree, images = resolve('<p>One <img src="a.jpg" class="x" data-src="b.jpg"> two <img src="c.jpg"></p>')
    markers = [marker_index(img.get("src")) for img in tree.iter("img")]
    assert markers == [image.index for image in images] == [0, 1]
    assert "class" not in tree.find(".//img").attrib
