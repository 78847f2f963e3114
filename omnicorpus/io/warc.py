"""Reading WARC files with warcio: HTML pages become `RawPage`s, image responses become `ImageRecord`s.

Handles `.warc` and `.warc.gz` (and ARC through warcio's conversion), WARC/1.0, 1.1 and the old 0.17/0.18,
chunked transfer encoding and content encodings (warcio decodes both), revisit records (resolved by
re-reading the original when it is in the same file), and truncated files: records before the cut are
read normally, the cut record becomes an error page, and reading stops there instead of raising.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator
from urllib.parse import unquote

from warcio.archiveiterator import ArchiveIterator

from omnicorpus.document import Document, document_id
from omnicorpus.io.paths import open_input

log = logging.getLogger(__name__)

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", "application/vnd.wap.xhtml+xml"})
# Content types that say nothing about the payload: sniff the bytes instead.
SNIFF_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "unknown/unknown", "text/plain",
                         "application/unknown", "application/x-unknown-content-type", "no-type"})
_HTML_START = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)[\s>]",
                         re.IGNORECASE | re.DOTALL)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
_CRAWL_NAME = re.compile(r"CC-MAIN-\d{4}-\d{2}")


@dataclass(frozen=True, kw_only=True)
class ReadConfig:
    # HTML payloads above this are dropped with read.too_large; Common Crawl itself truncates at 1 MiB.
    max_payload_bytes: int = 10 * 1024 * 1024
    # Image responses above this are not indexed (OBELICS/img2dataset-scale images are far smaller).
    max_image_bytes: int = 20 * 1024 * 1024
    index_images: bool = True
    # Where relative lines of a Common Crawl warc.paths.gz list live.
    paths_prefix: str = "https://data.commoncrawl.org/"

    def __post_init__(self):
        for name in ("max_payload_bytes", "max_image_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"read.{name} must be > 0, got {getattr(self, name)}")


@dataclass
class RawPage:
    """An HTML capture as read from the WARC, before extraction."""

    url: str
    warc_file: str
    record_id: str | None
    offset: int | None
    length: int | None = None
    fetch_time: dt.datetime | None = None
    crawl: str | None = None
    http_status: int | None = None
    content_type: str | None = None  # the full HTTP Content-Type header, charset included
    payload: bytes | None = None
    problem: str | None = None  # a read.* rule: too_large, empty, http_status, revisit_unresolved
    error: str | None = None  # truncation or a broken record: becomes error.read
    revisit_of: str | None = None

    @property
    def id(self) -> str:
        return document_id(self.record_id, self.warc_file, self.offset)

    def shell_document(self) -> Document:
        """The document row for a page that never got extracted (for rejects)."""
        return Document(
            id=self.id,
            url=self.url,
            domain=registered_domain(self.url),
            crawl=self.crawl,
            fetch_time=self.fetch_time,
            warc_file=self.warc_file,
            warc_record_id=self.record_id,
            warc_offset=self.offset,
            warc_length=self.length,
        )


@dataclass
class ImageRecord:
    url: str
    data: bytes
    content_type: str | None
    record_id: str | None
    offset: int | None


@dataclass
class ReadCounts:
    """Every WARC record lands in exactly one outcome: total == sum(outcome)."""

    by_type: Counter = field(default_factory=Counter)
    outcome: Counter = field(default_factory=Counter)
    revisits: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.by_type.values())

    def to_json(self) -> dict:
        return {
            "total": self.total,
            "by_type": dict(sorted(self.by_type.items())),
            "outcome": dict(sorted(self.outcome.items())),
            "revisits": dict(sorted(self.revisits.items())),
        }


def registered_domain(url: str) -> str | None:
    from tld import get_fld  # ships its own public suffix list: no download

    domain = get_fld(url, fail_silently=True, fix_protocol=True)
    if domain:
        return domain
    match = re.match(r"^[a-z][a-z0-9+.-]*://([^/:?#]+)", url, re.IGNORECASE)
    return match.group(1).lower() if match else None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def classify_payload(content_type: str | None, head: bytes) -> str:
    """'html', 'image' or 'other', from the declared type, sniffing only when the type says nothing."""
    declared = media_type(content_type)
    if declared in HTML_TYPES:
        return "html"
    if declared.startswith("image/"):
        return "image"
    if declared in SNIFF_TYPES:
        if _HTML_START.match(head.lstrip(b"\xef\xbb\xbf")):
            return "html"
        if head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            return "image"
    return "other"


def _target_uri(record) -> str:
    return (record.rec_headers.get_header("WARC-Target-URI") or "").strip().strip("<>")


def _parse_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    value = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y%m%d%H%M%S"):
        try:
            return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
    return None


class WarcReader:
    """Iterate one WARC file: `for item in reader.read()` gives RawPage and ImageRecord items.

    `counts` accounts for every record of the file once iteration ends.
    """

    def __init__(self, path: str, config: ReadConfig):
        self.path = path
        self.config = config
        self.counts = ReadCounts()
        self.crawl = _crawl_from_name(path)
        self._originals: dict[str, int] = {}  # record id or payload digest -> offset of an html/image response

    def read(self) -> Iterator[RawPage | ImageRecord]:
        with open_input(self.path) as stream:
            records = ArchiveIterator(stream, arc2warc=True)
            while True:
                offset = _safe_offset(records)
                try:
                    record = next(records)
                except StopIteration:
                    # warcio stops quietly when the file ends inside a record's headers: check for leftovers.
                    left = _unread_bytes(stream, records)
                    if left:
                        self.counts.by_type["unreadable"] += 1
                        self.counts.outcome["error"] += 1
                        yield self._broken_page(records.offset, f"the file ends inside a record: {left} bytes "
                                                                f"after offset {records.offset} could not be read")
                    return
                except Exception as exc:  # a cut or corrupt gzip member between records
                    self.counts.by_type["unreadable"] += 1
                    self.counts.outcome["error"] += 1
                    yield self._broken_page(offset, f"{type(exc).__name__}: {exc}")
                    return
                self.counts.by_type[record.rec_type] += 1
                try:
                    item = self._read_record(record)
                    records.read_to_end(record)
                    offset, length = records.get_record_offset(), records.get_record_length()
                except Exception as exc:  # the payload's encoding is broken, or the gzip member is cut
                    self.counts.outcome["error"] += 1
                    yield self._broken_page(offset, f"{type(exc).__name__}: {exc}", record)
                    return
                if cut := _cut_message(record):
                    # A truncated record is the end of what the file holds.
                    self.counts.outcome["error"] += 1
                    page = item if isinstance(item, RawPage) else self._broken_page(offset, cut, record)
                    page.offset, page.length, page.error, page.payload, page.problem = offset, length, cut, None, None
                    yield page
                    return
                if isinstance(item, (RawPage, ImageRecord)):
                    item.offset = offset
                    if isinstance(item, RawPage):
                        item.length = length
                    self._remember_original(record, offset, item)
                    self.counts.outcome["html" if isinstance(item, RawPage) else "image"] += 1
                    yield item
                else:
                    self.counts.outcome[item] += 1

    # -- one record ----------------------------------------------------------------------------------------

    def _read_record(self, record) -> RawPage | ImageRecord | str:
        """Returns the item, or the name of the outcome for records that are not pages or images."""
        kind = record.rec_type
        if kind == "warcinfo":
            self._read_warcinfo(record)
            return "metadata"
        if kind not in ("response", "resource", "revisit"):
            return "metadata"  # request, metadata, conversion, continuation
        url = _target_uri(record)
        if url.startswith("dns:") or not url:
            return "other"
        if kind == "revisit":
            return self._read_revisit(record, url)
        content_type, status = self._http_fields(record)
        stream = record.content_stream()
        limit = max(self.config.max_payload_bytes, self.config.max_image_bytes)
        payload = stream.read(limit + 1)
        kind = classify_payload(content_type, payload[:1024])
        if kind == "image":
            if status is not None and not 200 <= status < 300:
                return "other"
            if len(payload) > self.config.max_image_bytes or not self.config.index_images:
                return "other"
            return ImageRecord(url, payload, content_type, record.rec_headers.get_header("WARC-Record-ID"), None)
        if kind != "html":
            return "other"
        page = self._page(record, url, content_type, status)
        if len(payload) > self.config.max_payload_bytes:
            page.problem = "too_large"
        elif status is not None and not 200 <= status < 300:
            page.problem = "http_status"
        elif not payload.strip():
            page.problem = "empty"
        else:
            page.payload = payload
        return page

    def _read_revisit(self, record, url: str) -> RawPage | ImageRecord | str:
        self.counts.revisits["seen"] += 1
        refers_to = record.rec_headers.get_header("WARC-Refers-To")
        digest = record.rec_headers.get_header("WARC-Payload-Digest")
        offset = self._originals.get(refers_to or "") or self._originals.get(digest or "")
        original = self._reread(offset) if offset is not None else None
        _, status = self._http_fields(record)
        if original is None:
            self.counts.revisits["unresolved"] += 1
            content_type, _ = self._http_fields(record)
            if classify_payload(content_type, b"") != "html":
                return "other"
            page = self._page(record, url, content_type, status)
            page.problem = "revisit_unresolved"
            return page
        self.counts.revisits["resolved"] += 1
        if isinstance(original, ImageRecord):
            original.url = url
            return original
        page = self._page(record, url, original.content_type, status if status is not None else original.http_status)
        page.payload, page.problem, page.error = original.payload, original.problem, original.error
        page.revisit_of = original.record_id
        if page.problem is None and page.http_status is not None and not 200 <= page.http_status < 300:
            page.problem = "http_status"
        return page

    def _reread(self, offset: int) -> RawPage | ImageRecord | None:
        """Read the original response of a revisit again from its offset (per-record gzip or plain WARC)."""
        try:
            with open_input(self.path) as stream:
                stream.seek(offset)
                record = next(iter(ArchiveIterator(stream, arc2warc=True)))
                reader = WarcReader(self.path, self.config)
                item = reader._read_record(record)
        except Exception:
            log.debug("could not re-read the original at %s@%s", self.path, offset, exc_info=True)
            return None
        return item if isinstance(item, (RawPage, ImageRecord)) else None

    def _remember_original(self, record, offset: int, item) -> None:
        if record.rec_type != "response":
            return
        for key in (record.rec_headers.get_header("WARC-Record-ID"), record.rec_headers.get_header("WARC-Payload-Digest")):
            if key:
                self._originals.setdefault(key, offset)

    def _page(self, record, url: str, content_type: str | None, status: int | None) -> RawPage:
        headers = record.rec_headers
        return RawPage(
            url=url,
            warc_file=self.path,
            record_id=headers.get_header("WARC-Record-ID"),
            offset=None,
            fetch_time=_parse_date(headers.get_header("WARC-Date")),
            crawl=self.crawl,
            http_status=status,
            content_type=content_type,
        )

    @staticmethod
    def _http_fields(record) -> tuple[str | None, int | None]:
        if record.http_headers is not None and record.rec_type in ("response", "revisit"):
            status_line = record.http_headers.get_statuscode()
            status = int(status_line) if status_line and status_line.isdigit() else None
            return record.http_headers.get_header("Content-Type"), status
        return record.rec_headers.get_header("Content-Type"), None

    def _read_warcinfo(self, record) -> None:
        text = record.content_stream().read(65536).decode("utf-8", "replace")
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "ispartof" and value.strip():
                self.crawl = unquote(value.strip())

    def _broken_page(self, offset: int | None, message: str, record=None) -> RawPage:
        url = _target_uri(record) if record is not None else ""
        page = RawPage(
            url=url or f"{self.path}@{offset}",
            warc_file=self.path,
            record_id=record.rec_headers.get_header("WARC-Record-ID") if record is not None else None,
            offset=offset,
            crawl=self.crawl,
            error=message,
        )
        return page


def _cut_message(record) -> str | None:
    """warcio returns a cut record without complaint; the bytes it still owes tell us."""
    owed = getattr(record.raw_stream, "limit", 0)
    if owed:
        return f"record truncated: {owed} of {record.length} bytes missing from the file"
    return None


def _unread_bytes(stream, records: ArchiveIterator) -> int:
    try:
        stream.seek(0, 2)
        return max(0, stream.tell() - records.offset)
    except Exception:  # a stream that cannot seek: nothing more to learn
        return 0


def _safe_offset(records: ArchiveIterator) -> int | None:
    try:
        return records.offset
    except Exception:
        return None


def _crawl_from_name(path: str) -> str | None:
    match = _CRAWL_NAME.search(path)
    return match.group(0) if match else None
