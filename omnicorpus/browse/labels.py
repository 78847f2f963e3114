"""Auditor labels in SQLite, and their exports: the labelled set and the false-positive table.

A label row keeps what the export needs (the document's text, URL, drop reason) next to the verdict, so a
labels file stays usable on its own, after the run folder moved or was deleted. One label per (run, id): the
latest wins. The labelled set is what `omnicorpus classifier train` reads: JSONL or Parquet rows with `id`,
`text` (the text blocks joined by blank lines), `label` (`good` or `bad`), plus `note`, `rule`,
`drop_reason`, `url` and `run`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from omnicorpus.document import TEXT_BLOCK_SEPARATOR

LABELS = ("good", "bad")
DEFAULT_FILE = "labels.sqlite"  # in the run's output folder unless --labels gives a path
EXPORT_FIELDS = ("id", "text", "label", "note", "rule", "drop_reason", "url", "run")
KEPT = "(kept)"  # the false-positive table's row for kept documents

_CREATE = """
CREATE TABLE IF NOT EXISTS labels (
    run         TEXT NOT NULL,              -- the run's output folder, as opened
    id          TEXT NOT NULL,
    label       TEXT NOT NULL CHECK (label IN ('good', 'bad')),
    note        TEXT NOT NULL DEFAULT '',
    rule        TEXT NOT NULL DEFAULT '',
    drop_reason TEXT,                       -- NULL for a kept document
    url         TEXT,
    text        TEXT NOT NULL,
    labelled_at TEXT NOT NULL,
    PRIMARY KEY (run, id)
)
"""


class LabelError(ValueError):
    pass


@dataclass(frozen=True)
class Label:
    run: str
    id: str
    label: str
    note: str
    rule: str
    drop_reason: str | None
    url: str | None
    text: str
    labelled_at: str

    def export_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in EXPORT_FIELDS}


def document_text(texts: Iterable[str | None]) -> str:
    return TEXT_BLOCK_SEPARATOR.join(text for text in texts if text)


class LabelStore:
    """One SQLite file. Connections are opened per call, so the server's threads can share a store."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute(_CREATE)
        return connection

    def put(self, *, run: str, document: dict[str, Any], label: str, note: str = "", rule: str = "") -> Label:
        if label not in LABELS:
            raise LabelError(f"label must be one of {LABELS}, got {label!r}")
        row = Label(run=run, id=document["id"], label=label, note=note.strip(), rule=rule.strip(),
                    drop_reason=document.get("drop_reason"), url=document.get("url"),
                    text=document_text(document.get("texts") or []),
                    labelled_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        with closing(self._connect()) as connection, connection:
            connection.execute("INSERT OR REPLACE INTO labels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (row.run, row.id, row.label, row.note, row.rule, row.drop_reason, row.url, row.text,
                                row.labelled_at))
        return row

    def delete(self, *, run: str, document_id: str) -> None:
        if not self.path.exists():
            return
        with closing(self._connect()) as connection, connection:
            connection.execute("DELETE FROM labels WHERE run = ? AND id = ?", (run, document_id))

    def get(self, *, run: str, document_id: str) -> Label | None:
        labels = self._select("WHERE run = ? AND id = ?", (run, document_id))
        return labels[0] if labels else None

    def all(self, run: str | None = None) -> list[Label]:
        if run is None:
            return self._select("", ())
        return self._select("WHERE run = ?", (run,))

    def _select(self, where: str, values: tuple) -> list[Label]:
        if not self.path.exists():  # reading never creates the file
            return []
        with closing(self._connect()) as connection:
            rows = connection.execute(
                f"SELECT run, id, label, note, rule, drop_reason, url, text, labelled_at FROM labels {where} "
                f"ORDER BY labelled_at DESC, run, id", values).fetchall()
        return [Label(*row) for row in rows]


# ---------------------------------------------------------------------------------------------------------
# Exports.

EXPORT_SCHEMA = pa.schema([pa.field(name, pa.string(), nullable=name not in ("id", "text", "label"))
                           for name in EXPORT_FIELDS])


def export_jsonl(labels: Iterable[Label]) -> bytes:
    lines = [json.dumps(label.export_row(), ensure_ascii=False) for label in labels]
    return ("\n".join(lines) + "\n" if lines else "").encode("utf-8")


def export_table(labels: Iterable[Label]) -> pa.Table:
    return pa.Table.from_pylist([label.export_row() for label in labels], schema=EXPORT_SCHEMA)


def write_export(labels: list[Label], path: str | Path) -> int:
    """Write the labelled set as .jsonl or .parquet (by the file name); returns the number of rows."""
    path = Path(path)
    if path.suffix == ".jsonl":
        path.write_bytes(export_jsonl(labels))
    elif path.suffix == ".parquet":
        pq.write_table(export_table(labels), path)
    else:
        raise LabelError(f"export to a .jsonl or .parquet file, not {path.name!r}")
    return len(labels)


@dataclass(frozen=True)
class ReasonRow:
    """Labels of documents dropped for one reason (or kept): how many of them an auditor called good."""

    reason: str
    labelled: int
    good: int
    bad: int

    @property
    def false_positive_rate(self) -> float | None:
        """Dropped but labelled good, over all labelled with this reason (None for the kept row)."""
        if not self.labelled or self.reason == KEPT:
            return None
        return self.good / self.labelled


def false_positive_table(labels: Iterable[Label]) -> list[ReasonRow]:
    counts: dict[str, list[int]] = {}
    for label in labels:
        good_bad = counts.setdefault(label.drop_reason or KEPT, [0, 0])
        good_bad[0 if label.label == "good" else 1] += 1
    rows = [ReasonRow(reason, good + bad, good, bad) for reason, (good, bad) in counts.items()]
    return sorted(rows, key=lambda row: (row.reason == KEPT, -row.labelled, row.reason))


def false_positive_csv(rows: list[ReasonRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["drop_reason", "labelled", "labelled_good", "labelled_bad", "false_positive_rate"])
    for row in rows:
        rate = "" if row.false_positive_rate is None else f"{row.false_positive_rate:.4f}"
        writer.writerow([row.reason, row.labelled, row.good, row.bad, rate])
    return buffer.getvalue()
