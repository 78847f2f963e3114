"""Checkpoints: model, optimizer, scheduler and step (one file), plus each rank's data state and RNG states.

Layout under the output folder:
  checkpoints/step-00001000/model.pt      full (unsharded) model and optimizer state, scheduler, step
  checkpoints/step-00001000/rank-00000.pt that rank's stream state (per-reader cursors) and RNG states
  checkpoints/step-00001000/_COMPLETE     written last, after every rank has saved
  latest                                  the name of the newest complete checkpoint
Full state dicts come from torch.distributed.checkpoint's get/set_*_state_dict, which undo DDP and FSDP2
wrapping, so a checkpoint loads into any of the three set-ups with the same world size and workers.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict, set_model_state_dict,
                                                     set_optimizer_state_dict)

from omnicorpus.io.paths import atomic_write_bytes, temporary_path
from omnicorpus.train.distributed import DistributedContext
from omnicorpus.train.stream import ShardStream

log = logging.getLogger(__name__)

COMPLETE = "_COMPLETE"


def _atomic_save(data: Any, path: Path) -> None:
    temporary = temporary_path(path)
    torch.save(data, temporary)
    os.replace(temporary, path)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(output: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, stream: ShardStream,
         context: DistributedContext, config_hash: str, keep: int) -> Path:
    folder = output / "checkpoints" / f"step-{step:08d}"
    folder.mkdir(parents=True, exist_ok=True)
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    # Every rank takes part in gathering the full state (FSDP2 all-gathers); rank 0 writes it.
    model_state = get_model_state_dict(model, options=options)
    optimizer_state = get_optimizer_state_dict(model, optimizer, options=options)
    if context.is_main:
        _atomic_save({"step": step, "config_hash": config_hash, "model": model_state,
                      "optimizer": optimizer_state, "scheduler": scheduler.state_dict()}, folder / "model.pt")
    _atomic_save({"step": step, "data": stream.state_dict(), "rng": rng_state()},
                 folder / f"rank-{context.rank:05d}.pt")
    context.barrier()
    if context.is_main:
        atomic_write_bytes(folder / COMPLETE, b"")
        atomic_write_bytes(output / "latest", folder.name.encode())
        _prune(output / "checkpoints", keep)
    context.barrier()
    return folder


def _prune(folder: Path, keep: int) -> None:
    complete = sorted(path for path in folder.glob("step-*") if (path / COMPLETE).exists())
    for old in complete[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def latest(output: Path) -> Path | None:
    """The newest complete checkpoint: the one `latest` names, else the last complete folder."""
    pointer = output / "latest"
    if pointer.exists():
        folder = output / "checkpoints" / pointer.read_text().strip()
        if (folder / COMPLETE).exists():
            return folder
    complete = sorted(path for path in (output / "checkpoints").glob("step-*") if (path / COMPLETE).exists())
    return complete[-1] if complete else None


def load(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, stream: ShardStream,
         context: DistributedContext, config_hash: str) -> int:
    """Restore everything saved in `folder`; returns the step it was taken at."""
    state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    if state["config_hash"] != config_hash:
        raise ValueError(f"{folder} was saved with another trainer config ({state['config_hash']} != {config_hash})")
    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, state["model"], options=options)
    set_optimizer_state_dict(model, optimizer, state["optimizer"], options=options)
    scheduler.load_state_dict(state["scheduler"])
    rank_file = folder / f"rank-{context.rank:05d}.pt"
    if not rank_file.exists():
        raise ValueError(f"{folder} holds no state for rank {context.rank}: resume with the world size it was "
                         "saved with")
    rank_state = torch.load(rank_file, map_location="cpu", weights_only=False)
    stream.load_state_dict(rank_state["data"])
    set_rng_state(rank_state["rng"])
    log.info("resumed from %s (step %d)", folder, state["step"])
    return int(state["step"])
