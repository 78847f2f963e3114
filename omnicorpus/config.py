"""Pipeline configuration: TOML files in `pipelines/` loaded into frozen, typed dataclasses.

Each section of the TOML file is one stage's (or the runner's) config class. Unknown sections and keys are
errors that name the key and list the allowed ones; values are type-checked. Every default threshold cites
its source next to its field, in the module that owns the section.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omnicorpus.dedup.config import DedupConfig
from omnicorpus.extract.html import ExtractConfig
from omnicorpus.filters import TextFiltersConfig
from omnicorpus.images.config import ImageFrequencyConfig, ImagesConfig
from omnicorpus.io.warc import ReadConfig
from omnicorpus.schema import _data_dir

PIPELINES_DIR = _data_dir("pipelines")
RUNNERS = ("ray", "local")
COMPRESSIONS = ("zstd", "snappy", "gzip", "none")
MiB = 1024 * 1024


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the key."""


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    runner: str = "ray"
    # Parallel tasks (Ray CPUs); 0 means all cores of this machine.
    workers: int = 0
    # None starts an embedded Ray; "auto" or "HOST:PORT" joins a running cluster.
    ray_address: str | None = None
    # Embedded Ray only: its object store (Ray's default of 30 % of RAM is far more than the runner needs).
    object_store_mb: int = 512
    # A unit whose error rows exceed this fraction of its documents fails loudly (DESIGN §5).
    max_error_rate: float = 0.5
    # ... but only once it has at least this many documents, so one bad page of three does not fail it.
    min_documents_for_error_rate: int = 20
    # Attempts for a unit that fails (I/O, a crashed worker) before the run gives up.
    unit_retries: int = 2

    def __post_init__(self):
        if self.runner not in RUNNERS:
            raise ConfigError(f"run.runner must be one of {RUNNERS}, got {self.runner!r}")
        if self.workers < 0:
            raise ConfigError(f"run.workers must be >= 0, got {self.workers}")
        if not 0.0 < self.max_error_rate <= 1.0:
            raise ConfigError(f"run.max_error_rate must be in (0, 1], got {self.max_error_rate}")


@dataclass(frozen=True, kw_only=True)
class WriteConfig:
    docs_per_shard: int = 10_000
    # A shard is closed at this size too; 256-512 MB shards suit hub hosting (anchors §8.12).
    max_shard_bytes: int = 512 * MiB
    # Row groups of ~1k documents, capped by bytes since image bytes dominate (DESIGN §3).
    row_group_docs: int = 1000
    row_group_bytes: int = 128 * MiB
    compression: str = "zstd"

    def __post_init__(self):
        for name in ("docs_per_shard", "max_shard_bytes", "row_group_docs", "row_group_bytes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"write.{name} must be > 0, got {getattr(self, name)}")
        if self.compression not in COMPRESSIONS:
            raise ConfigError(f"write.compression must be one of {COMPRESSIONS}, got {self.compression!r}")


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    run: RunConfig = field(default_factory=RunConfig)
    read: ReadConfig = field(default_factory=ReadConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    image_frequency: ImageFrequencyConfig = field(default_factory=ImageFrequencyConfig)
    filter: TextFiltersConfig = field(default_factory=TextFiltersConfig)
    write: WriteConfig = field(default_factory=WriteConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def output_hash(self) -> str:
        """Hash of everything that changes the output; the `run` section (runner, workers) does not."""
        data = self.to_dict()
        data.pop("run")
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Load a pipeline TOML (None: all defaults) and apply dotted overrides like {"run.workers": 2}."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        path = resolve_pipeline_path(path)
        source = str(path)
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    for dotted, value in (overrides or {}).items():
        *sections, key = dotted.split(".")
        if not sections or not all(sections) or not key:
            raise ConfigError(f"override {dotted!r} must look like section.key (or section.subsection.key)")
        table = data
        for section in sections:
            table = table.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(f"override {dotted!r}: {section} is a value, not a section")
        table[key] = value
    return build(PipelineConfig, data, source)


def resolve_pipeline_path(path: str | Path) -> Path:
    """A path as given, or a name of a bundled pipeline (`example` → pipelines/example.toml)."""
    path = Path(path)
    if path.exists():
        return path
    bundled = PIPELINES_DIR / (path.name if path.suffix == ".toml" else f"{path.name}.toml")
    if bundled.exists():
        return bundled
    raise ConfigError(f"pipeline config {str(path)!r} not found (bundled: {', '.join(bundled_pipelines())})")


def bundled_pipelines() -> list[str]:
    return sorted(p.stem for p in PIPELINES_DIR.glob("*.toml"))


def build(cls: type, data: Any, where: str, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: [{prefix.rstrip('.')}] must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    values = {}
    for key, value in data.items():
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {prefix + key!r}; allowed: {', '.join(allowed)}")
        expected = hints[key]
        if dataclasses.is_dataclass(expected):
            values[key] = build(expected, value, where, f"{prefix}{key}.")
        else:
            values[key] = _coerce(value, expected, f"{where}: {prefix}{key}")
    try:
        return cls(**values)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc


def _coerce(value: Any, expected: Any, name: str) -> Any:
    origin = typing.get_origin(expected)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(expected)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, name)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{name}: unexpected {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        (item_type, *_) = typing.get_args(expected) or (Any,)
        return tuple(_coerce(item, item_type, name) for item in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a table, got {value!r}")
        _, value_type = typing.get_args(expected)
        return dict(sorted((str(k), _coerce(v, value_type, name)) for k, v in value.items()))
    if expected is Any:
        return value
    if expected is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if expected is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        return float(value)
    if expected is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    raise ConfigError(f"{name}: unsupported config type {expected!r}")


def parse_override(text: str) -> tuple[str, Any]:
    """`section.key=value` from the command line; the value is read as TOML (numbers, booleans, lists)."""
    key, sep, raw = text.partition("=")
    if not sep or "." not in key:
        raise ConfigError(f"--set expects section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare string
    return key.strip(), value


def config_from_args(args) -> PipelineConfig:
    """The pipeline config of a command line (`run`, `dedup`): `--config` with `--set` overrides and the runner
    flags `--runner`, `--ray-address`, `--workers`."""
    overrides = dict(parse_override(text) for text in args.overrides)
    for key, value in (("run.runner", args.runner), ("run.ray_address", args.ray_address),
                       ("run.workers", args.workers)):
        if value is not None:
            overrides[key] = value
    return load_config(args.config, overrides)
