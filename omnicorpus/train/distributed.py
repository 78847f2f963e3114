"""Process group, device and model wrapping (DDP or FSDP2), driven by torchrun's environment variables."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from omnicorpus.train.config import TrainConfigError
from omnicorpus.train.model import LCLModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    mode: str  # "none", "ddp" or "fsdp2"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if dist.is_initialized():
            dist.barrier()


def setup(mode: str = "auto") -> DistributedContext:
    """Read RANK / WORLD_SIZE / LOCAL_RANK (set by torchrun) and start the process group when needed.

    "auto" is DDP under torchrun with more than one process, else a single process. FSDP2 or DDP on one process
    starts a one-member group (for comparing them on one GPU). NCCL on CUDA, gloo on the CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if mode == "auto":
        mode = "ddp" if world_size > 1 else "none"
    if mode == "none" and world_size > 1:
        raise TrainConfigError(f"{world_size} processes were started but optim.distributed is 'none'; "
                               "use ddp or fsdp2")
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if mode != "none" and not dist.is_initialized():
        if world_size == 1:
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", str(_free_port()))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, device, mode)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: LCLModel, context: DistributedContext, *, bf16: bool, compile_blocks: bool) -> nn.Module:
    """Compile per block (lcl.md §7.4: gathers, masks and index scatters stay eager), then shard or replicate."""
    blocks = [*model.visual.blocks, *model.lm.blocks]
    if compile_blocks:
        for block in blocks:
            block.compile()
    if context.mode == "ddp":
        device_ids = [context.device.index] if context.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if context.mode == "fsdp2":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        # Parameters in bf16 for compute, gradients reduced in fp32 (lcl.md §7.4).
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else \
            MixedPrecisionPolicy()
        for block in blocks:
            fully_shard(block, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
    return model
