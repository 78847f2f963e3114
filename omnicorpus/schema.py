"""The data contract: the document schema and the drop reasons, loaded from `schemas/`.

The schema is data (`schemas/document-v1.json`), not code, so readers in other languages and future versions
can read it too. This module is the only place that turns it into Arrow types. `signals` is the one column
whose fields depend on the pipeline: each stage declares the signal fields it writes.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

SCHEMA_VERSION = 1
SCHEMA_NAME = "omnicorpus.document"

# Key-value metadata written into every Parquet file of a run.
META_SCHEMA_VERSION = b"omnicorpus.schema_version"
META_CONFIG_HASH = b"omnicorpus.config_hash"
META_PACKAGE_VERSION = b"omnicorpus.version"


def _data_dir(name: str) -> Path:
    """`schemas/` (or `pipelines/`) in a wheel (copied under the package) or in a source checkout."""
    packaged = Path(__file__).parent / "_data" / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).parent.parent / name


SCHEMAS_DIR = _data_dir("schemas")


@dataclass(frozen=True)
class Column:
    name: str
    type_text: str
    nullable: bool
    meaning: str


# ---------------------------------------------------------------------------------------------------------
# Type strings: "string", "int64", "list<string>", "struct<a: int32, b: string>", "timestamp[s, UTC]".

_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "binary": pa.binary(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
}
_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:,\s*([\w/+-]+))?\]")


def _split_top_level(text: str) -> list[str]:
    """Split 'a: int32, b: list<struct<c: string, d: string>>' on the commas that are not nested."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "<[":
            depth += 1
        elif char in ">]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def parse_type(text: str) -> pa.DataType:
    """Turn a schema type string into an Arrow type."""
    text = text.strip()
    if text in _PRIMITIVES:
        return _PRIMITIVES[text]
    if match := _TIMESTAMP.fullmatch(text):
        return pa.timestamp(match.group(1), tz=match.group(2))
    if text.startswith("list<") and text.endswith(">"):
        return pa.list_(parse_type(text[5:-1]))
    if text.startswith("struct<") and text.endswith(">"):
        fields = []
        for part in _split_top_level(text[7:-1]):
            name, _, type_text = part.partition(":")
            fields.append(pa.field(name.strip(), parse_type(type_text)))
        return pa.struct(fields)
    raise ValueError(f"unknown type {text!r} in the schema")


@functools.cache
def columns(version: int = SCHEMA_VERSION) -> tuple[Column, ...]:
    spec = json.loads((SCHEMAS_DIR / f"document-v{version}.json").read_text())
    if spec["version"] != version or spec["name"] != SCHEMA_NAME:
        raise ValueError(f"schemas/document-v{version}.json declares {spec['name']} v{spec['version']}")
    return tuple(Column(c["name"], c["type"], c["nullable"], c["meaning"]) for c in spec["columns"])


def column_names() -> list[str]:
    return [column.name for column in columns()]


def document_schema(signal_fields: Mapping[str, str | pa.DataType] | None = None) -> pa.Schema:
    """The Arrow schema of a document table; `signal_fields` maps signal name -> type string or Arrow type."""
    fields = []
    for column in columns():
        if column.type_text == "signals":
            signal_fields = signal_fields or {}
            if signal_fields:
                arrow_type = pa.struct([
                    pa.field(name, parse_type(t) if isinstance(t, str) else t)
                    for name, t in sorted(signal_fields.items())
                ])
            else:
                # Parquet cannot store a struct without fields; one placeholder keeps the column present.
                arrow_type = pa.struct([pa.field("_none", pa.bool_())])
        else:
            arrow_type = parse_type(column.type_text)
        fields.append(pa.field(column.name, arrow_type, nullable=column.nullable))
    return pa.schema(fields)


def image_info_fields() -> list[str]:
    return [field.name for field in document_schema().field("image_info").type.value_type]


def removed_fields() -> list[str]:
    return [field.name for field in document_schema().field("removed").type.value_type]


def signal_fields_of(schema: pa.Schema) -> dict[str, pa.DataType]:
    struct = schema.field("signals").type
    return {field.name: field.type for field in struct if field.name != "_none"}


# ---------------------------------------------------------------------------------------------------------
# Drop reasons.


@functools.cache
def drop_reasons() -> dict[str, str]:
    """Every declared drop reason code ("<stage>.<rule>") with its meaning; `error.*` codes are implicit."""
    data = tomllib.loads((SCHEMAS_DIR / "drop-reasons.toml").read_text())
    reasons = {}
    for section, rules in data.items():
        if not isinstance(rules, dict):
            continue
        for rule, meaning in _flatten(section, rules):
            reasons[rule] = meaning
    return reasons


def _flatten(prefix: str, table: dict[str, Any]) -> Iterable[tuple[str, str]]:
    for key, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(f"{prefix}.{key}", value)
        else:
            yield f"{prefix}.{key}", value


def is_declared_reason(code: str) -> bool:
    if code.startswith("error."):
        return len(code) > len("error.")
    return code in drop_reasons()


# ---------------------------------------------------------------------------------------------------------
# The invariants of DESIGN §2, on one row (a dict as pyarrow's to_pylist gives it).


class ContractError(ValueError):
    """A document or file breaks the data contract."""


def row_violations(row: Mapping[str, Any]) -> list[str]:
    """What is wrong with one document row; empty when it meets the contract."""
    problems = []
    texts, images = row.get("texts"), row.get("images")
    infos, blobs = row.get("image_info"), row.get("image_bytes")
    if texts is None or images is None or infos is None or blobs is None:
        return ["texts, images, image_info and image_bytes must all be lists"]
    if not (len(texts) == len(images) == len(infos) == len(blobs)):
        problems.append(
            f"slot lists differ in length: texts {len(texts)}, images {len(images)}, "
            f"image_info {len(infos)}, image_bytes {len(blobs)}"
        )
        return problems
    previous_was_text = False
    for i, (text, image, info, blob) in enumerate(zip(texts, images, infos, blobs)):
        if (text is None) == (image is None):
            problems.append(f"slot {i}: exactly one of texts[i] and images[i] must be set")
            continue
        if text is not None:
            if not text.strip():
                problems.append(f"slot {i}: empty text")
            if previous_was_text:
                problems.append(f"slot {i}: two adjacent text slots")
            if info is not None or blob is not None:
                problems.append(f"slot {i}: a text slot carries image_info or image_bytes")
            previous_was_text = True
        else:
            if not image:
                problems.append(f"slot {i}: empty image URL")
            if info is None:
                problems.append(f"slot {i}: an image slot without image_info")
            previous_was_text = False
    reason = row.get("drop_reason")
    if reason is not None and not is_declared_reason(reason):
        problems.append(f"undeclared drop reason {reason!r}")
    if row.get("error") is not None and (reason is None or not reason.startswith("error.")):
        problems.append("error is set but drop_reason is not error.*")
    if not row.get("id"):
        problems.append("missing id")
    return problems


def validate_table(table: pa.Table, *, kept: bool, seen_ids: set[str] | None = None) -> None:
    """Raise ContractError naming the first bad rows. `kept` tables must have no drop_reason.

    `seen_ids` collects ids across the tables of one run, so duplicates between files are caught too.
    """
    missing = [name for name in column_names() if name not in table.column_names]
    if missing:
        raise ContractError(f"missing columns: {', '.join(missing)}")
    seen_ids = set() if seen_ids is None else seen_ids
    problems: list[str] = []
    # image_bytes is only checked for presence, so it is never copied into Python objects.
    blob_presence = _presence_lists(table.column("image_bytes"))
    rows = table.drop_columns(["image_bytes"]).to_pylist()
    for index, (row, present) in enumerate(zip(rows, blob_presence)):
        row["image_bytes"] = present
        row_problems = row_violations(row)
        if kept and row.get("drop_reason") is not None:
            row_problems.append(f"a kept document has drop_reason {row['drop_reason']!r}")
        if kept and not row_problems and not any(text is not None for text in row["texts"]):
            row_problems.append("a kept document has no text")
        if row.get("id") in seen_ids:
            row_problems.append(f"duplicate id {row['id']}")
        seen_ids.add(row.get("id"))
        problems.extend(f"row {index} (id {row.get('id')}): {problem}" for problem in row_problems)
        if len(problems) >= 10:
            break
    if problems:
        raise ContractError("; ".join(problems))


def _presence_lists(column: pa.ChunkedArray) -> list[list[bool | None] | None]:
    """For a list<binary> column: per row, True where an element is set and None where it is null."""
    lists = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    lengths = pc.list_value_length(lists).to_pylist()
    flags = pc.is_valid(pc.list_flatten(lists)).to_pylist()
    result, start = [], 0
    for length in lengths:
        if length is None:
            result.append(None)
            continue
        result.append([True if flag else None for flag in flags[start : start + length]])
        start += length
    return result
