"""Configuration of the images phase (`[images]`) and the corpus-level frequency cap (`[image_frequency]`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

MiB = 1024 * 1024
# Formats Pillow reports that we keep; animated GIF and WebP are judged (and hashed) by their first frame.
FORMATS = ("jpeg", "png", "webp", "gif", "bmp", "tiff")
RESIZE_FORMATS = ("jpeg", "webp", "png")
FREQUENCY_KEYS = ("phash", "dhash", "sha256", "url")


@dataclass(frozen=True, kw_only=True)
class ImagesConfig:
    # false leaves out the images and image_frequency phases: image slots stay URLs with status not_fetched.
    enabled: bool = True
    # -- where bytes come from, in this order --------------------------------------------------------
    resolve_from_warc: bool = True
    # A local image store (docs/images.md): a folder of files named by sha256(url) (OmniCorpus layout, with
    # or without an extension) or a folder of Parquet files with `url` and `data` columns. "" = none.
    store: str = ""
    # Fetch what neither the WARC nor the store holds. Our shards carry the bytes by default (issue 4).
    fetch: bool = True

    # -- the HTTP fetcher ----------------------------------------------------------------------------
    # img2dataset runs 128-256 connections per process; 64 keeps one asyncio loop below one core.
    fetch_concurrency: int = 64
    # Per host, across the whole run (URLs are split between fetch tasks by host); per-host limits are part of
    # responsible fetching (anchors §8.11). 4 is our choice: a browser opens 6 per host.
    fetch_per_host: int = 4
    connect_timeout_s: float = 10.0  # mmc4's download script uses 10 s
    read_timeout_s: float = 10.0  # longest silence between two reads of a body
    # One attempt, redirects and robots.txt included: what ends a slow trickle. Our choice: 3x read_timeout_s.
    total_timeout_s: float = 30.0
    # Retries for transient failures only (connection errors, timeouts, 408, 429, 5xx), backoff doubling from
    # backoff_s; datatrove's HTTPFetchReader retries 408/429/5xx with exponential back-off too (anchors §4.1).
    retries: int = 2
    backoff_s: float = 1.0
    max_redirects: int = 5  # RFC 9309 asks robots.txt fetchers to follow at least five
    # Bodies above this are cut off while streaming (never trusting Content-Length); read.max_image_bytes.
    max_bytes: int = 20 * MiB
    # "" = "omnicorpus/<version> (...)"; set a contact URL or e-mail for large crawls.
    user_agent: str = ""
    obey_robots: bool = True  # robots.txt (RFC 9309) for the "omnicorpus" product token
    obey_noai: bool = True  # X-Robots-Tag: noai / noimageai and tdm-reservation: 1 (anchors §8.11)
    # Networks the SSRF guard lets through although they are private, loopback, link-local, multicast or
    # reserved, e.g. ["127.0.0.1/32"] for a test server. Empty: every such address is refused.
    fetch_allow_networks: tuple[str, ...] = ()

    # -- validation and filters ------------------------------------------------------------------------
    formats: tuple[str, ...] = ("jpeg", "png", "webp", "gif")  # OBELICS: jpg, jpeg, png, webp; issue 4 adds gif
    min_side_px: int = 150  # OmniCorpus, OBELICS and mmc4: width and height >= 150 px
    max_side_px: int = 20_000  # OBELICS: width and height <= 20000 px
    max_aspect_ratio: float = 2.0  # OmniCorpus and mmc4: aspect ratio within [0.5, 2]
    # Decompression-bomb guard: images declaring more pixels are refused before decoding.
    max_pixels: int = 89_478_485  # Pillow's own default MAX_IMAGE_PIXELS (~ 0.25 GB of RGBA)
    # Substrings of the URL path that mark decoration, not content (mmc4 §3; OBELICS adds porn, xxx, sex).
    url_ban_words: tuple[str, ...] = ("logo", "button", "icon", "plugin", "widget")
    # Drop images whose HTML width/height attributes are below min_side_px before fetching (OBELICS rendered
    # size filter).
    declared_size_filter: bool = True

    # -- what is stored -------------------------------------------------------------------------------
    # Re-encode images whose longer side exceeds this many pixels, resized to it (0 = store original bytes;
    # mmc4 resized to 800 px).
    resize_max_side_px: int = 0
    resize_format: str = "jpeg"
    resize_quality: int = 90

    # -- document consequences -------------------------------------------------------------------------
    # Keep image slots whose bytes could not be had (not fetched, 404, timeout, ...) with their status and
    # no bytes, instead of removing them. Content verdicts (too small, undecodable, opted out) always remove.
    keep_unresolved: bool = False
    # Documents left with fewer image slots are dropped (OBELICS: 1 to 30 images; OmniCorpus drops pages
    # without images).
    min_images: int = 1

    def __post_init__(self):
        positive = ("fetch_concurrency", "fetch_per_host", "connect_timeout_s", "read_timeout_s", "total_timeout_s",
                    "max_bytes", "min_side_px", "max_side_px", "max_pixels")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"images.{name} must be > 0, got {getattr(self, name)}")
        for name in ("retries", "backoff_s", "max_redirects", "resize_max_side_px", "min_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"images.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_aspect_ratio < 1:
            raise ValueError(f"images.max_aspect_ratio must be >= 1 (it bounds both w/h and h/w), "
                             f"got {self.max_aspect_ratio}")
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise ValueError(f"images.formats must be a non-empty list of {FORMATS}, got {list(self.formats)}")
        if self.resize_format not in RESIZE_FORMATS:
            raise ValueError(f"images.resize_format must be one of {RESIZE_FORMATS}, got {self.resize_format!r}")
        if not 1 <= self.resize_quality <= 100:
            raise ValueError(f"images.resize_quality must be in [1, 100], got {self.resize_quality}")
        for network in self.fetch_allow_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"images.fetch_allow_networks: {network!r} is not an IP network "
                                 "such as 127.0.0.1/32 or 10.0.0.0/8") from None


@dataclass(frozen=True, kw_only=True)
class ImageFrequencyConfig:
    enabled: bool = True
    # Images in more than this many documents of the run are removed everywhere (OmniCorpus and OBELICS: 10).
    max_documents: int = 10
    # What makes two images "the same": perceptual hashes (OmniCorpus, mmc4 use pHash), bytes or URL (OBELICS).
    key: str = "phash"

    def __post_init__(self):
        if self.max_documents < 1:
            raise ValueError(f"image_frequency.max_documents must be >= 1, got {self.max_documents}")
        if self.key not in FREQUENCY_KEYS:
            raise ValueError(f"image_frequency.key must be one of {FREQUENCY_KEYS}, got {self.key!r}")
