"""The HTTP side of `omnicorpus browse`: routes, safety checks and headers, on the standard library's server.

Safety, in the order a request meets it:
- the request target must be a plain path: no `.`/`..` segments, no empty segment (an absolute path inside a
  route), no encoded `/` or `\\`, no NUL, before or after percent-decoding;
- the Host header must name this server when it listens on loopback (a DNS-rebinding page cannot reach it);
- a POST must carry the server's form token and, when the browser sends one, a matching Origin;
- raw files are served only from under an opened output folder, resolved (symlinks too) and checked;
- every response carries a CSP that allows no script at all, `nosniff`, no referrer and no framing.
"""

from __future__ import annotations

import io
import ipaddress
import json
import logging
import secrets
import shutil
import socket
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import pyarrow.parquet as pq

from omnicorpus import schema
from omnicorpus.browse import pages
from omnicorpus.browse.data import STATUSES, Catalog, NotFound, QueryError, Run, SampleQuery
from omnicorpus.browse.labels import (LABELS, DEFAULT_FILE, LabelError, LabelStore, export_jsonl, export_table,
                                      false_positive_csv, false_positive_table)

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src 'self'; style-src 'self'; form-action 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no referrer to other sites; same-origin keeps a real Origin on forms
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
}
MAX_FORM_BYTES = 64 * 1024  # a label form is a few hundred bytes
FILE_CHUNK_BYTES = 1024 * 1024
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"style.css": "text/css; charset=utf-8"}
# Image types a browser shows, recognised by their first bytes (the stored `format` is not trusted).
IMAGE_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
                    (b"GIF89a", "image/gif"), (b"BM", "image/bmp"))


class Refused(Exception):
    """A request that is not allowed (HTTP 403 or 400), with the reason shown to the client."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None  # sent instead of `body`, in chunks (a shard can be hundreds of MB)


def image_type(data: bytes) -> str | None:
    for signature, content_type in IMAGE_SIGNATURES:
        if data.startswith(signature):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "image/avif"
    return None


def path_segments(target: str) -> list[str]:
    """The decoded segments of a request target's path, or Refused for anything that could leave a route."""
    if not target.startswith("/") or target.startswith("//"):
        raise Refused(HTTPStatus.BAD_REQUEST, "the request target must be a path starting with a single /")
    raw = urlsplit(target).path
    segments = raw.split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()  # "/run/0/" is "/run/0"
    decoded = []
    for segment in segments:
        text = unquote(segment)
        if text in ("", ".", "..") or any(char in text for char in "/\\\x00"):
            raise Refused(HTTPStatus.FORBIDDEN, "refused: relative (..), absolute or encoded paths are not served")
        decoded.append(text)
    return decoded


class LabelBook:
    """Where each run's labels go: OUT/labels.sqlite, or one file for all runs given by --labels."""

    def __init__(self, runs: list[Run], path: str | Path | None):
        shared = LabelStore(path) if path is not None else None
        self.stores = {run.index: shared or LabelStore(run.root / DEFAULT_FILE) for run in runs}

    def store(self, run: Run) -> LabelStore:
        return self.stores[run.index]

    def all(self, runs: list[Run]):
        """Every label of the opened stores, with the open run it belongs to (None if that run is not open)."""
        by_root = {str(run.root): run for run in runs}
        seen, rows = set(), []
        for store in self.stores.values():
            if store.path in seen:
                continue
            seen.add(store.path)
            rows += [(label, by_root.get(label.run)) for label in store.all()]
        return rows


class Browser:
    """The application: maps (method, path, parameters) to a Response. Knows nothing about sockets."""

    def __init__(self, folders: list[str | Path], labels_path: str | Path | None = None):
        self.catalog = Catalog(folders)
        self.runs = self.catalog.runs
        self.labels = LabelBook(self.runs, labels_path)
        self.form_token = secrets.token_urlsafe(24)
        threading.Thread(target=self._compute_overviews, daemon=True, name="overviews").start()
        self._routes: list[tuple[str, tuple[str, ...], Callable[..., Response]]] = [
            ("GET", (), self.index),
            ("GET", ("static", "*"), self.static),
            ("GET", ("favicon.ico",), lambda params, form: Response(HTTPStatus.NO_CONTENT, b"")),
            ("GET", ("labels",), self.labels_view),
            ("GET", ("labels", "*"), self.labels_export),
            ("GET", ("compare",), self.compare),
            ("GET", ("run", "*"), self.overview),
            ("GET", ("run", "*", "samples"), self.samples),
            ("GET", ("run", "*", "doc", "*"), self.document),
            ("POST", ("run", "*", "doc", "*", "label"), self.label),
            ("GET", ("run", "*", "image", "*", "*"), self.image),
            ("GET", ("run", "*", "file", "**"), self.file),
        ]

    def _compute_overviews(self) -> None:
        """Compute the overviews now, in the background: on a large run the first one takes seconds."""
        for run in self.runs:
            try:
                self.catalog.overview(run)
            except Exception:  # the page that needs it will show the error
                log.exception("cannot compute the overview of %s", run.root)

    def handle(self, method: str, segments: list[str], params: dict[str, str], form: dict[str, str]) -> Response:
        for route_method, pattern, handler in self._routes:
            arguments = _match(pattern, segments)
            if arguments is not None and route_method == method:
                return handler(*arguments, params=params, form=form)
        return self.error_response(HTTPStatus.NOT_FOUND, "no such page")

    # -- helpers -------------------------------------------------------------------------------------

    def _html(self, title: str, body, current: Run | None = None, status: int = 200) -> Response:
        return Response(status, pages.page(title, body, self.runs, current), headers={"Cache-Control": "no-store"})

    def error_response(self, status: int, message: str) -> Response:
        return self._html(str(status), pages.error_page(status, message), status=status)

    def _run(self, text: str) -> Run:
        if not text.isdigit():
            raise NotFound(f"no run {text!r}")
        return self.catalog.run(int(text))

    # -- pages ---------------------------------------------------------------------------------------

    def index(self, params, form) -> Response:
        overviews = [self.catalog.overview(run) for run in self.runs]
        return self._html("runs", pages.index_page(self.runs, overviews))

    def overview(self, run_text, params, form) -> Response:
        run = self._run(run_text)
        body = pages.overview_page(run, self.catalog.overview(run), _unit_stats(run))
        return self._html(f"{run.name}: overview", body, run)

    def samples(self, run_text, params, form) -> Response:
        run = self._run(run_text)
        if not params.get("seed"):
            # Every sample page has a seed in its address, so the link reproduces it.
            query = SampleQuery.from_params(params, run, default_seed=secrets.randbelow(1_000_000))
            return Response(HTTPStatus.SEE_OTHER, b"", headers={
                "Location": pages.run_url(run, "samples", params=query.to_params())})
        query = SampleQuery.from_params(params, run, 0)
        results = [self.catalog.samples(run, query, status) for status in STATUSES]
        return self._html(f"{run.name}: samples",
                          pages.samples_page(run, self.catalog.overview(run), query, results), run)

    def document(self, run_text, document_id, params, form) -> Response:
        run = self._run(run_text)
        document = self.catalog.document(run, document_id)
        label = self.labels.store(run).get(run=str(run.root), document_id=document_id)
        body = pages.document_page(run, document, label, self.form_token, sorted(schema.drop_reasons()))
        return self._html(document.get("title") or document_id, body, run)

    def label(self, run_text, document_id, params, form) -> Response:
        if not secrets.compare_digest(form.get("token", ""), self.form_token):
            raise Refused(HTTPStatus.FORBIDDEN, "refused: the form token is missing or stale; reload the page")
        run = self._run(run_text)
        document = self.catalog.document(run, document_id)
        store = self.labels.store(run)
        verdict = form.get("label", "")
        if verdict == "clear":
            store.delete(run=str(run.root), document_id=document_id)
        elif verdict in LABELS:
            store.put(run=str(run.root), document=document, label=verdict, note=form.get("note", ""),
                      rule=form.get("rule", ""))
        else:
            raise QueryError(f"label must be one of {LABELS} or clear, got {verdict!r}")
        return Response(HTTPStatus.SEE_OTHER, b"", headers={"Location": pages.document_url(run, document_id)})

    def image(self, run_text, document_id, slot_text, params, form) -> Response:
        run = self._run(run_text)
        if not slot_text.isdigit():
            raise QueryError(f"slot must be a number, got {slot_text!r}")
        data = self.catalog.image_bytes(run, document_id, int(slot_text))
        if not data:
            return Response(HTTPStatus.NOT_FOUND, b"no image bytes stored at this slot", "text/plain; charset=utf-8")
        content_type = image_type(data)
        if content_type is None:
            return Response(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"not an image type a browser shows",
                            "text/plain; charset=utf-8")
        return Response(HTTPStatus.OK, data, content_type, {"Cache-Control": "private, max-age=3600"})

    def file(self, run_text, *parts, params, form) -> Response:
        """A file of the run (run.json, stats, a shard) — only from under the run's folder."""
        run = self._run(run_text)
        target = (run.root / Path(*parts)).resolve()
        if not target.is_relative_to(run.root) or target == run.root:
            raise Refused(HTTPStatus.FORBIDDEN, "refused: that path is outside the run's folder")
        if not target.is_file():
            return self.error_response(HTTPStatus.NOT_FOUND, "no such file in the run's folder")
        if target.suffix == ".json":
            return Response(HTTPStatus.OK, b"", "application/json", file=target)
        return Response(HTTPStatus.OK, b"", "application/octet-stream",
                        {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(target.name)}"}, file=target)

    def compare(self, params, form) -> Response:
        if len(self.runs) < 2:
            return self.error_response(HTTPStatus.NOT_FOUND, "open two or more runs to compare them")
        first = self._run(params.get("a", "0"))
        second = self._run(params.get("b", "1"))
        transitions, changed = self.catalog.compare(first, second)
        return self._html("compare", pages.compare_page(first, second, transitions, changed, self.runs))

    def labels_view(self, params, form) -> Response:
        rows = self.labels.all(self.runs)
        table = false_positive_table(label for label, _ in rows)
        return self._html("labels", pages.labels_page(rows, table))

    def labels_export(self, name, params, form) -> Response:
        labels = [label for label, _ in self.labels.all(self.runs)]
        if name == "export.jsonl":
            # text/plain so a browser shows it; saving the page gives labels.jsonl.
            return Response(HTTPStatus.OK, export_jsonl(labels), "text/plain; charset=utf-8",
                            {"Content-Disposition": "inline; filename=labels.jsonl"})
        if name == "export.parquet":
            buffer = io.BytesIO()
            pq.write_table(export_table(labels), buffer)
            return Response(HTTPStatus.OK, buffer.getvalue(), "application/octet-stream",
                            {"Content-Disposition": "attachment; filename=labels.parquet"})
        if name == "false-positives.csv":
            return Response(HTTPStatus.OK, false_positive_csv(false_positive_table(labels)).encode(),
                            "text/csv; charset=utf-8", {"Content-Disposition": "inline; filename=false-positives.csv"})
        return self.error_response(HTTPStatus.NOT_FOUND, "no such export")

    def static(self, name, params, form) -> Response:
        if name not in STATIC_FILES:
            return self.error_response(HTTPStatus.NOT_FOUND, "no such file")
        return Response(HTTPStatus.OK, (STATIC / name).read_bytes(), STATIC_FILES[name],
                        {"Cache-Control": "max-age=300"})


def _match(pattern: tuple[str, ...], segments: list[str]) -> list[str] | None:
    """Match segments against a pattern of literals, `*` (one segment) and a final `**` (one or more)."""
    if pattern and pattern[-1] == "**":
        if len(segments) < len(pattern):
            return None
        head, tail = segments[:len(pattern) - 1], segments[len(pattern) - 1:]
        arguments = _match(pattern[:-1], head)
        return None if arguments is None else arguments + tail
    if len(pattern) != len(segments):
        return None
    arguments = []
    for part, segment in zip(pattern, segments):
        if part == "*":
            arguments.append(segment)
        elif part != segment:
            return None
    return arguments


def _unit_stats(run: Run) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((run.root / "stats").glob("*.json"))]


# ---------------------------------------------------------------------------------------------------------
# The server.


class BrowseServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: Browser):
        self.app = app
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)
        host, port = self.server_address[:2]
        self.allowed_hosts = _allowed_hosts(address[0], port)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _allowed_hosts(host: str, port: int) -> set[str] | None:
    """Host header values accepted on loopback; None (no check) when the user chose another interface."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        return None
    return {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]", host)}


class RequestHandler(BaseHTTPRequestHandler):
    server: BrowseServer
    server_version = "omnicorpus-browse"
    sys_version = ""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        app = self.server.app
        try:
            self._check_host()
            segments = path_segments(self.path)
            params = dict(parse_qsl(urlsplit(self.path).query))
            form = self._read_form() if method == "POST" else {}
            response = app.handle(method, segments, params, form)
        except Refused as refused:
            response = app.error_response(refused.status, str(refused))
        except NotFound as missing:
            response = app.error_response(HTTPStatus.NOT_FOUND, str(missing))
        except (QueryError, LabelError) as error:
            response = app.error_response(HTTPStatus.BAD_REQUEST, str(error))
        except Exception:  # a bug or a broken file must not kill the server; the log has the trace
            log.exception("error serving %s %s", method, self.path)
            response = app.error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error; see the server's log")
        self._send(response)

    def _check_host(self) -> None:
        allowed = self.server.allowed_hosts
        if allowed is not None and self.headers.get("Host", "") not in allowed:
            raise Refused(HTTPStatus.FORBIDDEN, "refused: unexpected Host header")

    def _read_form(self) -> dict[str, str]:
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{self.headers.get('Host', '')}":
            raise Refused(HTTPStatus.FORBIDDEN, "refused: the form came from another site")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM_BYTES:
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "form too large")
        return dict(parse_qsl(self.rfile.read(length).decode("utf-8", "replace")))

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        length = response.file.stat().st_size if response.file is not None else len(response.body)
        headers = {**SECURITY_HEADERS, "Content-Type": response.content_type, "Content-Length": str(length),
                   **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if response.file is None:
            self.wfile.write(response.body)
            return
        with response.file.open("rb") as source:
            shutil.copyfileobj(source, self.wfile, FILE_CHUNK_BYTES)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        log.debug("%s %s", self.address_string(), format % args)


def make_server(folders: list[str | Path], host: str = "127.0.0.1", port: int = 0,
                labels_path: str | Path | None = None) -> BrowseServer:
    return BrowseServer((host, port), Browser(folders, labels_path))
