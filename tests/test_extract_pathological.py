"""Pathological pages end as reason or error rows, within the extraction timeout: never a crash or a hang."""

import random
import signal
import time

import pyarrow.parquet as pq
import pytest

from omnicorpus import schema
from omnicorpus.config import load_config
from omnicorpus.extract.engines import ENGINES
from omnicorpus.extract.html import ExtractConfig, ExtractStage
from omnicorpus.io.warc import RawPage
from omnicorpus.pipeline import run
from omnicorpus.stage import StageStats, run_stage
from tests.builders import make_warc

MiB = 1024 * 1024
# Generous: the pages below need well under a second each, or hit the 2 CPU-second timeout. A page that took
# longer than this would mean the timeout did not fire.
LIVENESS_SECONDS = 60
# Every test that extracts runs with each main-text engine: the limits must hold whichever extracts the text.
each_engine = pytest.mark.parametrize("engine", ENGINES)


def page_of(payload: bytes, content_type: str = "text/html") -> RawPage:
    return RawPage(url="https://example.org/page.html", warc_file="t.warc", record_id="<urn:uuid:p>", offset=0,
                   payload=payload, content_type=content_type)


def extract(payload: bytes, **config):
    started = time.monotonic()
    kept, rejected = run_stage(ExtractStage(ExtractConfig(**config)), page_of(payload), StageStats(),
                               RawPage.shell_document)
    assert time.monotonic() - started < LIVENESS_SECONDS
    return kept, rejected


def fifty_megabytes_of_paragraphs() -> bytes:
    paragraph = b"<p>" + b"lorem ipsum " * 85 + b"</p>\n"
    return b"<html><body><img src='a.jpg'>" + paragraph * (50 * MiB // len(paragraph)) + b"</body></html>"


@each_engine
def test_a_50_mb_page_becomes_a_timeout_error_row_when_the_read_limit_lets_it_through(engine):
    _, rejected = extract(fifty_megabytes_of_paragraphs(), engine=engine)
    assert rejected.drop_reason == "error.extract.timeout"
    assert "CPU seconds" in rejected.error and schema.is_declared_reason(rejected.drop_reason)
    assert signal.getsignal(signal.SIGPROF) in (signal.SIG_DFL, None)  # the handler was put back
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


def test_a_50_mb_page_in_a_warc_is_dropped_by_its_size_before_parsing(tmp_path):
    warc = make_warc(tmp_path / "big.warc.gz", [
        {"url": "https://example.org/big.html", "body": fifty_megabytes_of_paragraphs()},
        {"url": "https://example.org/empty.html", "body": b""},
        {"url": "https://example.org/junk.html", "body": random.Random(7).randbytes(64 * 1024)},
    ])
    result = run(load_config("extract-only", {"run.runner": "local"}), [str(warc)], tmp_path / "out")
    reasons = {row["url"]: row["drop_reason"] for row in pq.read_table(tmp_path / "out" / "rejects").to_pylist()}
    assert reasons == {"https://example.org/big.html": "read.too_large",
                       "https://example.org/empty.html": "read.empty",
                       "https://example.org/junk.html": "extract.not_html"}
    assert result.stats["funnel"]["input"] == 3


@each_engine
def test_100k_deep_nesting_ends_as_a_row(engine):
    deep = (b"<html><body><img src='a.jpg'>" + b"<div>" * 100_000 + b"Deep inside the page. " * 20
            + b"</div>" * 100_000 + b"<p>" + b"Text after the nesting, long enough to be kept. " * 5 + b"</p>"
            + b"</body></html>")
    started = time.process_time()
    kept, rejected = extract(deep, require_image=False, engine=engine)
    # resiliparse alone needs minutes for this page (its main-content pass grows with the square of the depth,
    # in one C call the timeout cannot interrupt); it reads libxml2's tree, which stops nesting at 256 levels.
    assert time.process_time() - started < 10 * ExtractConfig().timeout_seconds
    assert (kept is None) != (rejected is None)
    if rejected is not None:
        assert schema.is_declared_reason(rejected.drop_reason)


@each_engine
@pytest.mark.parametrize("seed", [1, 2])
def test_binary_junk_labelled_html_is_not_html(seed, engine):
    junk = random.Random(seed).randbytes(256 * 1024)
    _, rejected = extract(junk, engine=engine)
    assert rejected.drop_reason == "extract.not_html"
    png = b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(4096)
    assert extract(png, engine=engine)[1].drop_reason == "extract.not_html"


@each_engine
def test_text_with_control_characters_and_noncharacters_is_extracted(engine):
    # lxml refuses control characters in strings; they are removed before parsing, as trafilatura does.
    text = "A paragraph with\x00 control\x0b characters\x1f and a noncharacter \ufffe, long enough to be kept. "
    page = f"<html><body><article><p>{text * 4}</p><img src='a.jpg'></article></body></html>".encode("utf-8")
    kept, rejected = extract(page, engine=engine)
    assert rejected is None and "control characters and a noncharacter" in kept.text
    assert not any(character in kept.text for character in "\x00\x0b\x1f\ufffe")


@pytest.mark.parametrize("body, reason", [
    (b"<html><head><title>x</title></head><body></body></html>", "extract.no_text"),
    (b"<html><body><img src='a.jpg'></body></html>", "extract.no_text"),
    (b"   \n\t  ", "extract.no_text"),
    (b"<!-- nothing -->", "extract.no_text"),
])
@each_engine
def test_empty_bodies_are_no_text(body, reason, engine):
    assert extract(body, require_image=False, engine=engine)[1].drop_reason == reason


@each_engine
def test_a_page_over_its_cpu_budget_is_a_timeout_row_and_the_next_page_is_fine(engine):
    stage = ExtractStage(ExtractConfig(timeout_seconds=0.05, require_image=False, engine=engine))
    heavy = b"<html><body>" + (b"<div><p>" + b"word " * 40 + b"</p></div>\n") * 20_000 + b"</body></html>"
    stats = StageStats()
    _, rejected = run_stage(stage, page_of(heavy), stats, RawPage.shell_document)
    assert rejected.drop_reason == "error.extract.timeout"
    light = b"<html><body><article><p>" + b"A short but real paragraph of text. " * 10 + b"</p></article></body></html>"
    kept, _ = run_stage(stage, page_of(light), stats, RawPage.shell_document)
    assert kept is not None and "real paragraph" in kept.text
    assert dict(stats.dropped) == {"error.extract.timeout": 1} and stats.kept == 1


def test_a_timeout_that_library_code_swallows_still_ends_as_a_timeout():
    from omnicorpus.extract.html import ExtractTimeout, cpu_time_limit

    swallowed = 0
    with pytest.raises(ExtractTimeout):
        with cpu_time_limit(0.2):
            end = time.process_time() + 1.0
            while True:  # like trafilatura's fallbacks: catch everything and go on
                try:
                    # The clock is read inside the try: Python handles a signal at calls and loop jumps, and one
                    # handled outside the try would end the loop before the library had swallowed any.
                    while time.process_time() < end:
                        sum(range(10_000))
                    break
                except ExtractTimeout:
                    swallowed += 1
    assert swallowed >= 2  # the timer kept firing after the first expiry was swallowed
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)
