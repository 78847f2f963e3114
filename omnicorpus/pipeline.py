"""The run: units through phases, then shards, rejects, stats, run.json and _SUCCESS.

A unit is one input WARC file. Map phases run one task per unit and write `_work/<phase>/<unit>.*` with the
unit's stats file written last as its done marker, so a rerun skips finished units. The final phase packs the
kept documents of all units, in input order, into target-sized shards. Everything here is a plain function
of (context, unit); the executors only decide where the functions run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import platform
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

import omnicorpus
from omnicorpus import filters, schema
from omnicorpus.config import PipelineConfig
from omnicorpus.dedup import phase as dedup
from omnicorpus.dedup.stage import DedupStage
from omnicorpus.document import Document, from_table
from omnicorpus.extract.html import ExtractStage
from omnicorpus.images.phase import count_image_frequency, fetch_images, mark_image_frequency, resolve_images
from omnicorpus.images.stage import ImageFrequencyStage, ImagesStage
from omnicorpus.io.parquet import (document_bytes, file_metadata, read_rows, row_group_bounds, write_documents,
                                  write_table)
from omnicorpus.io.paths import atomic_write_bytes, atomic_write_json, expand_inputs, read_json, unit_name
from omnicorpus.io.warc import ImageRecord, RawPage, WarcReader
from omnicorpus.stage import BATCH_DOCS, Stage, StageStats, run_batch, run_stages

log = logging.getLogger(__name__)

# Errors worth retrying a unit for: I/O and connections. Anything else is a bug or bad config and fails now.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, ConnectionError)


class RunError(RuntimeError):
    """The run cannot start or cannot finish (bad output folder, a unit that keeps failing)."""


class UnitFailed(RuntimeError):
    """A unit produced too many error rows: something is systematically wrong, so fail loudly."""


@dataclass(frozen=True)
class Unit:
    name: str
    path: str


@dataclass(frozen=True)
class Phase:
    """One step of the run over all units.

    `run_global(context, units, executor)` (optional) runs first and sees every unit: dedup clusters, image
    frequency counts. `run_unit(context, unit)` then runs once per unit as a map task and returns the unit's
    phase stats; it reads the previous phase's documents of the unit and writes its own (see
    `transform_unit`). `enabled(config)` leaves a phase out of a run.
    """

    name: str
    run_unit: Callable[["RunContext", Unit], dict[str, Any]]
    run_global: Callable[["RunContext", list[Unit], Any], None] | None = None
    enabled: Callable[[PipelineConfig], bool] = lambda config: True


@dataclass(frozen=True)
class RunContext:
    """Everything a unit task needs; small and picklable."""

    config: PipelineConfig
    output: str
    phase_names: tuple[str, ...] = ()
    # Signal fields the inputs carry beyond those of the run's stages (a run over existing shards).
    extra_signals: tuple[tuple[str, Any], ...] = ()

    def previous_phase(self, phase: str) -> str:
        index = self.phase_names.index(phase)
        if index == 0:
            raise ValueError(f"phase {phase} is first: it has no input phase")
        return self.phase_names[index - 1]

    @property
    def work(self) -> Path:
        return Path(self.output) / "_work"

    def unit_file(self, phase: str, unit: Unit, kind: str) -> Path:
        return self.work / phase / f"{unit.name}.{kind}"

    def phase_input(self, phase: str, unit: Unit) -> Path:
        """The unit's documents a phase reads: the previous phase's output, or, for the first phase of a run
        over Parquet shards (`omnicorpus dedup`), the unit's input file itself."""
        if self.phase_names.index(phase) == 0:
            return Path(unit.path)
        return self.unit_file(self.previous_phase(phase), unit, "docs.parquet")

    @property
    def metadata(self) -> dict[bytes, bytes]:
        return file_metadata(self.config.output_hash(), omnicorpus.__version__)

    @property
    def arrow_schema(self) -> pa.Schema:
        return run_schema(self.config, dict(self.extra_signals))


# ---------------------------------------------------------------------------------------------------------
# Stages


class ReadStage(Stage[None]):
    """Turns read problems into declared reasons, and drops a second identical capture of a URL in a file."""

    name = "read"
    reasons = ("too_large", "empty", "http_status", "revisit_unresolved", "duplicate_capture")

    def __init__(self, config=None):
        super().__init__(config)
        self._captures: set[tuple[str, str]] = set()

    def process(self, page: RawPage):
        if page.error:
            raise ReadFailure(page.error)
        if page.problem:
            return page.problem
        capture = (page.url, hashlib.sha1(page.payload).hexdigest())
        if capture in self._captures:
            return "duplicate_capture"
        self._captures.add(capture)
        return page


class ReadFailure(Exception):
    """A record that could not be read (cut file, broken encoding); it becomes an error.read row."""


def stage_classes(config: PipelineConfig) -> list[type[Stage]]:
    """Every stage class a run with this config may use, in pipeline order."""
    return [ReadStage, ExtractStage, *filters.preliminary_stage_classes(config), DedupStage, ImagesStage,
            ImageFrequencyStage, *filters.detail_stage_classes(config)]


def run_schema(config: PipelineConfig, extra_signals: dict[str, Any] | None = None) -> pa.Schema:
    signals: dict[str, Any] = dict(extra_signals or {})
    for stage in stage_classes(config):
        signals.update(stage.signals)
    return schema.document_schema(signals)


# ---------------------------------------------------------------------------------------------------------
# Phase: extract (read → extract), one task per unit


IMAGE_STORE_SCHEMA = pa.schema(
    [("url", pa.string()), ("data", pa.binary()), ("content_type", pa.string()),
     ("warc_record_id", pa.string()), ("warc_offset", pa.int64())]
)


def extract_unit(context: RunContext, unit: Unit) -> dict[str, Any]:
    done = context.unit_file("extract", unit, "stats.json")
    if done.exists():
        return read_json(done)
    config = context.config
    reader = WarcReader(unit.path, config.read)
    stages = [ReadStage(), ExtractStage(config.extract)]
    filter_stages = filters.preliminary_stages(config)
    stats = {stage.name: StageStats() for stage in [*stages, *filter_stages]}
    kept: list[Document] = []
    rejected: list[Document] = []
    images: dict[str, ImageRecord] = {}
    # Read and extraction go record by record; the filters take the extracted documents in batches, a stage at a
    # time (stage.BATCH_DOCS: about 1 ms a page less), and every row keeps the order of its record.
    batch: list[tuple[int, Document]] = []  # (record number, document) extracted, waiting for the filters
    batch_rejects: list[tuple[int, Document]] = []  # reject rows of the records since the last batch

    def filter_batch() -> None:
        passed, dropped = run_batch(filter_stages, batch, stats, RawPage.shell_document)
        kept.extend(document for _, document in passed)
        rejected.extend(reject for _, reject in sorted(batch_rejects + dropped, key=lambda pair: pair[0]))
        batch.clear()
        batch_rejects.clear()

    for number, item in enumerate(reader.read()):
        if isinstance(item, ImageRecord):
            images.setdefault(item.url, item)  # the first capture of an image URL wins
            continue
        passed, dropped = run_batch(stages, [(number, item)], stats, RawPage.shell_document)
        batch_rejects.extend(dropped)
        batch.extend(passed)
        if len(batch) >= BATCH_DOCS:
            filter_batch()
    filter_batch()
    _check_error_rate(context, unit, stats)
    image_table = pa.Table.from_pylist(
        [{"url": r.url, "data": r.data, "content_type": r.content_type, "warc_record_id": r.record_id,
          "warc_offset": r.offset} for r in images.values()],
        schema=IMAGE_STORE_SCHEMA,
    )
    write_table(context.unit_file("extract", unit, "images.parquet"), image_table, metadata=context.metadata,
                compression=config.write.compression)
    return _finish_unit(context, "extract", unit, kept, rejected, stats, {"records": reader.counts.to_json()})


# ---------------------------------------------------------------------------------------------------------
# Phase: dedup (a global cluster step, then the unit's duplicates dropped; omnicorpus/dedup/phase.py)


def dedup_unit(context: RunContext, unit: Unit) -> dict[str, Any]:
    return transform_unit(context, "dedup", unit, dedup.mark_duplicates)


# Phases: images (a global fetch step, then resolve → validate → filter per unit) and image_frequency (a
# global count, then mark per unit); the work is in omnicorpus/images/phase.py


def images_unit(context: RunContext, unit: Unit) -> dict[str, Any]:
    return transform_unit(context, "images", unit, resolve_images)


def image_frequency_unit(context: RunContext, unit: Unit) -> dict[str, Any]:
    return transform_unit(context, "image_frequency", unit, mark_image_frequency)


# ---------------------------------------------------------------------------------------------------------
# Shared unit plumbing


def _check_error_rate(context: RunContext, unit: Unit, stats: dict[str, StageStats]) -> None:
    documents = next(iter(stats.values())).input if stats else 0
    errors = sum(count for s in stats.values() for reason, count in s.dropped.items() if reason.startswith("error."))
    run = context.config.run
    if documents >= run.min_documents_for_error_rate and errors > run.max_error_rate * documents:
        raise UnitFailed(
            f"unit {unit.path}: {errors} of {documents} documents are error rows "
            f"(run.max_error_rate = {run.max_error_rate}); see the error column of the rejects"
        )


def _finish_unit(context, phase, unit, kept, rejected, stats, extra) -> dict[str, Any]:
    """Write the phase outputs of a unit; the stats file goes last and marks the unit done."""
    write = context.config.write
    common = dict(metadata=context.metadata, row_group_docs=write.row_group_docs,
                  row_group_bytes=write.row_group_bytes, compression=write.compression)
    for document in rejected:
        document.image_bytes = [None] * len(document.image_bytes)  # rejects never carry pixels
    write_documents(context.unit_file(phase, unit, "docs.parquet"), kept, context.arrow_schema, kept=True, **common)
    write_documents(context.unit_file(phase, unit, "rejects.parquet"), rejected, context.arrow_schema, kept=False,
                    **common)
    for name, stage_stats in stats.items():
        stage_stats.check(name)
    result = {
        "unit": unit.name,
        "input": unit.path,
        "phase": phase,
        "stages": {name: s.to_json() for name, s in stats.items()},
        "kept_bytes": [document_bytes(document) for document in kept],
        **extra,
    }
    atomic_write_json(context.unit_file(phase, unit, "stats.json"), result)
    return result


def transform_unit(context: RunContext, phase: str, unit: Unit, transform) -> dict[str, Any]:
    """The plumbing of a document-to-document map phase, with resume.

    Reads the unit's documents from the previous phase, calls `transform(context, unit, documents)` which
    returns (kept, rejected, {stage name: StageStats}, extra stats), and writes the phase outputs.
    """
    done = context.unit_file(phase, unit, "stats.json")
    if done.exists():
        return read_json(done)
    documents = from_table(pq.read_table(context.phase_input(phase, unit)))
    kept, rejected, stats, extra = transform(context, unit, documents)
    _check_error_rate(context, unit, stats)
    return _finish_unit(context, phase, unit, kept, rejected, stats, extra)


def stage_transform(stages_of: Callable[[PipelineConfig], list[Stage]]):
    """A `transform` that runs documents through per-document stages (most filter phases)."""

    def transform(context: RunContext, unit: Unit, documents: list[Document]):
        stages = stages_of(context.config)
        stats = {stage.name: StageStats() for stage in stages}
        kept, rejected = run_stages(stages, documents, stats)
        return kept, rejected, stats, {}

    return transform


def read_phase_documents(context: RunContext, phase: str, unit: Unit) -> list[Document]:
    return from_table(pq.read_table(context.unit_file(phase, unit, "docs.parquet")))


# ---------------------------------------------------------------------------------------------------------
# Phase: detail (paragraph and document text filters, the classifier score)


def detail_unit(context: RunContext, unit: Unit) -> dict[str, Any]:
    return transform_unit(context, "detail", unit, stage_transform(filters.detail_stages))


# Every phase of a run, in order. Later phases read the documents the previous enabled phase kept.
PHASES: tuple[Phase, ...] = (
    Phase("extract", extract_unit),
    Phase("dedup", dedup_unit, run_global=dedup.dedup_global, enabled=dedup.enabled),
    Phase("images", images_unit, run_global=fetch_images, enabled=lambda config: config.images.enabled),
    Phase("image_frequency", image_frequency_unit, run_global=count_image_frequency,
          enabled=lambda config: config.images.enabled and config.image_frequency.enabled),
    Phase("detail", detail_unit, enabled=filters.detail_enabled),
)


def phases_of(config: PipelineConfig) -> tuple[Phase, ...]:
    return tuple(phase for phase in PHASES if phase.enabled(config))


# ---------------------------------------------------------------------------------------------------------
# Final phase: shards, rejects, stats


def plan_shards(unit_sizes: list[tuple[Unit, list[int]]], docs_per_shard: int, max_shard_bytes: int):
    """Consecutive (unit, start, stop) slices per shard, in input order, capped by docs and bytes."""
    shards: list[list[tuple[Unit, int, int]]] = []
    current: list[tuple[Unit, int, int]] = []
    count = size = 0
    for unit, sizes in unit_sizes:
        start = 0
        for index, doc_size in enumerate(sizes):
            if count and (count >= docs_per_shard or size + doc_size > max_shard_bytes):
                if index > start:
                    current.append((unit, start, index))
                shards.append(current)
                current, count, size, start = [], 0, 0, index
            count += 1
            size += doc_size
        if len(sizes) > start:
            current.append((unit, start, len(sizes)))
    if current:
        shards.append(current)
    return shards


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.parquet"


def write_shard(context: RunContext, index: int, slices: list[tuple[Unit, int, int]], phase: str) -> dict[str, Any]:
    path = Path(context.output) / "shards" / shard_name(index)
    tables = [read_rows(context.unit_file(phase, unit, "docs.parquet"), start, stop) for unit, start, stop in slices]
    table = pa.concat_tables(tables) if tables else context.arrow_schema.empty_table()
    table = table.cast(context.arrow_schema)
    schema.validate_table(table, kept=True)
    documents = from_table(table.select(["texts", "image_bytes"]))
    write = context.config.write
    bounds = row_group_bounds([document_bytes(d) for d in documents], write.row_group_docs, write.row_group_bytes)
    size = write_table(path, table, metadata=context.metadata, bounds=bounds, compression=write.compression)
    return {"shard": path.name, "documents": table.num_rows, "bytes": size}


def write_unit_rejects(context: RunContext, unit: Unit) -> dict[str, Any]:
    tables = []
    for phase in context.phase_names:
        path = context.unit_file(phase, unit, "rejects.parquet")
        if path.exists():
            tables.append(pq.read_table(path))
    table = pa.concat_tables(tables).cast(context.arrow_schema)
    schema.validate_table(table, kept=False)
    path = Path(context.output) / "rejects" / f"{unit.name}.parquet"
    write_table(path, table, metadata=context.metadata, compression=context.config.write.compression,
                bounds=[(s, min(s + context.config.write.row_group_docs, table.num_rows))
                        for s in range(0, table.num_rows, context.config.write.row_group_docs)])
    return {"unit": unit.name, "rejects": table.num_rows}


# ---------------------------------------------------------------------------------------------------------
# Stats


def unit_stats(phase_stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge one unit's phase stats into its funnel."""
    stages: dict[str, StageStats] = {}
    merged: dict[str, Any] = {"unit": phase_stats[0]["unit"], "input": phase_stats[0]["input"]}
    for stats in phase_stats:
        for name, data in stats["stages"].items():
            stages.setdefault(name, StageStats()).add(StageStats.from_json(data))
        for key in ("records", "image_status"):
            if key in stats:
                merged[key] = stats[key]
    merged["stages"] = {name: s.to_json() for name, s in stages.items()}
    merged["funnel"] = funnel(stages)
    return merged


def funnel(stages: dict[str, StageStats]) -> dict[str, Any]:
    """input == kept + sum(dropped), and each stage's input is the previous stage's kept: asserted."""
    names = list(stages)
    if not names:
        return {"input": 0, "kept": 0, "dropped": {}}
    for previous, following in zip(names, names[1:]):
        if stages[previous].kept != stages[following].input:
            raise AssertionError(
                f"stage {following} saw {stages[following].input} documents but {previous} kept {stages[previous].kept}"
            )
    dropped: Counter = Counter()
    for stage in stages.values():
        dropped.update(stage.dropped)
    result = {"input": stages[names[0]].input, "kept": stages[names[-1]].kept, "dropped": dict(sorted(dropped.items()))}
    if result["input"] != result["kept"] + sum(dropped.values()):
        raise AssertionError(f"funnel does not add up: {result}")
    return result


def merge_stats(per_unit: list[dict[str, Any]]) -> dict[str, Any]:
    stages: dict[str, StageStats] = {}
    records: dict[str, Counter] = {"by_type": Counter(), "outcome": Counter(), "revisits": Counter()}
    image_status: Counter = Counter()
    for stats in per_unit:
        for name, data in stats["stages"].items():
            stages.setdefault(name, StageStats()).add(StageStats.from_json(data))
        for key in records:
            records[key].update(stats.get("records", {}).get(key, {}))
        image_status.update(stats.get("image_status", {}))
    record_json = {key: dict(sorted(counter.items())) for key, counter in records.items()}
    record_json["total"] = sum(records["by_type"].values())
    if record_json["total"] != sum(records["outcome"].values()):
        raise AssertionError(f"records do not add up: {record_json}")
    return {
        "units": len(per_unit),
        "records": record_json,
        "funnel": funnel(stages),
        "stages": {name: s.to_json() for name, s in stages.items()},
        "image_status": dict(sorted(image_status.items())),
    }


# ---------------------------------------------------------------------------------------------------------
# The run


@dataclass
class RunResult:
    output: str
    stats: dict[str, Any]
    shards: list[dict[str, Any]]
    skipped: bool = False


def plan_units(inputs: list[str], config: PipelineConfig) -> list[Unit]:
    paths = expand_inputs(inputs, config.read.paths_prefix)
    units = [Unit(unit_name(path), path) for path in paths]
    return units


def prepare_output(output: Path, state: dict[str, Any], overwrite: bool) -> bool:
    """Check an existing output folder belongs to this run. Returns True when the run is already complete."""
    state_file = output / "_work" / "state.json"
    if overwrite and output.exists():
        for name in ("_SUCCESS", "run.json", "stats.json", "shards", "rejects", "stats", "_work"):
            target = output / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    if state_file.exists():
        previous = read_json(state_file)
        if previous != state:
            changed = sorted(key for key in state if previous.get(key) != state[key])
            raise RunError(
                f"{output} holds a run with different {', '.join(changed)}; "
                "use a new output folder or --overwrite to start again"
            )
        return (output / "_SUCCESS").exists()
    if output.exists() and any(output.iterdir()):
        raise RunError(f"{output} is not empty and holds no omnicorpus run; choose an empty or new folder")
    atomic_write_json(state_file, state)
    return False


def run(config: PipelineConfig, inputs: list[str], output: str | Path, *, overwrite: bool = False,
        config_source: str | None = None) -> RunResult:
    return run_units(config, plan_units(inputs, config), output, phases_of(config), overwrite=overwrite,
                     config_source=config_source)


def run_units(config: PipelineConfig, units: list[Unit], output: str | Path, phases: tuple[Phase, ...], *,
              overwrite: bool = False, config_source: str | None = None,
              extra_signals: dict[str, Any] | None = None) -> RunResult:
    """Run `phases` over `units` into `output`: `run` for WARC inputs, `omnicorpus dedup` for existing shards."""
    output = Path(output).resolve()
    state = {"config_hash": config.output_hash(), "inputs": [unit.path for unit in units],
             "schema_version": schema.SCHEMA_VERSION}
    for stage in stage_classes(config):
        stage.check_declared()
    if prepare_output(output, state, overwrite):
        log.info("%s is already complete; nothing to do", output)
        return RunResult(str(output), read_json(output / "stats.json"), read_json(output / "run.json")["shards"],
                         skipped=True)
    started = _now()
    context = RunContext(config=config, output=str(output), phase_names=tuple(phase.name for phase in phases),
                         extra_signals=tuple(sorted((extra_signals or {}).items())))
    from omnicorpus.runner import make_executor

    executor = make_executor(config.run.runner, config.run.workers, config.run.ray_address,
                             config.run.object_store_mb, config.run.unit_retries, TRANSIENT_ERRORS)
    try:
        phase_results: dict[str, list[dict[str, Any]]] = {}
        for phase in phases:
            if phase.run_global is not None:
                phase.run_global(context, units, executor)
            phase_results[phase.name] = executor.map(phase.run_unit, [(context, unit) for unit in units], phase.name)
        last = phases[-1].name
        plan = plan_shards([(unit, result["kept_bytes"]) for unit, result in zip(units, phase_results[last])],
                           config.write.docs_per_shard, config.write.max_shard_bytes)
        shards = executor.map(write_shard, [(context, index, slices, last) for index, slices in enumerate(plan)],
                              "shards")
        executor.map(write_unit_rejects, [(context, unit) for unit in units], "rejects")
    finally:
        executor.close()
    per_unit = [unit_stats([phase_results[phase.name][i] for phase in phases]) for i in range(len(units))]
    for stats in per_unit:
        stats.pop("kept_bytes", None)
        atomic_write_json(output / "stats" / f"{stats['unit']}.json", stats)
    merged = merge_stats(per_unit)
    if merged["funnel"]["kept"] != sum(shard["documents"] for shard in shards):
        raise AssertionError("the shards do not hold the documents the funnel says were kept")
    _check_unique_ids(output)
    atomic_write_json(output / "stats.json", merged)
    run_info = {
        "omnicorpus_version": omnicorpus.__version__,
        "schema_version": schema.SCHEMA_VERSION,
        "config_hash": config.output_hash(),
        "config_source": config_source,
        "config": config.to_dict(),
        "inputs": [unit.path for unit in units],
        "units": [{"name": unit.name, "input": unit.path} for unit in units],
        "shards": shards,
        "runner": executor.name,
        "versions": package_versions(),
        "code_revision": code_revision(),
        "started": started,
        "finished": _now(),
    }
    atomic_write_json(output / "run.json", run_info)
    atomic_write_bytes(output / "_SUCCESS", b"")
    return RunResult(str(output), merged, shards)


def _check_unique_ids(output: Path) -> None:
    seen: set[str] = set()
    for folder in ("shards", "rejects"):
        for path in sorted((output / folder).glob("*.parquet")):
            for document_id in pq.read_table(path, columns=["id"]).column("id").to_pylist():
                if document_id in seen:
                    raise schema.ContractError(f"document id {document_id} appears twice in {output}")
                seen.add(document_id)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("omnicorpus", "pyarrow", "trafilatura", "warcio", "pillow", "lxml", "ray", "fsspec", "imagehash",
                 "aiohttp"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def code_revision() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                                text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None

