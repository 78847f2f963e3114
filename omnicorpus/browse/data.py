"""The opened runs and every query the browser makes, run by DuckDB on the Parquet files in place.

Each run gets a view over its `shards/*.parquet` (status `kept`) and `rejects/*.parquet` (status `rejected`)
that leaves out `image_bytes`, so listing, counting and rendering never read pixels; one image is read by its
own query when the page shows it. DuckDB is locked down when the runs are open: it may read only files under
the opened folders, installs and loads no extension, and nothing can change those settings afterwards.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from omnicorpus import schema

log = logging.getLogger(__name__)

PAGE_SIZE = 20  # sample cards per column and page
SNIPPET_CHARS = 280  # text shown on a sample card
TOP_DOMAINS = 15  # rows of the domain chart
LOCATIONS_REMEMBERED = 10_000  # document id -> (file, row) pairs kept for the image requests of a page
# Bucket edges of the histograms; the last bucket is open-ended.
IMAGE_BUCKETS = (0, 1, 2, 3, 4, 5, 10, 20, 50)
TEXT_CHAR_BUCKETS = (0, 100, 300, 1_000, 3_000, 10_000, 30_000, 100_000)

STATUSES = ("kept", "rejected")
NO_VALUE = "(none)"  # how a missing language or domain is shown and filtered

_TEXT_CHARS_SQL = "coalesce(list_sum(list_transform(texts, lambda t: length(t))), 0)"


class QueryError(ValueError):
    """A request gave a value that cannot be used."""


class NotFound(QueryError):
    """A request asked for a run or a document that does not exist."""


@dataclass(frozen=True)
class Run:
    """One opened output folder."""

    index: int
    root: Path
    shards: tuple[Path, ...]
    rejects: tuple[Path, ...]
    stats: dict[str, Any] | None
    run_info: dict[str, Any] | None
    signal_types: Mapping[str, pa.DataType]  # every declared signal field with its Arrow type

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def view(self) -> str:
        return f"docs_{self.index}"

    @property
    def complete(self) -> bool:
        return (self.root / "_SUCCESS").exists()

    @property
    def numeric_signals(self) -> list[str]:
        return [name for name, kind in self.signal_types.items()
                if pa.types.is_integer(kind) or pa.types.is_floating(kind)]


def open_run(index: int, folder: str | Path) -> Run:
    root = Path(folder).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    shards = tuple(sorted((root / "shards").glob("*.parquet")))
    rejects = tuple(sorted((root / "rejects").glob("*.parquet")))
    if not shards and not rejects:
        raise FileNotFoundError(f"{folder} holds no run output: no Parquet files in shards/ or rejects/")
    first = (shards or rejects)[0]
    return Run(
        index=index,
        root=root,
        shards=shards,
        rejects=rejects,
        stats=_read_json(root / "stats.json"),
        run_info=_read_json(root / "run.json"),
        signal_types=schema.signal_fields_of(pq.read_schema(first)),
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _file_list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join(_sql_string(str(path)) for path in paths) + "]"


# ---------------------------------------------------------------------------------------------------------
# Sample queries: filters from the page's query string, and back.


@dataclass(frozen=True)
class SampleQuery:
    """The filters of the samples page. `reason` narrows the rejected column only."""

    seed: int
    page: int = 0
    language: str = ""
    domain: str = ""
    url: str = ""
    text: str = ""
    reason: str = ""
    min_images: int | None = None
    max_images: int | None = None
    signal_ranges: tuple[tuple[str, float | None, float | None], ...] = ()

    @classmethod
    def from_params(cls, params: Mapping[str, str], run: Run, default_seed: int) -> "SampleQuery":
        ranges = []
        for name in run.numeric_signals:
            low = _number(params, f"min.{name}", float)
            high = _number(params, f"max.{name}", float)
            if low is not None or high is not None:
                ranges.append((name, low, high))
        return cls(
            seed=_number(params, "seed", int) if params.get("seed") else default_seed,
            page=max(_number(params, "page", int) or 0, 0),
            language=params.get("language", "").strip(),
            domain=params.get("domain", "").strip(),
            url=params.get("url", "").strip(),
            text=params.get("q", "").strip(),
            reason=params.get("reason", "").strip(),
            min_images=_number(params, "min_images", int),
            max_images=_number(params, "max_images", int),
            signal_ranges=tuple(ranges),
        )

    def to_params(self) -> list[tuple[str, str]]:
        """The query string that reproduces this sample (seed included)."""
        params = [("seed", str(self.seed))]
        for key, value in (("language", self.language), ("domain", self.domain), ("url", self.url),
                           ("q", self.text), ("reason", self.reason), ("min_images", self.min_images),
                           ("max_images", self.max_images)):
            if value not in ("", None):
                params.append((key, str(value)))
        for name, low, high in self.signal_ranges:
            if low is not None:
                params.append((f"min.{name}", f"{low:g}"))
            if high is not None:
                params.append((f"max.{name}", f"{high:g}"))
        if self.page:
            params.append(("page", str(self.page)))
        return params

    def with_page(self, page: int) -> "SampleQuery":
        return replace(self, page=page)

    def where(self, status: str) -> tuple[str, list[Any]]:
        clauses, values = ["status = ?"], [status]
        if self.language:
            clauses.append("language IS NULL" if self.language == NO_VALUE else "language = ?")
            values += [] if self.language == NO_VALUE else [self.language]
        if self.domain:
            clauses.append("domain IS NULL" if self.domain == NO_VALUE else "domain = ?")
            values += [] if self.domain == NO_VALUE else [self.domain]
        if self.url:
            clauses.append("contains(lower(url), lower(?))")
            values.append(self.url)
        for word in self.text.split():
            # Full-text search without an index: every word must occur in some text block, in any case.
            # A case-insensitive regular expression on each block was the fastest form measured.
            clauses.append("list_bool_or(list_transform(texts, lambda t: regexp_matches(t, ?)))")
            values.append("(?i)" + re.escape(word))
        if self.reason and status == "rejected":
            clauses.append("drop_reason = ?")
            values.append(self.reason)
        if self.min_images is not None:
            clauses.append("list_count(images) >= ?")
            values.append(self.min_images)
        if self.max_images is not None:
            clauses.append("list_count(images) <= ?")
            values.append(self.max_images)
        for name, low, high in self.signal_ranges:
            column = f"signals.{_identifier(name)}"
            if low is not None:
                clauses.append(f"{column} >= ?")
                values.append(low)
            if high is not None:
                clauses.append(f"{column} <= ?")
                values.append(high)
        return " AND ".join(clauses), values


def _number(params: Mapping[str, str], key: str, kind: type):
    text = params.get(key, "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise QueryError(f"{key} must be a number, got {text!r}") from None


@dataclass(frozen=True)
class SampleCard:
    id: str
    url: str | None
    domain: str | None
    title: str | None
    language: str | None
    status: str
    drop_reason: str | None
    image_count: int
    text_chars: int
    snippet: str


def _card(row: dict[str, Any]) -> SampleCard:
    texts = [text for text in row.pop("texts") or [] if text is not None]
    images = row.pop("images") or []
    return SampleCard(**row, image_count=sum(image is not None for image in images),
                      text_chars=sum(map(len, texts)), snippet=" ".join(texts)[:SNIPPET_CHARS])


@dataclass(frozen=True)
class SamplePage:
    status: str
    total: int
    cards: list[SampleCard]


# ---------------------------------------------------------------------------------------------------------
# The overview's aggregates.


@dataclass
class Overview:
    counts: dict[str, int]  # status -> documents
    languages: list[tuple[str, list[int]]]  # value, [kept, rejected]; most frequent first
    domains: list[tuple[str, list[int]]]
    distinct_domains: int
    images_per_document: list[tuple[str, list[int]]]  # bucket label, [kept, rejected]
    text_chars: list[tuple[str, list[int]]]
    drop_reasons: list[tuple[str, int]] = field(default_factory=list)  # most frequent first
    signal_ranges: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # field -> (min, max)


def _bucket_labels(edges: tuple[int, ...]) -> list[str]:
    labels = []
    for low, high in zip(edges, edges[1:]):
        labels.append(f"{low:,}" if high == low + 1 else f"{low:,}–{high - 1:,}")
    return labels + [f"{edges[-1]:,}+"]


def _bucket_sql(expression: str, edges: tuple[int, ...]) -> str:
    cases = " ".join(f"WHEN {expression} < {high} THEN {index}" for index, high in enumerate(edges[1:]))
    return f"CASE {cases} ELSE {len(edges) - 1} END"


def _by_status(rows: Iterable[tuple[Any, str, int]]) -> dict[Any, list[int]]:
    table: dict[Any, list[int]] = {}
    for key, status, count in rows:
        table.setdefault(key, [0, 0])[STATUSES.index(status)] += count
    return table


# ---------------------------------------------------------------------------------------------------------


class Catalog:
    """The opened runs behind one DuckDB connection; safe to use from the server's threads."""

    def __init__(self, folders: list[str | Path]):
        if not folders:
            raise ValueError("give at least one output folder")
        self.runs = [open_run(index, folder) for index, folder in enumerate(folders)]
        self._connection = duckdb.connect(":memory:")
        for run in self.runs:
            self._connection.execute(self._view_sql(run))
        self._lock_down()
        self._overviews: dict[int, Overview] = {}
        self._locations: dict[tuple[int, str], tuple[str, int, str]] = {}
        self._overview_lock = threading.Lock()

    def _view_sql(self, run: Run) -> str:
        parts = []
        for status, paths in (("kept", run.shards), ("rejected", run.rejects)):
            if paths:
                parts.append(f"SELECT * EXCLUDE (image_bytes), '{status}' AS status "
                             f"FROM read_parquet({_file_list(paths)}, filename = true, file_row_number = true, "
                             f"union_by_name = true)")
        return f"CREATE VIEW {run.view} AS " + " UNION ALL BY NAME ".join(parts)

    def _lock_down(self) -> None:
        folders = "[" + ", ".join(_sql_string(str(run.root) + "/") for run in self.runs) + "]"
        for statement in ("SET autoinstall_known_extensions = false", "SET autoload_known_extensions = false",
                          f"SET allowed_directories = {folders}", "SET enable_external_access = false",
                          "SET lock_configuration = true"):
            self._connection.execute(statement)

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        # One cursor per query: a DuckDB connection must not be shared between threads.
        return self._connection.cursor()

    def _rows(self, sql: str, values: list[Any] | None = None) -> list[tuple]:
        with self._cursor() as cursor:
            return cursor.execute(sql, values or []).fetchall()

    def _dicts(self, sql: str, values: list[Any] | None = None) -> list[dict[str, Any]]:
        with self._cursor() as cursor:
            result = cursor.execute(sql, values or [])
            names = [column[0] for column in result.description]
            return [dict(zip(names, row)) for row in result.fetchall()]

    def run(self, index: int) -> Run:
        if not 0 <= index < len(self.runs):
            raise NotFound(f"no run number {index}; {len(self.runs)} open")
        return self.runs[index]

    # -- overview ------------------------------------------------------------------------------------

    def overview(self, run: Run) -> Overview:
        """Aggregates over the whole run, computed once: a finished run does not change."""
        with self._overview_lock:
            if run.index not in self._overviews:
                self._overviews[run.index] = self._compute_overview(run)
            return self._overviews[run.index]

    def _compute_overview(self, run: Run) -> Overview:
        view = run.view
        counts = dict(self._rows(f"SELECT status, count(*) FROM {view} GROUP BY status"))
        languages = _by_status(self._rows(
            f"SELECT coalesce(language, '{NO_VALUE}'), status, count(*) FROM {view} GROUP BY ALL"))
        domains = _by_status(self._rows(
            f"SELECT coalesce(domain, '{NO_VALUE}'), status, count(*) FROM {view} GROUP BY ALL"))
        images = _by_status(self._rows(
            f"SELECT {_bucket_sql('list_count(images)', IMAGE_BUCKETS)}, status, count(*) FROM {view} GROUP BY ALL"))
        chars = _by_status(self._rows(
            f"SELECT {_bucket_sql(_TEXT_CHARS_SQL, TEXT_CHAR_BUCKETS)}, status, count(*) FROM {view} GROUP BY ALL"))
        reasons = self._rows(f"SELECT drop_reason, count(*) FROM {view} WHERE drop_reason IS NOT NULL "
                             f"GROUP BY 1 ORDER BY 2 DESC, 1")
        ranges = {}
        if run.numeric_signals:
            selects = ", ".join(f"min(signals.{_identifier(name)}), max(signals.{_identifier(name)})"
                                for name in run.numeric_signals)
            row = self._rows(f"SELECT {selects} FROM {view}")[0]
            ranges = {name: (row[2 * i], row[2 * i + 1]) for i, name in enumerate(run.numeric_signals)}

        def most_frequent(table: dict[Any, list[int]], limit: int | None = None):
            ordered = sorted(table.items(), key=lambda item: (-sum(item[1]), item[0]))
            return ordered[:limit]

        def histogram(table: dict[int, list[int]], edges: tuple[int, ...]):
            return [(label, table.get(index, [0, 0])) for index, label in enumerate(_bucket_labels(edges))]

        return Overview(
            counts={status: counts.get(status, 0) for status in STATUSES},
            languages=most_frequent(languages),
            domains=most_frequent(domains, TOP_DOMAINS),
            distinct_domains=len(domains),
            images_per_document=histogram(images, IMAGE_BUCKETS),
            text_chars=histogram(chars, TEXT_CHAR_BUCKETS),
            drop_reasons=reasons,
            signal_ranges=ranges,
        )

    # -- samples -------------------------------------------------------------------------------------

    def samples(self, run: Run, query: SampleQuery, status: str) -> SamplePage:
        """A page of documents in a seeded random order: the same query string always gives the same page.

        Two steps, so the card columns (texts above all) are read for one page of documents only: the page's
        ids with the file and row that hold each (and the number of matches), then those rows.
        """
        where, values = query.where(status)
        located = "id, filename, file_row_number"
        # md5: the same order in every DuckDB version, so a link gives the same sample anywhere.
        order = f"FROM {run.view} WHERE {where} ORDER BY md5_number(id || ?), id LIMIT ? OFFSET ?"
        order_values = [str(query.seed), PAGE_SIZE, query.page * PAGE_SIZE]
        overview = self._overviews.get(run.index)
        if len(values) == 1 and overview is not None:  # no filter but the status: the overview has the count
            total = overview.counts[status]
            ranked = [(*row, total) for row in self._rows(f"SELECT {located} {order}", values + order_values)]
        else:  # one scan gives the page and the number of matches
            ranked = self._rows(f"SELECT {located}, count(*) OVER () {order}", values + order_values)
        if not ranked:  # past the last page: still say how many match
            total = self._rows(f"SELECT count(*) FROM {run.view} WHERE {where}", values)[0][0]
            return SamplePage(status, total, [])
        for document_id, filename, row_number, _ in ranked:
            self._remember(run, document_id, (filename, row_number, status))
        rows = self._rows_at([(filename, row_number) for _, filename, row_number, _ in ranked],
                             "id, url, domain, title, language, drop_reason, images, texts")
        cards = [_card({**rows[filename, row_number], "status": status})
                 for _, filename, row_number, _ in ranked]
        return SamplePage(status, ranked[0][3], cards)

    def _rows_at(self, locations: list[tuple[str, int]], columns: str) -> dict[tuple[str, int], dict[str, Any]]:
        """Rows by (file, row number), one query per file; DuckDB reads only the row groups that hold them.

        (Filtering a view by a list of ids would read every row group: ids are hashes, so the row groups'
        min/max statistics cannot rule any out.)
        """
        by_file: dict[str, list[int]] = {}
        for filename, row_number in locations:
            by_file.setdefault(filename, []).append(row_number)
        found = {}
        for filename, row_numbers in by_file.items():
            for row in self._dicts(f"SELECT {columns}, file_row_number AS _row FROM read_parquet(?, "
                                   f"file_row_number = true) WHERE file_row_number IN "
                                   f"({', '.join('?' * len(row_numbers))})", [filename, *row_numbers]):
                found[filename, row.pop("_row")] = row
        return found

    # -- documents -----------------------------------------------------------------------------------

    def _remember(self, run: Run, document_id: str, location: tuple[str, int, str]) -> None:
        if len(self._locations) >= LOCATIONS_REMEMBERED:
            self._locations.clear()
        self._locations[run.index, document_id] = location

    def _locate(self, run: Run, document_id: str) -> tuple[str, int, str]:
        """(file, row number, status) of a document, found by reading the id column only; remembered, since
        a document's page asks again for each of its images (and a sample page's cards are remembered too)."""
        location = self._locations.get((run.index, document_id))
        if location is None:
            rows = self._rows(f"SELECT filename, file_row_number, status FROM {run.view} WHERE id = ? LIMIT 1",
                              [document_id])
            if not rows:
                raise NotFound(f"no document {document_id!r} in run {run.name}")
            location = rows[0]
            self._remember(run, document_id, location)
        return location

    def document(self, run: Run, document_id: str) -> dict[str, Any]:
        """Every column but the pixels, read from the one row group that holds the document."""
        filename, row_number, status = self._locate(run, document_id)
        row = self._rows_at([(filename, row_number)], "* EXCLUDE (image_bytes)")[filename, row_number]
        row.update(status=status, filename=filename, file_row_number=row_number)
        signals = row.get("signals") or {}
        row["signals"] = {key: value for key, value in signals.items() if key != "_none"}
        for name in ("texts", "images", "image_info", "removed"):
            row[name] = list(row.get(name) or [])
        return row

    def image_bytes(self, run: Run, document_id: str, slot: int) -> bytes | None:
        """The encoded image at one slot of a kept document (rejects are written without image bytes)."""
        filename, row_number, status = self._locate(run, document_id)
        if status != "kept" or slot < 0:
            return None
        rows = self._rows("SELECT image_bytes[?] FROM read_parquet(?, file_row_number = true) "
                          "WHERE file_row_number = ?", [slot + 1, filename, row_number])
        return rows[0][0] if rows else None

    # -- comparing two runs --------------------------------------------------------------------------

    def compare(self, first: Run, second: Run, limit: int = 50) -> tuple[list[tuple], list[tuple]]:
        """Fates of each document id in two runs: (transition counts, a seeded sample of changed documents).

        A fate is `kept`, the drop reason, or `absent` when the id is not in that run (other inputs).
        """
        fate = "CASE WHEN {0}.id IS NULL THEN 'absent' WHEN {0}.status = 'kept' THEN 'kept' ELSE {0}.drop_reason END"
        joined = (f"SELECT coalesce(a.id, b.id) AS id, {fate.format('a')} AS fate_a, {fate.format('b')} AS fate_b, "
                  f"coalesce(a.url, b.url) AS url FROM {first.view} a FULL OUTER JOIN {second.view} b ON a.id = b.id")
        transitions = self._rows(f"SELECT fate_a, fate_b, count(*) FROM ({joined}) GROUP BY fate_a, fate_b "
                                 f"ORDER BY fate_a = fate_b DESC, count(*) DESC, fate_a, fate_b")
        changed = self._rows(f"SELECT id, url, fate_a, fate_b FROM ({joined}) WHERE fate_a <> fate_b "
                             f"ORDER BY md5(id), id LIMIT ?", [limit])
        return transitions, changed
