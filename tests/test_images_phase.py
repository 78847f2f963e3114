"""The images and image_frequency phases end to end: WARC → store → HTTP resolution, each URL fetched once
per run, statuses and removals in the shards, the frequency cap on a repeated logo, resume."""

import hashlib
import io
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from omnicorpus.config import load_config
from tests.builders import NO_TEXT_FILTERS
from omnicorpus.pipeline import run
from omnicorpus.validate import validate_output
from tests.builders import html_page, make_warc
from tests.conftest import FIXTURES, copy_as_killed
from tests.image_server import ImageServer

FLOWER = (FIXTURES / "images" / "flower.jpg").read_bytes()
IPTC = (FIXTURES / "images" / "iptc.jpg").read_bytes()
HOPPER = (FIXTURES / "images" / "hopper.jpg").read_bytes()  # 128x128: too small


def photo(seed: int, size=(240, 180)) -> bytes:
    """A distinct picture per seed: smooth random shapes, so perceptual hashes differ between seeds."""
    import random

    rng = random.Random(seed)
    small = Image.new("RGB", (6, 5))
    small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(30)])
    buffer = io.BytesIO()
    small.resize(size, Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def page(url: str, *images: str) -> dict:
    blocks = []
    for index, image in enumerate(images):
        blocks.append(f"Paragraph {index} of {url} about the garden and its flowers in spring. " * 12)
        blocks.append(f'<img src="{image}" alt="picture {index}">')
    blocks.append(f"The closing words of {url}, written for the test of images. " * 12)
    return {"url": url, "body": html_page(f"Page {url}", *blocks)}


def image_record(url: str, data: bytes) -> dict:
    return {"url": url, "body": data, "content_type": "image/jpeg"}


def config(**overrides):
    # The text filters and dedup are off: these pages repeat their sentences on purpose (and each other), and
    # the images are under test.
    return load_config("commoncrawl", {
        **NO_TEXT_FILTERS, "dedup.enabled": False, "run.runner": "local", "images.fetch_allow_networks": ["127.0.0.1/32"], "images.total_timeout_s": 3.0,
        "images.retries": 0, "images.backoff_s": 0.05, **overrides})


def shard_rows(output):
    return {row["url"]: row for row in pq.read_table(Path(output) / "shards").to_pylist()}


def reject_rows(output):
    return {row["url"]: row for row in pq.read_table(Path(output) / "rejects").to_pylist()}


def images_of(row):
    return [(url, info, data) for url, info, data in zip(row["images"], row["image_info"], row["image_bytes"])
            if url is not None]


def removed_of(row):
    return sorted((element["reason"], element["image_url"].rsplit("/", 1)[-1]) for element in row["removed"])


@pytest.fixture
def server():
    images = {"shared.jpg": FLOWER, "iptc.jpg": IPTC, "hopper.jpg": HOPPER,
              **{f"photo-{i}.jpg": photo(i) for i in range(4)}}
    with ImageServer(images) as running:
        yield running


def test_images_come_from_the_warc_then_http_each_url_fetched_once_per_run(tmp_path, server):
    shared = server.url("/img/shared.jpg")
    in_warc = "https://pictures.example/in-warc.jpg"
    first = make_warc(tmp_path / "a.warc.gz", [
        page("https://a.example/1", shared, server.url("/img/photo-0.jpg"), server.url("/img/missing.jpg"),
             server.url("/private/iptc.jpg")),
        page("https://a.example/2", shared, in_warc, server.url("/img/hopper.jpg")),
        image_record(in_warc, photo(9)),
    ])
    second = make_warc(tmp_path / "b.warc.gz", [
        page("https://b.example/1", shared, server.url("/noai/iptc.jpg"), server.url("/img/photo-1.jpg")),
        page("https://b.example/2", server.url("/html/soft-404.jpg"), server.url("/img/logo-photo-2.jpg")),
    ])
    output = tmp_path / "out"
    result = run(config(), [str(first), str(second)], output)
    assert validate_output(result.output).problems == []

    # Every URL was requested once in the whole run, although two units wanted the shared image.
    assert server.hits["/img/shared.jpg"] == 1 and server.hits["/img/photo-0.jpg"] == 1
    assert server.hits["/private/iptc.jpg"] == 0 and server.hits["/img/logo-photo-2.jpg"] == 0  # banned word
    assert server.hits["/robots.txt"] == 1  # one fetch task holds the host: robots.txt read once per run

    rows = shard_rows(output)
    assert set(rows) == {"https://a.example/1", "https://a.example/2", "https://b.example/1"}
    for row in rows.values():
        for url, info, data in images_of(row):
            assert info["status"] == "ok" and data and info["byte_size"] == len(data)
            assert info["sha256"] == hashlib.sha256(data).hexdigest() and len(info["phash"]) == 16
            assert info["source"] == ("warc" if url == in_warc else "http")
            assert info["dup_count"] >= 1
    a1 = rows["https://a.example/1"]
    assert [url.rsplit("/", 1)[-1] for url, _, _ in images_of(a1)] == ["shared.jpg", "photo-0.jpg"]
    assert images_of(a1)[0][2] == FLOWER and images_of(a1)[0][1]["dup_count"] == 3  # three pages show it
    assert removed_of(a1) == [("images.blocked_robots", "iptc.jpg"), ("images.not_found", "missing.jpg")]
    assert removed_of(rows["https://a.example/2"]) == [("images.too_small", "hopper.jpg")]
    assert images_of(rows["https://a.example/2"])[1][2] == photo(9)
    assert removed_of(rows["https://b.example/1"]) == [("images.opted_out", "iptc.jpg")]
    rejected = reject_rows(output)["https://b.example/2"]
    assert rejected["drop_reason"] == "images.too_few_images" and rejected["images"] == [None]
    assert removed_of(rejected) == [("images.bad_type", "soft-404.jpg"), ("images.banned_url", "logo-photo-2.jpg")]

    status = result.stats["image_status"]
    assert status == {"ok": 6, "not_found": 1, "blocked_robots": 1, "too_small": 1, "opted_out": 1, "bad_type": 1,
                      "banned_url": 1}
    assert result.stats["funnel"]["dropped"]["images.too_few_images"] == 1

    # The fetch results are a Parquet image store: (url, data) rows another run can point images.store at.
    reuse = run(config(**{"images.fetch": False, "images.store": str(output / "_work" / "images" / "fetch")}),
                [str(first), str(second)], tmp_path / "again")
    again = shard_rows(reuse.output)
    assert {url: [(u, i["source"]) for u, i, _ in images_of(row)] for url, row in again.items()} == {
        url: [(u, "warc" if u == in_warc else "store") for u, _, _ in images_of(row)] for url, row in rows.items()}


def test_an_interrupted_run_resumes_without_fetching_again(tmp_path, server):
    warc = make_warc(tmp_path / "a.warc.gz", [page(f"https://a.example/{i}", server.url(f"/img/photo-{i}.jpg"))
                                              for i in range(3)])
    complete = run(config(), [str(warc)], tmp_path / "complete")
    output = copy_as_killed(complete.output, tmp_path / "out")
    next((output / "_work" / "images").glob("*.stats.json")).unlink()  # killed inside the images phase
    hits = sum(server.hits.values())
    resumed = run(config(), [str(warc)], output)
    assert sum(server.hits.values()) == hits  # the fetch step's outputs were reused
    assert resumed.stats == complete.stats
    for path in sorted((Path(complete.output) / "shards").glob("*.parquet")):
        assert (output / "shards" / path.name).read_bytes() == path.read_bytes()


def test_fetching_off_leaves_unstored_images_not_fetched(tmp_path, server):
    warc = make_warc(tmp_path / "a.warc.gz", [page("https://a.example/1", server.url("/img/photo-0.jpg"))])
    removed = run(config(**{"images.fetch": False}), [str(warc)], tmp_path / "removed")
    assert sum(server.hits.values()) == 0
    (rejected,) = reject_rows(removed.output).values()
    assert rejected["drop_reason"] == "images.too_few_images"
    assert removed_of(rejected) == [("images.not_fetched", "photo-0.jpg")]
    kept = run(config(**{"images.fetch": False, "images.keep_unresolved": True}), [str(warc)], tmp_path / "kept")
    (row,) = shard_rows(kept.output).values()
    ((url, info, data),) = images_of(row)
    assert info["status"] == "not_fetched" and data is None and info["source"] is None


@pytest.mark.parametrize("layout", ["hashed-files", "parquet"])
def test_a_local_image_store_serves_images_before_any_fetch(tmp_path, server, layout):
    urls = [server.url("/img/photo-0.jpg"), "https://offline.example/photo.jpg"]
    store = tmp_path / "store"
    store.mkdir()
    if layout == "hashed-files":  # OmniCorpus: files named sha256(url), here with and without an extension
        (store / (hashlib.sha256(urls[0].encode()).hexdigest() + ".jpg")).write_bytes(photo(20))
        (store / "ab").mkdir()
        (store / "ab" / hashlib.sha256(urls[1].encode()).hexdigest()).write_bytes(photo(21))
    else:
        pq.write_table(pa.table({"url": urls, "data": [photo(20), photo(21)]}), store / "images.parquet")
    warc = make_warc(tmp_path / "a.warc.gz", [page("https://a.example/1", *urls)])
    result = run(config(**{"images.store": str(store)}), [str(warc)], tmp_path / "out")
    assert sum(server.hits.values()) == 0  # nothing left to fetch
    (row,) = shard_rows(result.output).values()
    assert [(info["source"], data) for _, info, data in images_of(row)] == [("store", photo(20)), ("store", photo(21))]


def test_a_missing_store_folder_is_an_error(tmp_path):
    warc = make_warc(tmp_path / "a.warc.gz", [page("https://a.example/1", "https://x.example/a.jpg")])
    with pytest.raises(FileNotFoundError, match="images.store '/nonexistent/store' is not a folder"):
        run(config(**{"images.store": "/nonexistent/store", "images.fetch": False}), [str(warc)], tmp_path / "out")


# ---------------------------------------------------------------------------------------------------------
# The frequency cap


def logo_warcs(tmp_path, pages: int, server: ImageServer | None = None) -> list[Path]:
    """`pages` pages over two sites, each with the same brand mark (one URL per site) and its own photo;
    the last page shows only the brand mark. The photos are WARC records, or served by `server`."""
    brand = photo(1000, size=(300, 150))
    warcs = []
    for site in ("a", "b"):
        records = []
        for i in range(pages // 2):
            url = f"https://{site}.example/article-{i}"
            mark = f"https://{site}.example/static/brand-mark.jpg"
            own = []
            if (site, i) != ("b", pages // 2 - 1):
                name = f"{site}-{i}.jpg"
                own = [server.url(f"/img/{name}") if server else f"https://{site}.example/photos/{name}"]
                if server:
                    server.images[name] = photo(100 * ord(site) + i)
                else:
                    records.append(image_record(own[0], photo(100 * ord(site) + i)))
            records.append(page(url, mark, *own))
        records.append(image_record(f"https://{site}.example/static/brand-mark.jpg", brand))
        warcs.append(make_warc(tmp_path / f"{site}.warc.gz", records))
    return warcs


def test_the_frequency_cap_removes_a_repeated_logo_everywhere(tmp_path):
    warcs = logo_warcs(tmp_path, pages=12)
    result = run(config(**{"images.fetch": False}), [str(w) for w in warcs], tmp_path / "out")
    assert validate_output(result.output).problems == []
    rows = shard_rows(result.output)
    assert len(rows) == 11
    for row in rows.values():
        ((url, info, data),) = images_of(row)
        assert "/photos/" in url and info["dup_count"] == 1 and info["source"] == "warc"
        assert removed_of(row) == [("image_frequency.too_frequent", "brand-mark.jpg")]
    (only_logo,) = reject_rows(result.output).values()
    assert only_logo["url"] == "https://b.example/article-5"
    assert only_logo["drop_reason"] == "image_frequency.too_few_images"
    frequency = result.stats["stages"]["image_frequency"]
    # removed_elements counts every removal, the one in the document dropped afterwards included.
    assert frequency["removed_elements"] == {"image_frequency.too_frequent": 12}
    assert removed_of(only_logo) == [("image_frequency.too_frequent", "brand-mark.jpg")]
    assert frequency["dropped"] == {"image_frequency.too_few_images": 1}


def test_at_the_cap_the_logo_stays_with_its_count(tmp_path):
    warcs = logo_warcs(tmp_path, pages=10)
    result = run(config(**{"images.fetch": False}), [str(w) for w in warcs], tmp_path / "out")
    rows = shard_rows(result.output)
    assert len(rows) == 10
    counts = Counter((url.rsplit("/", 1)[-1], info["dup_count"]) for row in rows.values()
                     for url, info, _ in images_of(row))
    assert counts[("brand-mark.jpg", 10)] == 10 and all(row["removed"] == [] for row in rows.values())
    # Counting by URL instead: each site's mark is its own URL, in 5 documents each.
    by_url = run(config(**{"images.fetch": False, "image_frequency.key": "url"}), [str(w) for w in warcs],
                 tmp_path / "by-url")
    marks = {info["dup_count"] for row in shard_rows(by_url.output).values() for url, info, _ in images_of(row)
             if url.endswith("brand-mark.jpg")}
    assert marks == {5}


@pytest.mark.ray
def test_fetching_and_the_frequency_count_give_the_same_output_on_ray(tmp_path, server):
    warcs = [str(w) for w in logo_warcs(tmp_path, pages=12, server=server)]
    local = run(config(), warcs, tmp_path / "local")
    distributed = run(config(**{"run.runner": "ray", "run.workers": 2}), warcs, tmp_path / "ray")
    assert local.stats == distributed.stats
    assert local.stats["image_status"] == {"ok": 23}  # 11 fetched photos, 12 brand marks from the WARCs
    assert local.stats["stages"]["image_frequency"]["removed_elements"] == {"image_frequency.too_frequent": 12}
    # Each photo was fetched once per run, by one of the Ray run's two fetch tasks.
    assert {path: count for path, count in server.hits.items() if path.startswith("/img/")} == {
        f"/img/{site}-{i}.jpg": 2 for site in "ab" for i in range(6) if (site, i) != ("b", 5)}
    for folder in ("shards", "rejects"):
        for path in sorted((tmp_path / "local" / folder).glob("*.parquet")):
            assert (tmp_path / "ray" / folder / path.name).read_bytes() == path.read_bytes(), path.name
