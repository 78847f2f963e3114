import gzip
from pathlib import Path

import pytest

from omnicorpus.io.paths import InputError, expand_inputs, unit_name
from omnicorpus.io.warc import ImageRecord, RawPage, ReadConfig, WarcReader, classify_payload
from tests.builders import html_page, make_warc
from tests.conftest import WARCS, tiny_png


def read_all(path, **config):
    reader = WarcReader(str(path), ReadConfig(**config))
    items = list(reader.read())
    pages = [item for item in items if isinstance(item, RawPage)]
    images = [item for item in items if isinstance(item, ImageRecord)]
    counts = reader.counts.to_json()
    assert counts["total"] == sum(counts["outcome"].values()), counts
    return pages, images, counts


def test_every_edge_case_file_reads_to_the_end_with_every_record_accounted(edge_case_warcs):
    for path in edge_case_warcs:
        pages, images, counts = read_all(path)
        assert counts["total"] > 0, path


def test_truncated_file_gives_an_error_page_not_an_exception():
    pages, _, counts = read_all(WARCS / "clipped.warc.gz")
    assert len(pages) == 1
    assert pages[0].error and "truncated" in pages[0].error
    assert pages[0].payload is None
    assert counts["outcome"] == {"error": 1}


def test_records_before_a_cut_are_read(tmp_path):
    records = [{"url": f"https://example.org/{i}", "body": html_page(f"Page {i}", "Text " * 50)} for i in range(3)]
    whole = make_warc(tmp_path / "whole.warc.gz", records).read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(whole[: len(whole) - 200])
    pages, _, counts = read_all(cut)
    assert [page.url for page in pages[:2]] == ["https://example.org/0", "https://example.org/1"]
    assert all(page.payload for page in pages[:2])
    assert pages[-1].error is not None
    assert counts["outcome"]["error"] == 1


def test_chunked_transfer_encoding_is_decoded():
    pages, _, _ = read_all(WARCS / "example-iana.org-chunked.warc")
    (page,) = pages
    assert page.payload.lstrip().lower().startswith(b"<!doctype html>")
    assert b"Internet Assigned Numbers Authority" in page.payload


def test_revisit_is_resolved_from_the_same_file():
    pages, _, counts = read_all(WARCS / "warcio-example.warc.gz")
    assert len(pages) == 2
    original, revisit = pages
    assert revisit.revisit_of == original.record_id
    assert revisit.payload == original.payload and revisit.payload
    assert revisit.record_id != original.record_id
    assert counts["revisits"] == {"resolved": 1, "seen": 1}


def test_unresolvable_revisits_are_counted_and_flagged():
    pages, images, counts = read_all(WARCS / "netzliteratur-revisits.warc")
    assert counts["revisits"]["seen"] == 5
    assert counts["revisits"]["resolved"] + counts["revisits"].get("unresolved", 0) == 5
    assert all(page.problem == "revisit_unresolved" for page in pages if page.payload is None and page.problem
               and page.problem != "http_status")
    assert len(images) >= 5  # the GIFs of the pages are indexed


@pytest.mark.parametrize("version", ["WARC/0.17", "WARC/0.18", "WARC/1.1"])
def test_old_and_new_warc_versions(tmp_path, version):
    path = make_warc(tmp_path / "v.warc", [{"url": "https://example.org/a", "body": html_page("A", "Hello " * 20)}],
                     gzip=False, version=version)
    assert version.encode() in path.read_bytes()[:20]
    pages, _, _ = read_all(path)
    assert pages[0].url == "https://example.org/a" and b"Hello" in pages[0].payload


def test_provenance_offsets_point_at_the_record(tmp_path):
    path = make_warc(tmp_path / "p.warc.gz", [
        {"url": "https://example.org/a", "body": html_page("A", "Alpha " * 20)},
        {"url": "https://example.org/img.png", "body": tiny_png(), "content_type": "image/png"},
        {"url": "https://example.org/b", "body": html_page("B", "Beta " * 20)},
    ])
    pages, images, counts = read_all(path)
    data = path.read_bytes()
    for page in pages:
        member = gzip.decompress(data[page.offset : page.offset + page.length])
        assert member.startswith(b"WARC/1.0") and page.url.encode() in member
    assert images[0].url == "https://example.org/img.png" and images[0].data == tiny_png()
    assert counts["outcome"] == {"html": 2, "image": 1, "metadata": 0} or counts["outcome"] == {"html": 2, "image": 1}


def test_html_is_selected_by_content_type_with_sniffing_as_fallback(tmp_path):
    path = make_warc(tmp_path / "s.warc.gz", [
        {"url": "https://example.org/declared", "body": html_page("A", "x " * 30)},
        {"url": "https://example.org/sniffed", "body": html_page("B", "y " * 30),
         "content_type": "application/octet-stream"},
        {"url": "https://example.org/data.json", "body": '{"a": 1}', "content_type": "application/json"},
        {"url": "https://example.org/text", "body": "just words", "content_type": "text/plain"},
        {"url": "https://example.org/gone", "body": html_page("C", "z"), "status": 404},
        {"url": "https://example.org/big", "body": html_page("D", "w " * 5000)},
    ])
    pages, _, counts = read_all(path, max_payload_bytes=5000)
    by_url = {page.url: page for page in pages}
    assert set(by_url) == {"https://example.org/declared", "https://example.org/sniffed", "https://example.org/gone",
                           "https://example.org/big"}
    assert by_url["https://example.org/gone"].problem == "http_status"
    assert by_url["https://example.org/big"].problem == "too_large"
    assert counts["outcome"]["other"] == 2


def test_classify_payload():
    assert classify_payload("text/html; charset=utf-8", b"") == "html"
    assert classify_payload(None, b"  <!DOCTYPE html><html>") == "html"
    assert classify_payload("application/octet-stream", b"\x89PNG\r\n\x1a\nxxxx") == "image"
    assert classify_payload("image/webp", b"") == "image"
    assert classify_payload("text/css", b"<html>") == "other"


def test_crawl_name_comes_from_warcinfo(common_crawl_warc):
    pages, _, _ = read_all(common_crawl_warc)
    assert {page.crawl for page in pages} == {"CC-MAIN-2020-34"}
    assert all(page.fetch_time is not None and page.fetch_time.year == 2020 for page in pages)


# -- inputs --------------------------------------------------------------------------------------------------


def test_inputs_expand_paths_directories_globs_and_lists(tmp_path):
    for name in ("a.warc.gz", "b.warc", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert expand_inputs([str(tmp_path)]) == [str(tmp_path / "a.warc.gz"), str(tmp_path / "b.warc")]
    assert expand_inputs([str(tmp_path / "*.warc*")]) == [str(tmp_path / "a.warc.gz"), str(tmp_path / "b.warc")]
    listing = tmp_path / "warc.paths.gz"
    listing.write_bytes(gzip.compress(b"crawl-data/CC-MAIN-2024-10/x.warc.gz\n" + str(tmp_path / "a.warc.gz").encode()))
    assert expand_inputs([str(listing)], paths_prefix="s3://commoncrawl/") == [
        "s3://commoncrawl/crawl-data/CC-MAIN-2024-10/x.warc.gz", str(tmp_path / "a.warc.gz")]
    assert expand_inputs([f"file://{tmp_path / 'b.warc'}"]) == [str(tmp_path / "b.warc")]


def test_fsspec_urls_are_read(tmp_path):
    import fsspec

    source = make_warc(tmp_path / "m.warc.gz", [{"url": "https://example.org/m", "body": html_page("M", "x " * 30)}])
    with fsspec.open("memory://bucket/m.warc.gz", "wb") as handle:
        handle.write(source.read_bytes())
    (found,) = expand_inputs(["memory://bucket/*.warc.gz"])
    assert found.startswith("memory://") and found.endswith("bucket/m.warc.gz")
    pages, _, _ = read_all(found)
    assert pages[0].url == "https://example.org/m"


@pytest.mark.parametrize("spec", ["/nonexistent/file.warc.gz", "/nonexistent/*.warc.gz", "memory://none/x.warc"])
def test_missing_inputs_fail_clearly(spec):
    with pytest.raises(InputError, match="does not exist|matches no WARC"):
        expand_inputs([spec])


def test_unit_names_are_deterministic_and_safe():
    assert unit_name("/data/x y.warc.gz") == unit_name("/data/x y.warc.gz")
    assert unit_name("/data/a/x.warc.gz") != unit_name("/data/b/x.warc.gz")
    assert "/" not in unit_name("s3://bucket/path/x.warc.gz") and " " not in unit_name("/data/x y.warc.gz")
    assert Path(unit_name("/data/x.warc.gz")).name.startswith("x.warc.gz-")
