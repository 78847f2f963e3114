"""A trainable quality classifier: fastText supervised on documents labelled good or bad.

Training data is what the auditor's browser exports: JSONL or Parquet rows with `text` and `label` ("good" or
"bad"; `__label__good` style is accepted too) and an optional `id`. `omnicorpus classifier train` writes a
fastText model; the `filter.classifier` stage scores each document with the probability of "good", writes it to
`signals.quality_score`, and drops documents below `min_score` (0, i.e. never, by default).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import multiprocessing
import random
import re
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator

from omnicorpus.document import Document
from omnicorpus.filters.base import FilterConfig, FilterStage, check_range

log = logging.getLogger(__name__)

LABELS = ("good", "bad")
_LABEL_PREFIX = "__label__"
_SPACES = re.compile(r"\s+")
# fastText reads whitespace-separated tokens; punctuation split off so "good." and "good" are one word.
_PUNCTUATION = re.compile(r"([^\w\s])")


class LabelError(ValueError):
    """The labelled file cannot be used for training; the message names the file and the row."""


def prepare_text(text: str) -> str:
    """The text fastText sees, in training and scoring alike: lower case, punctuation split off, one line."""
    return _SPACES.sub(" ", _PUNCTUATION.sub(r" \1 ", text.lower())).strip()


# ---------------------------------------------------------------------------------------------------------
# Scoring stage


@dataclass(frozen=True, kw_only=True)
class ClassifierConfig(FilterConfig):
    RULES: ClassVar[tuple[str, ...]] = ("low_score",)
    SECTION: ClassVar[str] = "filter.classifier"
    # A model written by `omnicorpus classifier train`; without one the stage is not in the pipeline.
    model_path: str | None = None
    # Documents whose probability of "good" is below this are dropped; 0 never drops (off by default: a model
    # trained on a few hundred labels should be looked at before it decides anything).
    min_score: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        check_range(self.SECTION, "min_score", self.min_score, 0.0, 1.0)
        if self.model_path is not None and not os.path.exists(self.model_path):
            raise ValueError(f"{self.SECTION}.model_path {self.model_path!r} does not exist")

    @property
    def in_use(self) -> bool:
        return self.enabled and self.model_path is not None


class QualityClassifier(FilterStage):
    name = "filter.classifier"
    reasons = ClassifierConfig.RULES
    signals = {"quality_score": "float32"}

    def __init__(self, config: ClassifierConfig):
        super().__init__(config)
        self.model = None

    def setup(self) -> None:
        from omnicorpus.filters.language import load_fasttext_model

        self.model = load_fasttext_model(self.config.model_path)
        labels = {label[len(_LABEL_PREFIX):] for label in self.model.get_labels()}
        if "good" not in labels:
            raise ValueError(f"{self.config.model_path} has labels {sorted(labels)}, not good/bad")

    def score(self, text: str) -> float:
        labels, probabilities = self.model.predict(prepare_text(text), k=-1)
        for label, probability in zip(labels, probabilities):
            if label == _LABEL_PREFIX + "good":
                return float(min(max(probability, 0.0), 1.0))
        return 0.0

    def process(self, document: Document) -> Document | str:
        score = self.score(document.text)
        document.signals["quality_score"] = score
        if score < self.config.min_score and self.config.active("low_score"):
            return "low_score"
        return document


# ---------------------------------------------------------------------------------------------------------
# Labelled data and training


def read_labelled(path: str | Path) -> list[tuple[str, str]]:
    """(label, text) pairs from JSONL or Parquet rows with `text` and `label` (`id` optional)."""
    path = Path(path)
    pairs = []
    for number, row in enumerate(_rows(path), start=1):
        if not isinstance(row, dict):
            raise LabelError(f"{path}: row {number} is not an object")
        label, text = row.get("label"), row.get("text")
        where = f"{path}: row {number}" + (f" (id {row['id']})" if row.get("id") is not None else "")
        if not isinstance(label, str) or _normalize_label(label) not in LABELS:
            raise LabelError(f"{where}: label must be one of {LABELS} (or __label__good/__label__bad), got {label!r}")
        if not isinstance(text, str) or not text.strip():
            raise LabelError(f"{where}: needs a non-empty `text`")
        pairs.append((_normalize_label(label), text))
    if not pairs:
        raise LabelError(f"{path}: no labelled rows")
    missing = [label for label in LABELS if label not in {label for label, _ in pairs}]
    if missing:
        raise LabelError(f"{path}: no rows labelled {missing}; a classifier needs examples of both")
    return pairs


def _normalize_label(label: str) -> str:
    label = label.strip().lower()
    return label[len(_LABEL_PREFIX):] if label.startswith(_LABEL_PREFIX) else label


def _rows(path: Path) -> Iterator[dict]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        missing = [name for name in ("text", "label") if name not in table.column_names]
        if missing:
            raise LabelError(f"{path}: missing columns {missing}; expected text, label (and optionally id)")
        columns = [name for name in ("id", "text", "label") if name in table.column_names]
        yield from table.select(columns).to_pylist()
        return
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise LabelError(f"{path}: line {number} is not JSON: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    # fastText supervised defaults suited to a few hundred to a few thousand documents.
    epochs: int = 25
    learning_rate: float = 0.5
    word_ngrams: int = 2
    dimension: int = 50
    min_count: int = 1
    # Hash buckets for word n-gram features: fastText's default of 2M makes a 400 MB model at dimension 50;
    # 100k (20 MB) is plenty for the vocabulary of a few thousand labelled documents.
    buckets: int = 100_000
    validation_share: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class TrainResult:
    model_path: str
    examples: int
    labels: dict[str, int]
    validation: dict[str, float] | None


def train(labelled: list[tuple[str, str]], model_path: str | Path, settings: TrainSettings = TrainSettings()
          ) -> TrainResult:
    """Train and save a fastText model; with a validation share, report precision/recall on held-out rows."""
    import fasttext

    rows = list(labelled)
    random.Random(settings.seed).shuffle(rows)
    held_out = int(len(rows) * settings.validation_share)
    validation, training = rows[:held_out], rows[held_out:]
    model_path = Path(model_path)
    model_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = model_path.with_name(model_path.name + ".tmp")
    with tempfile.TemporaryDirectory() as folder:
        train_file = Path(folder) / "train.txt"
        train_file.write_text("".join(f"{_LABEL_PREFIX}{label} {prepare_text(text)}\n" for label, text in training),
                              encoding="utf-8")
        # fastText's trainer (0.9.2) reads memory it never wrote: in a process whose heap has been used (a
        # long-lived worker, a test session) the same data and seed can end in "Encountered NaN". A fresh
        # process gives every training the clean heap a command-line run has.
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            pool.apply(_train_fasttext, (str(train_file), str(temporary), settings))
    os.replace(temporary, model_path)
    model = fasttext.load_model(str(model_path))
    counts = {label: sum(1 for row_label, _ in training if row_label == label) for label in LABELS}
    report = _evaluate(model, validation) if validation else None
    return TrainResult(str(model_path), len(training), counts, report)


def _train_fasttext(train_file: str, model_file: str, settings: TrainSettings) -> None:
    import fasttext

    model = fasttext.train_supervised(
        input=train_file, epoch=settings.epochs, lr=settings.learning_rate, wordNgrams=settings.word_ngrams,
        dim=settings.dimension, minCount=settings.min_count, bucket=settings.buckets, thread=1,
        seed=settings.seed, verbose=0,
    )
    model.save_model(model_file)


def _evaluate(model, rows: list[tuple[str, str]]) -> dict[str, float]:
    predicted = [model.predict(prepare_text(text), k=1)[0][0][len(_LABEL_PREFIX):] for _, text in rows]
    correct = sum(p == label for p, (label, _) in zip(predicted, rows))
    true_good = sum(p == "good" and label == "good" for p, (label, _) in zip(predicted, rows))
    predicted_good = sum(p == "good" for p in predicted)
    actual_good = sum(label == "good" for label, _ in rows)
    return {
        "examples": len(rows),
        "accuracy": correct / len(rows),
        "precision_good": true_good / predicted_good if predicted_good else 0.0,
        "recall_good": true_good / actual_good if actual_good else 0.0,
    }


# ---------------------------------------------------------------------------------------------------------
# Command line: omnicorpus classifier train


def add_parser(commands) -> None:
    classifier = commands.add_parser("classifier", help="train the fastText quality classifier")
    actions = classifier.add_subparsers(metavar="ACTION")
    command = actions.add_parser(
        "train",
        help="train a model from documents labelled good/bad",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(
            """\
            Train a fastText supervised classifier from labelled documents: a JSONL or Parquet file whose
            rows hold `text` and `label` ("good" or "bad", or __label__good/__label__bad) and optionally `id`,
            as the browser exports them. Point filter.classifier.model_path at the model to score documents
            (signals.quality_score) and set filter.classifier.min_score to drop those below it."""
        ),
    )
    command.add_argument("-i", "--input", required=True, nargs="+", metavar="LABELS",
                         help="labelled JSONL (.jsonl) or Parquet (.parquet) files")
    command.add_argument("-o", "--output", required=True, metavar="MODEL", help="where to write the model (.bin)")
    defaults = TrainSettings()
    command.add_argument("--epochs", type=int, default=defaults.epochs, help=f"default {defaults.epochs}")
    command.add_argument("--learning-rate", type=float, default=defaults.learning_rate,
                         help=f"default {defaults.learning_rate}")
    command.add_argument("--word-ngrams", type=int, default=defaults.word_ngrams,
                         help=f"word n-gram features (default {defaults.word_ngrams})")
    command.add_argument("--dimension", type=int, default=defaults.dimension, help=f"default {defaults.dimension}")
    command.add_argument("--buckets", type=int, default=defaults.buckets,
                         help=f"hash buckets for n-gram features; sets the model size (default {defaults.buckets})")
    command.add_argument("--validation-share", type=float, default=0.1,
                         help="share of rows held out to report accuracy (default 0.1; 0 trains on all)")
    command.add_argument("--seed", type=int, default=defaults.seed, help="shuffle seed (default 0)")
    command.set_defaults(handler=_train_command)
    classifier.set_defaults(handler=lambda args: (classifier.print_help(), 2)[1])


def _train_command(args) -> int:
    try:
        if not 0.0 <= args.validation_share < 1.0:
            raise LabelError(f"--validation-share must be in [0, 1), got {args.validation_share}")
        labelled = [pair for path in args.input for pair in read_labelled(path)]
    except LabelError as exc:
        print(f"omnicorpus classifier train: error: {exc}", file=sys.stderr)
        return 2
    settings = TrainSettings(epochs=args.epochs, learning_rate=args.learning_rate, word_ngrams=args.word_ngrams,
                             dimension=args.dimension, buckets=args.buckets, validation_share=args.validation_share, seed=args.seed)
    result = train(labelled, args.output, settings)
    print(f"trained on {result.examples} documents ({', '.join(f'{k} {v}' for k, v in result.labels.items())}) "
          f"-> {result.model_path}")
    if result.validation:
        print("held out: " + ", ".join(f"{key} {value:.3g}" for key, value in result.validation.items()))
    print(f"use it with: --set filter.classifier.model_path=\"{result.model_path}\"")
    return 0
