"""`omnicorpus dedup IN... OUT`: deduplicate the shards of existing runs together into a new run.

Each input shard is a unit; the run has one phase, dedup, so OUT is an ordinary run layout (shards, rejects,
stats, run.json, _SUCCESS) whose rejects are the duplicates, with `dedup.<kind>` and `signals.duplicate_of`.
Signal fields of the inputs (quality scores, ...) are carried over, so `dedup.keep = "quality"` can read them.
"""

from __future__ import annotations

import argparse
import glob
import textwrap
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from omnicorpus import schema
from omnicorpus.io.paths import InputError, unit_name


def shard_inputs(specs: list[str]) -> list[str]:
    """Parquet shard files from run folders (their shards/), folders of Parquet files, files and globs."""
    found: list[str] = []
    for spec in specs:
        path = Path(spec)
        if glob.has_magic(spec):
            matches = sorted(p for p in glob.glob(spec, recursive=True) if p.endswith(".parquet"))
        elif (path / "shards").is_dir():
            if not (path / "_SUCCESS").exists():
                raise InputError(f"{spec} is an unfinished run (no _SUCCESS); finish it first (rerun its command)")
            matches = sorted(str(p) for p in (path / "shards").glob("*.parquet"))
        elif path.is_dir():
            matches = sorted(str(p) for p in path.glob("*.parquet"))
        elif path.is_file():
            matches = [spec]
        else:
            raise InputError(f"input {spec!r} does not exist")
        if not matches:
            raise InputError(f"input {spec!r} holds no Parquet shard")
        found.extend(str(Path(match).resolve()) for match in matches)
    return list(dict.fromkeys(found))


def input_signals(paths: list[str]) -> dict[str, Any]:
    """The union of the inputs' signal fields; every input must be an omnicorpus document file."""
    fields: dict[str, Any] = {}
    for path in paths:
        try:
            file_schema = pq.read_schema(path)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise InputError(f"{path} is not a Parquet file: {exc}") from exc
        version = (file_schema.metadata or {}).get(schema.META_SCHEMA_VERSION)
        if version != str(schema.SCHEMA_VERSION).encode():
            raise InputError(f"{path} is not an omnicorpus v{schema.SCHEMA_VERSION} document file "
                             f"(schema version {version!r})")
        for name, arrow_type in schema.signal_fields_of(file_schema).items():
            if fields.setdefault(name, arrow_type) != arrow_type:
                raise InputError(f"signal field {name!r} is {fields[name]} in one input and {arrow_type} in {path}")
    return fields


def run_dedup(config, inputs: list[str], output: str | Path, *, overwrite: bool = False,
              config_source: str | None = None):
    """Deduplicate existing shards together; returns the pipeline's RunResult."""
    from omnicorpus.config import ConfigError
    from omnicorpus.pipeline import PHASES, Unit, run_units

    if not config.dedup.any_kind:
        raise ConfigError("omnicorpus dedup needs dedup enabled with at least one kind (url, content, "
                          "image_set, near)")
    paths = shard_inputs(inputs)
    if Path(output).resolve() in [Path(path).parent.parent for path in paths]:
        raise InputError(f"{output} is one of the inputs; choose a new output folder")
    units = [Unit(unit_name(path), path) for path in paths]
    phase = next(phase for phase in PHASES if phase.name == "dedup")
    return run_units(config, units, output, (phase,), overwrite=overwrite, config_source=config_source,
                     extra_signals=input_signals(paths))


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "dedup",
        help="deduplicate the shards of one or more runs together into a new run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(
            """\
            Find duplicates across all input shards: the same normalised URL, the same normalised text, the
            same set of image URLs, and near-duplicate text (MinHash-LSH, Jaccard about 0.8). Each cluster of
            duplicates keeps one document (dedup.keep: newest, longest, most_images, quality); OUT/shards/
            holds the kept documents, OUT/rejects/ the others with drop_reason dedup.<kind> and
            signals.duplicate_of naming the document kept. Rerunning the same command resumes."""
        ),
    )
    parser.add_argument("inputs", nargs="+", metavar="IN",
                        help="run folders (their shards/), folders of Parquet shards, shard files or globs")
    parser.add_argument("output", metavar="OUT", help="output folder (a new run)")
    parser.add_argument("-c", "--config", metavar="TOML",
                        help="pipeline config whose [dedup] section applies (default: built-in defaults)")
    parser.add_argument("--runner", choices=("ray", "local"), help="ray (default: embedded or a cluster) or local")
    parser.add_argument("--ray-address", metavar="ADDRESS", help="join a running Ray cluster: auto or HOST:PORT")
    parser.add_argument("--workers", type=int, metavar="N", help="parallel tasks (default: all cores)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                        help="override one config value, e.g. --set dedup.keep=longest (repeatable)")
    parser.add_argument("--overwrite", action="store_true", help="delete a previous run in OUT and start again")
    parser.set_defaults(handler=_dedup)


def _dedup(args) -> int:
    from omnicorpus.config import config_from_args

    config = config_from_args(args)
    result = run_dedup(config, args.inputs, args.output, overwrite=args.overwrite,
                       config_source=str(args.config) if args.config else None)
    if result.skipped:
        print(f"{result.output} is already complete (delete it or pass --overwrite to run again)")
    funnel = result.stats["funnel"]
    dropped = ", ".join(f"{reason} {count}" for reason, count in funnel["dropped"].items()) or "none"
    print(f"documents: {funnel['input']} in, {funnel['kept']} kept; duplicates dropped: {dropped}")
    print(f"{len(result.shards)} shard(s) in {Path(result.output) / 'shards'}; "
          f"duplicates in {Path(result.output) / 'rejects'}")
    return 0
