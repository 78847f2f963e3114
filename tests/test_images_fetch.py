"""The HTTP fetcher against a real server on 127.0.0.1: every fault mode ends in its status, in time, in bounded
memory; private addresses are refused unless allowed; robots.txt and noai are honoured; limits hold."""

import shutil
import subprocess
import time
import tracemalloc

import pytest

from omnicorpus.images.config import ImagesConfig
from omnicorpus.images.fetch import (address_allowed, content_type_verdict, default_user_agent, fetch_urls,
                                     http_status_verdict, opted_out, retry_after_seconds)
from tests.conftest import FIXTURES
from tests.image_server import ImageServer

FLOWER = (FIXTURES / "images" / "flower.jpg").read_bytes()
MiB = 1024 * 1024
# Tests allow loopback only: 127.0.0.1, never ::1, never any other private network.
LOOPBACK = ("127.0.0.1/32",)


def config(**overrides) -> ImagesConfig:
    values = dict(fetch_allow_networks=LOOPBACK, total_timeout_s=2.0, connect_timeout_s=2.0, read_timeout_s=2.0,
                  retries=0, backoff_s=0.05, max_bytes=2 * MiB)
    return ImagesConfig(**{**values, **overrides})


def fetch(urls, cfg):
    results = []
    started = time.perf_counter()
    fetch_urls(urls, cfg, results.append)
    return {r.url: r for r in results}, time.perf_counter() - started


def fetch_one(url, cfg):
    results, elapsed = fetch([url], cfg)
    return results[url], elapsed


@pytest.fixture(scope="module")
def server():
    with ImageServer({"flower.jpg": FLOWER}) as running:
        yield running


def test_an_image_arrives_whole_with_an_honest_user_agent(server):
    result, _ = fetch_one(server.url("/img/flower.jpg"), config())
    assert result.status == "ok" and result.data == FLOWER and result.http_status == 200
    assert result.content_type == "image/jpeg" and result.attempts == 1
    agent = server.request_headers["/img/flower.jpg"]["User-Agent"]
    assert agent == default_user_agent() and agent.startswith("omnicorpus/")
    assert "Googlebot" not in agent and "Mozilla" not in agent
    custom, _ = fetch_one(server.url("/redirect/1/flower.jpg"), config(user_agent="omnicorpus-test (ops@example.org)"))
    assert custom.status == "ok"
    assert server.request_headers["/img/flower.jpg"]["User-Agent"] == "omnicorpus-test (ops@example.org)"


def test_not_found_is_not_retried(server):
    before = server.hits["/status/404"]
    result, _ = fetch_one(server.url("/status/404"), config(retries=3))
    assert (result.status, result.http_status, result.attempts) == ("not_found", 404, 1)
    assert server.hits["/status/404"] - before == 1
    assert fetch_one(server.url("/status/403"), config(retries=3))[0].attempts == 1


def test_server_errors_are_retried_with_backoff_then_reported(server):
    before = server.hits["/status/500"]
    result, elapsed = fetch_one(server.url("/status/500"), config(retries=2, backoff_s=0.1))
    assert (result.status, result.attempts) == ("http_5xx", 3)
    assert server.hits["/status/500"] - before == 3
    assert elapsed >= 0.1 + 0.2  # doubling backoff
    flaky, _ = fetch_one(server.url("/flaky/flower.jpg"), config(retries=2))
    assert (flaky.status, flaky.attempts, flaky.data) == ("ok", 2, FLOWER)


def test_a_long_retry_after_is_not_waited_for(server):
    result, elapsed = fetch_one(server.url("/retry-after/3600"), config(retries=3))
    assert (result.status, result.http_status, result.attempts) == ("http_4xx", 429, 1) and elapsed < 2


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(" 7 ") == 7.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:13:50 GMT", now=now) == 30.0
    assert retry_after_seconds("Tuesday, 14-Nov-23 22:15:20 GMT", now=now) == 120.0  # RFC 850 form
    assert retry_after_seconds("Tue Nov 14 22:13:25 2023", now=now) == 5.0  # asctime form
    assert retry_after_seconds("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0  # in the past: no wait
    for unreadable in (None, "", "soon", "-5", "1.5", "Tue, 99 Foo 2023 25:61:00 GMT"):
        assert retry_after_seconds(unreadable, now=now) is None


def test_an_http_date_retry_after_is_honoured_when_short_and_not_waited_for_when_long(server):
    result, elapsed = fetch_one(server.url("/retry-after-date/3600"), config(retries=3))
    assert (result.status, result.http_status, result.attempts) == ("http_4xx", 429, 1) and elapsed < 2
    before = server.hits["/retry-after-date/2"]
    result, elapsed = fetch_one(server.url("/retry-after-date/2"), config(retries=1, backoff_s=0.05))
    assert (result.status, result.attempts) == ("http_4xx", 2)
    assert server.hits["/retry-after-date/2"] - before == 2
    assert elapsed >= 1.0  # waited for the date (whole seconds: the date has no fraction), not 0.05 s


def test_a_trickling_body_ends_in_timeout_within_the_total_timeout(server):
    result, elapsed = fetch_one(server.url("/trickle"), config(total_timeout_s=1.0, read_timeout_s=5.0))
    assert result.status == "timeout" and result.data is None
    assert 1.0 <= elapsed < 2.5
    retried, elapsed = fetch_one(server.url("/trickle"), config(total_timeout_s=0.5, retries=1, backoff_s=0.1))
    assert (retried.status, retried.attempts) == ("timeout", 2) and elapsed < 0.5 * 2 + 0.1 + 1.5


def test_a_lying_content_length_ends_in_truncated(server):
    result, elapsed = fetch_one(server.url("/lying-length"), config())
    assert result.status == "truncated" and result.data is None and elapsed < 2


@pytest.mark.parametrize("path", ["/huge", "/huge-unannounced"])
def test_a_200_mb_body_is_cut_off_in_bounded_memory(server, path):
    tracemalloc.start()
    try:
        result, elapsed = fetch_one(server.url(path), config(max_bytes=2 * MiB, total_timeout_s=10))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.status == "too_large" and result.data is None
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB while reading {path}"
    assert server.bytes_sent[path] < 64 * MiB  # the client hung up long before 200 MB
    assert elapsed < 10


def test_redirects_are_followed_up_to_the_limit_and_loops_end(server):
    result, _ = fetch_one(server.url("/redirect/3/flower.jpg"), config(max_redirects=3))
    assert result.status == "ok" and result.final_url == server.url("/img/flower.jpg")
    too_many, _ = fetch_one(server.url("/redirect/4/flower.jpg"), config(max_redirects=3))
    assert too_many.status == "too_many_redirects"
    before = server.hits["/loop"]
    loop, elapsed = fetch_one(server.url("/loop"), config(max_redirects=5))
    assert loop.status == "too_many_redirects" and server.hits["/loop"] - before == 6 and elapsed < 2


def test_wrong_content_type_is_refused(server):
    result, _ = fetch_one(server.url("/page.html"), config())
    assert result.status == "bad_type" and result.data is None and "text/html" in result.error


def test_robots_txt_disallow_is_honoured_and_read_once_per_origin(server):
    urls = [server.url("/private/flower.jpg")] + [server.url(f"/img/flower.jpg?copy={i}") for i in range(5)]
    before = server.hits["/robots.txt"]
    results, _ = fetch(urls, config())
    assert results[urls[0]].status == "blocked_robots"
    assert server.hits["/private/flower.jpg"] == 0
    assert all(results[url].status == "ok" for url in urls[1:])
    assert server.hits["/robots.txt"] - before == 1
    ignoring, _ = fetch_one(urls[0], config(obey_robots=False))
    assert ignoring.status == "ok"


@pytest.mark.parametrize("robots_status, status", [(503, "blocked_robots"), (404, "ok"), (200, "ok")])
def test_robots_txt_unreachable_means_disallow_all_and_missing_means_allow_all(robots_status, status):
    # RFC 9309: 5xx (unreachable) → complete disallow; 4xx (unavailable) → no restrictions. An empty
    # robots.txt allows everything.
    with ImageServer({"flower.jpg": FLOWER}, robots="", robots_status=robots_status) as site:
        result, _ = fetch_one(site.url("/img/flower.jpg"), config())
        assert result.status == status
        assert site.hits["/img/flower.jpg"] == (0 if status == "blocked_robots" else 1)


@pytest.mark.parametrize("path, status", [
    ("/noai/flower.jpg", "opted_out"),
    ("/noimageai-for-us/flower.jpg", "opted_out"),
    ("/tdm/flower.jpg", "opted_out"),
    ("/noai-for-others/flower.jpg", "ok"),
])
def test_ai_opt_out_headers(server, path, status):
    result, _ = fetch_one(server.url(path), config())
    assert result.status == status
    assert (result.data is None) == (status != "ok")


def test_opt_out_can_be_switched_off_for_owned_servers(server):
    assert fetch_one(server.url("/noai/flower.jpg"), config(obey_noai=False))[0].status == "ok"


def test_private_addresses_are_refused_by_default(server):
    default = config(fetch_allow_networks=())
    before = sum(server.hits.values())
    urls = [server.url("/img/flower.jpg"), f"http://localhost:{server.port}/img/flower.jpg",
            "http://10.0.0.1/x.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]/x.jpg",
            "http://0.0.0.0/x.jpg", "http://224.0.0.1/x.jpg"]
    results, elapsed = fetch(urls, default)
    assert {url: r.status for url, r in results.items()} == dict.fromkeys(urls, "blocked_address")
    assert sum(server.hits.values()) == before  # nothing reached the server
    assert elapsed < 2
    # Allowing 127.0.0.1 lets exactly that through, and a redirect to a private address is caught per hop.
    redirect = server.url("/to/http%3A%2F%2F10.1.2.3%2Fa.jpg")
    allowed, _ = fetch([urls[0], "http://10.0.0.1/x.jpg", redirect], config())
    assert {url: r.status for url, r in allowed.items()} == {
        urls[0]: "ok", "http://10.0.0.1/x.jpg": "blocked_address", redirect: "blocked_address"}
    assert allowed[redirect].final_url == "http://10.1.2.3/a.jpg"


def test_per_host_and_global_limits_hold():
    with ImageServer({"flower.jpg": FLOWER}, slow_s=0.15, robots="") as slow:
        urls = [slow.url(f"/slow/flower.jpg?n={i}") for i in range(12)]
        results, elapsed = fetch(urls, config(fetch_per_host=3, fetch_concurrency=64))
        assert all(r.status == "ok" for r in results.values())
        assert 2 <= slow.max_active <= 3
        assert elapsed >= 12 / 3 * 0.15
    with ImageServer({"flower.jpg": FLOWER}, slow_s=0.1, robots="") as slow:
        urls = [slow.url(f"/slow/flower.jpg?n={i}") for i in range(8)]
        fetch(urls, config(fetch_per_host=8, fetch_concurrency=2))
        assert slow.max_active == 2


def test_each_url_is_fetched_once(server):
    url = server.url("/img/flower.jpg?once")
    results, _ = fetch([url, url, url], config())
    assert len(results) == 1 and server.hits["/img/flower.jpg?once"] == 1


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_certificates_are_verified(tmp_path):
    key, certificate = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
                    str(certificate)], check=True, capture_output=True)
    with ImageServer({"flower.jpg": FLOWER}, tls=(str(certificate), str(key))) as secure:
        result, _ = fetch_one(secure.url("/img/flower.jpg"), config())
        assert result.status == "tls_error" and secure.hits["/img/flower.jpg"] == 0


# ---------------------------------------------------------------------------------------------------------
# The pure parts


def test_address_rules():
    assert address_allowed("93.184.216.34") and address_allowed("2606:4700::1111")
    for address in ("127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "224.0.0.1", "0.0.0.0", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1"):
        assert not address_allowed(address), address


def test_opt_out_header_parsing():
    assert opted_out({"X-Robots-Tag": "noindex, NoAI"})
    assert opted_out({"X-Robots-Tag": "omnicorpus: noimageai"})
    assert not opted_out({"X-Robots-Tag": "googlebot: noai"})
    assert not opted_out({"X-Robots-Tag": "noindex, nofollow"})
    assert opted_out({"tdm-reservation": "1"}) and not opted_out({"tdm-reservation": "0"})


def test_content_type_and_status_rules():
    assert content_type_verdict("image/jpeg; charset=binary") is None
    assert content_type_verdict(None) is None and content_type_verdict("application/octet-stream") is None
    assert content_type_verdict("text/html") == "bad_type" and content_type_verdict("image/svg+xml") == "bad_type"
    assert http_status_verdict(410) == ("not_found", False)
    assert http_status_verdict(429) == ("http_4xx", True) and http_status_verdict(503) == ("http_5xx", True)


def test_the_scheduler_keeps_order_per_host_limits_and_its_window():
    import asyncio

    from omnicorpus.images.fetch import _HostQueue

    async def scenario():
        urls = ["http://x.example/1", "http://x.example/2", "http://y.example/1", "http://y.example/2",
                "http://y.example/3"]
        queue = _HostQueue(urls, per_host=1, window=4)
        assert await queue.take() == (0, "x.example")
        assert await queue.take() == (2, "y.example")  # x is busy: the next host's first URL
        await queue.release(2, "y.example")
        assert await queue.take() == (3, "y.example")
        await queue.release(3, "y.example")
        with pytest.raises(TimeoutError):  # y/3 is index 4: not below the first unfinished (0) + window (4)
            await asyncio.wait_for(queue.take(), 0.05)
        await queue.release(0, "x.example")
        assert await queue.take() == (1, "x.example")
        assert await queue.take() == (4, "y.example")  # 4 < 1 + 4
        assert queue.left == 0 and await queue.take() is None

    asyncio.run(scenario())
