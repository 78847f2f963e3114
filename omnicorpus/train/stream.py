"""Streaming shards: a torch IterableDataset over (file, row group) units, split by (rank, worker), resumable.

The design of lcl.md §5.7. Every epoch the unit list is permuted with a seed shared by all ranks; global reader
g = rank · workers + worker takes units g, g + G, … (G = world · workers), so each document is read once per
epoch. (With fewer units than readers, every reader walks all units and keeps the rows whose global index is g
modulo G: correct, but it reads more.) A reader loads `shuffle_units` row groups at a time (only the columns
it needs) and emits their documents in a seeded random order: the shuffle buffer. Readers batch their own
samples, so each batch carries its reader's cursor (epoch, window, position in the window, samples of the
current document already emitted): the state that resumes mid-epoch exactly, without saving buffer contents.

Epochs are per reader and the stream is endless unless `max_epochs` is set (OpenCLIP's nominal epochs): ranks
never run dry, so they stay in lockstep for collectives. The DataLoader takes batches from its workers in
turn; after a resume, worker ids are rotated so the turn continues where it stopped.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from typing import Any, Iterator

import pyarrow as pa
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from omnicorpus.train.batch import Batch, collate
from omnicorpus.train.interleave import COLUMNS, Sample, SequenceBuilder
from omnicorpus.train.shards import ShardUnit, open_parquet

log = logging.getLogger(__name__)

STATE_VERSION = 1
START = {"epoch": 0, "window": 0, "position": 0, "skip": 0}


class StreamError(RuntimeError):
    """The stream cannot feed its readers (too few documents, a whole epoch without a usable sample)."""


class ShardStream(IterableDataset):
    def __init__(self, units: list[ShardUnit], builder: SequenceBuilder, *, batch_size: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, workers: int = 0, shuffle_units: int = 4,
                 max_epochs: int | None = None, pad_to_multiple: int = 8):
        super().__init__()
        self.units, self.builder = units, builder
        self.batch_size, self.seed, self.shuffle_units = batch_size, seed, shuffle_units
        self.rank, self.world_size = rank, world_size
        self.workers = max(workers, 1)  # logical readers per rank; 0 DataLoader workers is one reader in-process
        self.loader_workers = workers
        self.max_epochs, self.pad_to_multiple = max_epochs, pad_to_multiple
        documents = sum(unit.num_rows for unit in units)
        if documents < self.readers:
            raise StreamError(f"{documents} documents cannot feed {self.readers} readers "
                              f"({world_size} rank(s) × {self.workers} worker(s)); use fewer workers")
        if len(units) < self.readers:
            log.warning("%d row groups for %d readers: every reader scans all of them (write smaller row groups "
                        "or use fewer workers to read less)", len(units), self.readers)
        self._resume: dict[int, dict[str, Any]] = {}
        self._rotation = 0
        self._cursors: dict[int, dict[str, Any]] = {}
        self._counts: dict[int, dict[str, int]] = {}
        self._next_worker = 0

    @property
    def readers(self) -> int:
        return self.world_size * self.workers

    # -- the plan: which rows a reader reads, in which order -------------------------------------------------

    def plan(self, epoch: int, reader: int) -> list[list[tuple[ShardUnit, list[int] | None]]]:
        """Windows of (unit, rows or None for all rows) for global reader `reader` in `epoch`."""
        order = list(range(len(self.units)))
        random.Random(f"{self.seed}:units:{epoch}").shuffle(order)
        if len(self.units) >= self.readers:
            mine = [(self.units[index], None) for index in order[reader:: self.readers]]
        else:
            mine = []
            for index in order:
                unit = self.units[index]
                rows = [row for row in range(unit.num_rows) if (unit.first_row + row) % self.readers == reader]
                if rows:
                    mine.append((unit, rows))
        return [mine[start: start + self.shuffle_units] for start in range(0, len(mine), self.shuffle_units)]

    def _load(self, window: list[tuple[ShardUnit, list[int] | None]]) -> list[tuple[pa.Table, list, int]]:
        rows = []
        for unit, wanted in window:
            table = open_parquet(unit.path).read_row_group(unit.row_group, columns=COLUMNS)
            ids, texts = table.column("id").to_pylist(), table.column("texts").to_pylist()
            for row in wanted if wanted is not None else range(table.num_rows):
                rows.append((table, {"id": ids[row], "texts": texts[row]}, row))
        return rows

    # -- reading -----------------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        workers = info.num_workers if info is not None else 1
        if workers != self.workers:
            raise StreamError(f"the stream was set up for {self.workers} worker(s) but runs in {workers}")
        logical = ((info.id if info is not None else 0) + self._rotation) % self.workers
        cursor = dict(self._resume.get(logical, START))
        counts = Counter(self._resume.get(logical, {}).get("counts", {}))
        return self._read(logical, self.rank * self.workers + logical, cursor, counts)

    def _read(self, logical: int, reader: int, cursor: dict[str, Any], counts: Counter) -> Iterator[Batch]:
        epoch, window, position, skip = cursor["epoch"], cursor["window"], cursor["position"], cursor["skip"]
        pending: list[Sample] = []
        while self.max_epochs is None or epoch < self.max_epochs:
            windows = self.plan(epoch, reader)
            emitted_this_epoch = window > 0 or position > 0
            while window < len(windows):
                rows = self._load(windows[window])
                order = list(range(len(rows)))
                random.Random(f"{self.seed}:rows:{epoch}:{reader}:{window}").shuffle(order)
                while position < len(order):
                    table, row, index = rows[order[position]]
                    row = {**row, "image_bytes": table.column("image_bytes")[index].as_py()}
                    # A document half-emitted before a resume is rebuilt; its outcomes were counted already.
                    samples = self.builder.build(row, epoch, counts if skip == 0 else Counter())
                    for number in range(skip, len(samples)):
                        pending.append(samples[number])
                        emitted_this_epoch = True
                        if len(pending) == self.batch_size:
                            done = number + 1 == len(samples)
                            after = {"epoch": epoch, "window": window, "position": position + done,
                                     "skip": 0 if done else number + 1}
                            yield self._batch(pending, logical, after, counts)
                            pending = []
                    skip = 0
                    position += 1
                window, position = window + 1, 0
            if not emitted_this_epoch:
                raise StreamError(f"reader {reader} read a whole epoch without one usable sample: {dict(counts)}")
            epoch, window = epoch + 1, 0
        if pending:
            yield self._batch(pending, logical, {"epoch": epoch, "window": 0, "position": 0, "skip": 0}, counts)

    def _batch(self, samples: list[Sample], logical: int, cursor: dict[str, Any], counts: Counter) -> Batch:
        batch = collate(samples, self.builder.special, self.builder.tokens_per_image, self.pad_to_multiple)
        batch.state = {"worker": logical, "cursor": cursor, "counts": dict(counts)}
        return batch

    # -- state ---------------------------------------------------------------------------------------------------

    def record(self, batch: Batch) -> None:
        """Note a batch as consumed (call it for every batch the training loop takes; `batches()` does)."""
        logical = batch.state["worker"]
        self._cursors[logical] = batch.state["cursor"]
        self._counts[logical] = batch.state["counts"]
        self._next_worker = (logical + 1) % self.workers

    def state_dict(self) -> dict[str, Any]:
        """Where every reader of this rank stands after the last consumed batch (JSON-serialisable)."""
        return {
            "version": STATE_VERSION,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "workers": self.workers,
            "next_worker": self._next_worker,
            "readers": {str(logical): {**cursor, "counts": self._counts.get(logical, {})}
                        for logical, cursor in self._cursors.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        expected = {"version": STATE_VERSION, "seed": self.seed, "rank": self.rank,
                    "world_size": self.world_size, "workers": self.workers}
        different = {key: (state.get(key), value) for key, value in expected.items() if state.get(key) != value}
        if different:
            raise StreamError("the saved data state belongs to another set-up (saved, now): "
                              + ", ".join(f"{key} {pair}" for key, pair in different.items()))
        self._resume = {int(logical): cursor for logical, cursor in state["readers"].items()}
        self._cursors = {logical: {k: v for k, v in cursor.items() if k != "counts"}
                         for logical, cursor in self._resume.items()}
        self._counts = {logical: cursor.get("counts", {}) for logical, cursor in self._resume.items()}
        self._rotation = self._next_worker = state["next_worker"]

    def counts(self) -> dict[str, int]:
        """Document and image outcomes over every reader of this rank, up to the last consumed batch."""
        total: Counter = Counter()
        for counts in self._counts.values():
            total.update(counts)
        return dict(sorted(total.items()))


def batches(stream: ShardStream) -> Iterator[Batch]:
    """The stream's batches through a DataLoader (its workers read and collate), each recorded as consumed."""
    loader = DataLoader(stream, batch_size=None, num_workers=stream.loader_workers,
                        prefetch_factor=2 if stream.loader_workers else None,
                        # Its own generator: creating the loader must not draw from the global RNG.
                        generator=torch.Generator().manual_seed(stream.seed))
    for batch in loader:
        stream.record(batch)
        yield batch
