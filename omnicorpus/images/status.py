"""The vocabulary of `image_info.status`, and which statuses may stay in a document without bytes.

Every image slot that leaves the images phase has one of these statuses. `ok` slots carry bytes. A slot with
any other status is removed from its document with the reason `images.<status>` (declared in
schemas/drop-reasons.toml), except the *unresolved* ones when `images.keep_unresolved` is on: those stay with
their URL, their status and no bytes, so a later run can try them again.
"""

from __future__ import annotations

OK = "ok"

STATUSES: dict[str, str] = {
    OK: "bytes embedded; decoded, hashed and within every filter",
    # the bytes could not be had
    "not_fetched": "not in the WARC or the store, and fetching is off",
    "not_found": "HTTP 404 or 410",
    "http_4xx": "another HTTP 4xx answer (after retries for 429)",
    "http_5xx": "an HTTP 5xx answer after every retry",
    "http_other": "an HTTP answer that is neither 2xx, 4xx, 5xx nor a redirect with a Location",
    "timeout": "connect, read or total timeout after every retry",
    "connection_error": "DNS failure, refused or reset connection after every retry",
    "tls_error": "the TLS certificate did not verify",
    "truncated": "the body ended before its Content-Length",
    "too_many_redirects": "more redirects than images.max_redirects (or a loop)",
    "bad_url": "not an http(s) URL the fetcher can request",
    "bad_type": "the Content-Type is not an image (text/html soft-404 pages, SVG, ...)",
    "too_large": "more bytes than images.max_bytes (declared, or counted while streaming)",
    # the bytes must not be had
    "blocked_address": "the host resolves to a private, loopback, link-local, multicast or reserved address",
    "blocked_robots": "robots.txt disallows the URL for the omnicorpus user agent (or could not be read)",
    "opted_out": "X-Robots-Tag: noai / noimageai, or tdm-reservation: 1",
    # judged before fetching, from the HTML
    "banned_url": "the URL path contains a word of images.url_ban_words (logo, icon, ...)",
    "declared_too_small": "the HTML width or height attribute is below images.min_side_px",
    # judged from the bytes
    "decode_error": "Pillow cannot open or fully decode the bytes (corrupt, truncated, zero-sized)",
    "bad_format": "a format outside images.formats",
    "too_many_pixels": "more than images.max_pixels pixels or a side above images.max_side_px "
                       "(decompression-bomb guard)",
    "too_small": "the shorter side is below images.min_side_px",
    "bad_aspect": "width/height outside [1/images.max_aspect_ratio, images.max_aspect_ratio]",
}

# Statuses that say nothing about the picture itself: with images.keep_unresolved the slot stays.
UNRESOLVED = frozenset({"not_fetched", "not_found", "http_4xx", "http_5xx", "http_other", "timeout", "connection_error",
                        "tls_error", "truncated", "too_many_redirects", "bad_url", "bad_type", "too_large"})

# Where the bytes came from (`image_info.source`).
SOURCES = ("warc", "store", "http")

# Element-level removal reasons of the images phase beyond the statuses.
DUPLICATE_IN_DOCUMENT = "duplicate_in_document"
