import re

import pytest

from omnicorpus.extract.decode import codec_for, decode_html, looks_binary
from omnicorpus.extract.html import ExtractConfig, ExtractStage
from omnicorpus.extract.sources import absolute_url as absolute_image_url
from omnicorpus.io.warc import RawPage, ReadConfig, WarcReader
from omnicorpus.stage import StageStats, run_stage
from tests.builders import html_page


def page_of(html: str | bytes, url="https://example.org/blog/post.html", content_type="text/html; charset=utf-8"):
    payload = html.encode("utf-8") if isinstance(html, str) else html
    return RawPage(url=url, warc_file="test.warc", record_id="<urn:uuid:test>", offset=0, payload=payload,
                   content_type=content_type)


def extract(page, **config):
    stage = ExtractStage(ExtractConfig(**config))
    stats = StageStats()
    kept, rejected = run_stage(stage, page, stats, RawPage.shell_document)
    return kept, rejected


LONG = "The restoration took the whole winter, one careful step after another in the cold barn. " * 3


def test_images_stay_where_the_page_has_them_with_absolute_urls_and_alt():
    html = html_page("Restoring a bicycle", LONG, '<img src="/img/before.jpg" alt="The rusty frame">',
                     "Sanding took a week. " + LONG, '<img src="img/after.png" alt="Painted frame">', "Done. " + LONG)
    document, rejected = extract(page_of(html))
    assert rejected is None
    assert document.images == [None, "https://example.org/img/before.jpg", None,
                               "https://example.org/blog/img/after.png", None]
    assert document.image_info[1]["alt"] == "The rusty frame"
    assert document.image_info[1]["status"] == "not_fetched"
    assert document.texts[2].startswith("Sanding took a week.")
    assert "Home" not in document.text and "Copyright" not in document.text  # navigation and footer removed
    assert document.title == "Restoring a bicycle"
    assert document.signals["extracted_images"] == 2


def test_page_without_images_is_dropped_or_kept_as_configured():
    html = html_page("Text only", LONG, LONG)
    _, rejected = extract(page_of(html))
    assert rejected.drop_reason == "extract.no_image"
    document, rejected = extract(page_of(html), require_image=False)
    assert rejected is None and document.num_images == 0 and "restoration" in document.text


def test_page_without_main_text_is_dropped():
    empty = "<html><head><title>x</title></head><body><div>{}</div></body></html>"
    _, rejected = extract(page_of(empty.format('<img src="a.jpg">')))
    assert rejected.drop_reason == "extract.no_text"
    _, rejected = extract(page_of(empty.format("")), require_image=False)
    assert rejected.drop_reason == "extract.no_text"


def test_page_without_any_img_tag_is_dropped_before_parsing_when_images_are_required():
    _, rejected = extract(page_of(html_page("Text only", LONG, LONG)))
    assert rejected.drop_reason == "extract.no_image"
    assert rejected.signals == {}  # dropped on the raw text: never parsed, so nothing was measured


def test_binary_junk_labelled_html_is_not_html():
    junk = bytes(range(256)) * 40
    _, rejected = extract(page_of(junk))
    assert rejected.drop_reason == "extract.not_html"


def test_bad_bytes_never_crash_extraction():
    html = html_page("Caf\xe9", LONG, '<img src="a.jpg">').encode("utf-8") + b"\xff\xfe\xc3\x28 tail"
    document, rejected = extract(page_of(html))
    assert rejected is None and "restoration" in document.text


def test_data_uris_and_scripts_are_not_images():
    assert absolute_image_url("data:image/gif;base64,R0lGOD", "https://example.org/") is None
    assert absolute_image_url("javascript:alert(1)", "https://example.org/") is None
    assert absolute_image_url("//cdn.example.org/a.jpg", "https://example.org/x/") == "https://cdn.example.org/a.jpg"
    assert absolute_image_url("../a.jpg", "https://example.org/x/y/") == "https://example.org/x/a.jpg"


# -- decoding ----------------------------------------------------------------------------------------------


def test_http_charset_wins_then_meta_then_utf8():
    text = "Grüße aus Köln"
    assert decode_html(text.encode("cp1252"), "text/html; charset=windows-1252") == (text, "http:cp1252")
    meta = f"<html><head><meta charset='iso-8859-1'></head><body>{text}</body></html>"
    decoded, how = decode_html(meta.encode("cp1252"), "text/html")
    assert text in decoded and how == "meta:cp1252"
    decoded, how = decode_html(text.encode("utf-8"), None)
    assert decoded == text and how == "default:utf-8"


def test_gb2312_label_decodes_with_gb18030():
    text = "我国卫生与健康领域有了基本法 — 镕"  # 镕 is outside GB2312, common on real gb2312 pages
    decoded, how = decode_html(text.encode("gb18030"), "text/html; charset=gb2312")
    assert decoded == text and how == "http:gb18030"


def test_undeclared_charset_is_detected():
    text = "<html><body>" + "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 20 + "</body></html>"
    decoded, how = decode_html(text.encode("cp1251"), "text/html")
    assert "французских" in decoded and how.startswith("detected:")


def test_codec_labels():
    assert codec_for("GB2312") == "gb18030"
    assert codec_for("latin1") == "cp1252"
    assert codec_for("no-such-charset") is None
    assert looks_binary(b"\x00\x01\x02" * 100) and not looks_binary("ü".encode("utf-8") * 100)


# -- real pages --------------------------------------------------------------------------------------------


def _pages(path):
    return [item for item in WarcReader(str(path), ReadConfig()).read() if isinstance(item, RawPage) and item.payload]


def test_common_crawl_gb2312_pages_decode_to_chinese(common_crawl_warc):
    pages = _pages(common_crawl_warc)
    gb_pages = [page for page in pages if "gb2312" in (page.content_type or "").lower()
                or b"charset=gb2312" in page.payload[:4000].lower()]
    assert gb_pages, "the excerpt holds gb2312 pages"
    for page in gb_pages:
        text, _ = decode_html(page.payload, page.content_type)
        han = len(re.findall(r"[\u4e00-\u9fff]", text))
        assert han > 100, page.url
        assert text.count("\ufffd") < 0.001 * len(text), page.url
    # The page's images are its header's logos and navigation buttons, not part of its text: read it text-only.
    document, _ = extract(next(page for page in pages if page.url == "http://003338.cn/l41/481397.html"),
                          require_image=False)
    assert "警方逮捕一些抗议者" in document.text and "我国卫生与健康领域" in document.title


def test_mona_lisa_images_come_out_in_page_order(mona_lisa_warc):
    page = _pages(mona_lisa_warc)[0]
    document, rejected = extract(page)
    assert rejected is None
    html = page.payload.decode("utf-8")
    page_order = [m.replace("&amp;", "&") for m in re.findall(r'<img[^>]+src="([^"]+)"', html)]
    page_order = ["http:" + src if src.startswith("//") else src for src in page_order]
    extracted = [url for url in document.images if url is not None]
    assert len(extracted) >= 15
    position = -1
    for url in extracted:  # each image must appear in the page after the previous one (URLs repeat)
        position = page_order.index(url, position + 1)
    assert "Leonardo da Vinci" in document.text


@pytest.mark.parametrize("favor", ["balanced", "precision", "recall"])
def test_favor_modes_are_accepted(favor):
    assert ExtractConfig(favor=favor).favor == favor


def test_unknown_favor_mode_is_refused():
    with pytest.raises(ValueError, match="extract.favor must be one of"):
        ExtractConfig(favor="everything")
