"""Helpers for the browser tests: run folders written from documents, a served browser, hostile documents."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from pathlib import Path
from typing import Iterator

from omnicorpus import schema
from omnicorpus.document import Document
from omnicorpus.io.parquet import file_metadata, write_documents
from tests.builders import make_document

# Every payload sets window.__pwned (or opens an alert) if it ever runs.
SCRIPT = "<script>window.__pwned = 'script'; alert(1)</script>"
ONERROR = '<img src=x onerror="window.__pwned = \'onerror\'">'
JS_URL = "javascript:window.__pwned='href';alert(2)"
ATTRIBUTE_BREAK = '" onerror="window.__pwned=\'alt\'" data-x="'


def write_run(folder: Path, kept: list[Document], rejected: list[Document],
              signal_fields: dict[str, str] | None = None, config: dict | None = None) -> Path:
    """An output folder in the run layout (shards/, rejects/, stats.json, run.json, _SUCCESS)."""
    arrow_schema = schema.document_schema(signal_fields or {})
    metadata = file_metadata("test", "test")
    (folder / "shards").mkdir(parents=True)
    (folder / "rejects").mkdir()
    if kept:
        write_documents(folder / "shards" / "shard-00000.parquet", kept, arrow_schema, metadata=metadata)
    if rejected:
        write_documents(folder / "rejects" / "unit-a.parquet", rejected, arrow_schema, metadata=metadata)
    dropped: dict[str, int] = {}
    for document in rejected:
        dropped[document.drop_reason] = dropped.get(document.drop_reason, 0) + 1
    total = len(kept) + len(rejected)
    stats = {"units": 1, "funnel": {"input": total, "kept": len(kept), "dropped": dropped},
             "stages": {"read": {"input": total, "kept": len(kept), "dropped": dropped, "removed_elements": {}}}}
    (folder / "stats.json").write_text(json.dumps(stats))
    (folder / "run.json").write_text(json.dumps({"config_source": "test", "config": config or {}, "inputs": []}))
    (folder / "_SUCCESS").write_text("")
    return folder


def hostile_documents(png: bytes) -> tuple[Document, Document]:
    """A kept and a rejected document whose every string field tries to run script."""
    kept = make_document(f"Intro {SCRIPT} and {ONERROR}", f"img:{JS_URL}", f"Middle {SCRIPT}",
                         "img:https://example.org/cat.png", "img:https://example.org/fake.png", f"End {ONERROR}",
                         url=JS_URL, doc_id="0badc0de0badc0de0badc0de", title=f"Title {SCRIPT}", language="en")
    kept.domain = f"evil.example {ONERROR}"
    kept.image_info[1].update(alt=f"{ATTRIBUTE_BREAK} {SCRIPT}", title=ONERROR, status="not_fetched")
    kept.image_info[3].update(alt=ATTRIBUTE_BREAK, status="ok", width=200, height=160, format="png")
    kept.image_bytes[3] = png
    # Bytes that claim to be an image but are HTML: the server must not send them as anything a page runs.
    kept.image_info[4].update(alt=ATTRIBUTE_BREAK, status="ok", width=10, height=10, format='png"><script>')
    kept.image_bytes[4] = f"<html>{SCRIPT}</html>".encode()
    kept.removed.append({"position": 2, "kind": "text", "reason": f"filter.x {SCRIPT}", "text": f"gone {ONERROR}",
                         "image_url": None})
    rejected = make_document(f"Rejected {SCRIPT}", url=f"https://example.org/?q={SCRIPT}",
                             doc_id="0badc0de0badc0de0badc0df", title=ONERROR, drop_reason="read.duplicate_capture",
                             error=f"Traceback {SCRIPT}")
    return kept, rejected


@contextlib.contextmanager
def serving(folders: list[Path], labels: Path | None) -> Iterator[str]:
    """A browse server on 127.0.0.1 and a free port, in a thread; yields its base URL."""
    from omnicorpus.browse.server import make_server

    server = make_server([str(folder) for folder in folders], port=0, labels_path=labels)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def raw_request(base_url: str, target: str, method: str = "GET", headers: dict | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """Send a request target exactly as given (no normalisation of ../ or //, unlike a browser)."""
    host, port = base_url.split("//")[1].rstrip("/").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        all_headers = {"Host": f"{host}:{port}", **(headers or {})}
        if body is not None:
            all_headers["Content-Length"] = str(len(body))
        for name, value in all_headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
