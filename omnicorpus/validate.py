"""`omnicorpus validate OUT`: every Parquet file of a run against the contract, and the stats against the files."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from omnicorpus import schema
from omnicorpus.io.paths import read_json


@dataclass
class Report:
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def validate_output(output: str | Path) -> Report:
    output = Path(output)
    report = Report()
    if not (output / "run.json").exists():
        report.problems.append(f"{output}/run.json is missing: not a finished omnicorpus run")
        return report
    if not (output / "_SUCCESS").exists():
        report.problems.append(f"{output}/_SUCCESS is missing: the run did not finish")
    run_info = read_json(output / "run.json")
    seen_ids: set[str] = set()
    kept = _check_files(sorted((output / "shards").glob("*.parquet")), True, seen_ids, run_info, report)
    dropped = _check_files(sorted((output / "rejects").glob("*.parquet")), False, seen_ids, run_info, report)
    _check_stats(output, kept, dropped, report)
    return report


def _check_files(paths, kept: bool, seen_ids, run_info, report: Report) -> Counter:
    """Validate files; returns document counts by drop reason (None for kept)."""
    counts: Counter = Counter()
    max_group = run_info["config"]["write"]["row_group_docs"]
    for path in paths:
        try:
            handle = pq.ParquetFile(path)
        except Exception as exc:
            report.problems.append(f"{path.name}: not a readable Parquet file ({exc})")
            continue
        file_schema = handle.schema_arrow
        signals = schema.signal_fields_of(file_schema) if "signals" in file_schema.names else {}
        declared = schema.document_schema(signals)
        problems = []
        for column in declared:
            if column.name not in file_schema.names:
                problems.append(f"missing column {column.name}")
            elif column.name != "signals" and not file_schema.field(column.name).type.equals(column.type):
                problems.append(f"column {column.name} is {file_schema.field(column.name).type}, declared {column.type}")
        metadata = file_schema.metadata or {}
        if metadata.get(schema.META_SCHEMA_VERSION) != str(schema.SCHEMA_VERSION).encode():
            problems.append("schema version missing from the file metadata")
        if metadata.get(schema.META_CONFIG_HASH, b"").decode() != run_info["config_hash"]:
            problems.append("config hash in the file metadata differs from run.json")
        for index in range(handle.num_row_groups):
            if handle.metadata.row_group(index).num_rows > max_group:
                problems.append(f"row group {index} holds more than write.row_group_docs = {max_group} rows")
        if not problems:
            table = handle.read()
            try:
                schema.validate_table(table, kept=kept, seen_ids=seen_ids)
            except schema.ContractError as exc:
                problems.append(str(exc))
            reasons = table.column("drop_reason").to_pylist()
            if not kept and any(reason is None for reason in reasons):
                problems.append("a reject without drop_reason")
            counts.update(reasons)
            report.lines.append(f"{'shard ' if kept else 'rejects'} {path.name}: {table.num_rows} documents, "
                                f"{handle.num_row_groups} row group(s)")
        report.problems.extend(f"{path.name}: {problem}" for problem in problems)
    return counts


def _check_stats(output: Path, kept: Counter, dropped: Counter, report: Report) -> None:
    stats_path = output / "stats.json"
    if not stats_path.exists():
        report.problems.append("stats.json is missing")
        return
    funnel = read_json(stats_path)["funnel"]
    if funnel["input"] != funnel["kept"] + sum(funnel["dropped"].values()):
        report.problems.append(f"stats.json: input {funnel['input']} != kept + dropped")
    if funnel["kept"] != kept[None]:
        report.problems.append(f"stats.json says {funnel['kept']} kept, the shards hold {kept[None]}")
    if dict(funnel["dropped"]) != {reason: count for reason, count in dropped.items() if reason is not None}:
        report.problems.append(f"stats.json drop counts {funnel['dropped']} differ from the rejects {dict(dropped)}")
    report.lines.append(f"funnel: {funnel['input']} documents in, {funnel['kept']} kept, "
                        f"{sum(funnel['dropped'].values())} dropped; stats agree with the files")
