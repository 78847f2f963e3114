"""Tiny builders for tests: documents from a compact description, WARC files from (url, body) records."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterable

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from omnicorpus.document import Document, document_id, new_image_info

# Config overrides that switch every text filter off: for tests about extraction, images or shards that use
# pages the filters would rightly drop (a product grid, a synthetic page repeating one sentence).
NO_TEXT_FILTERS = {f"filter.{section}.enabled": False for section in (
    "language", "gopher_quality", "gopher_repetition", "c4", "paragraph_language", "paragraphs", "document",
    "classifier")}

# Ten distinct, ordinary English sentences (about 150 words): passes every rule on its own.
SENTENCES = [
    "The museum opened its new wing to visitors on a rainy Saturday morning in early spring.",
    "Curators spent three years restoring the paintings that had been stored in the basement.",
    "Each room follows a single theme, from early portraits to landscapes of the northern coast.",
    "A small cafe near the entrance serves coffee and cakes baked by a family from the village.",
    "School groups can book a guided tour that lasts about an hour and ends in the workshop.",
    "The director said that the collection would travel to two other cities later this year.",
    "Several works were lent by private owners who asked that their names not be published.",
    "Visitors with a yearly pass may enter through the side door without waiting in line.",
    "The building itself was designed by an architect who grew up only a few streets away.",
    "On Friday evenings the galleries stay open late and local musicians play in the courtyard.",
]


def make_document(*slots: str, url: str = "https://example.org/page", doc_id: str | None = None,
                  **fields) -> Document:
    """`make_document("First paragraph.", "img:https://example.org/a.jpg", "More text.")`.

    A slot starting with "img:" is an image; anything else a text block. Extra keyword arguments set fields.
    """
    document = Document(id=doc_id or document_id(url), url=url, domain="example.org", **fields)
    for slot in slots:
        if slot.startswith("img:"):
            document.append_image(slot[4:], new_image_info(status="not_fetched"))
        else:
            document._append_slot(slot, None, None, None)  # raw: lets tests build invalid documents too
    return document


def html_page(title: str, *blocks: str) -> str:
    """An article page: blocks are paragraphs, or `<img ...>` / other HTML passed through when they start with <."""
    body = "\n".join(block if block.startswith("<") else f"<p>{block}</p>" for block in blocks)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body><nav><a href='/'>Home</a> <a href='/about'>About</a></nav>"
            f"<article><h1>{title}</h1>{body}</article><footer>Copyright 2024 Example</footer></body></html>")


def make_warc(path: Path, records: Iterable[dict], gzip: bool = True, version: str = "WARC/1.0") -> Path:
    """Write a WARC. Each record: {"url", "body": bytes|str, "content_type": ..., "status": 200,
    "type": "response"|"resource"|"request"|"revisit", "headers": {...extra http headers}, "date": ...}.
    """
    buffer = io.BytesIO()
    writer = WARCWriter(buffer, gzip=gzip, warc_version="1.0" if version.startswith("WARC/0") else version)
    for record in records:
        body = record.get("body", b"")
        body = body.encode(record.get("encoding", "utf-8")) if isinstance(body, str) else body
        kind = record.get("type", "response")
        warc_headers = {"WARC-Date": record.get("date", "2024-01-01T00:00:00Z"), **record.get("warc_headers", {})}
        http_headers = None
        if kind in ("response", "revisit"):
            status = record.get("status", 200)
            header_list = [("Content-Type", record.get("content_type", "text/html; charset=utf-8"))]
            header_list += list(record.get("headers", {}).items())
            http_headers = StatusAndHeaders(f"{status} OK", header_list, protocol="HTTP/1.1")
        built = writer.create_warc_record(
            record["url"], kind, payload=io.BytesIO(body), http_headers=http_headers,
            warc_content_type=record.get("warc_content_type"), warc_headers_dict=warc_headers,
        )
        writer.write_record(built)
    data = buffer.getvalue()
    if version.startswith("WARC/0"):
        if gzip:
            raise ValueError("old WARC versions are written uncompressed by this builder")
        data = data.replace(b"WARC/1.0\r\n", f"{version}\r\n".encode())
    path.write_bytes(data)
    return path

