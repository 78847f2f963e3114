"""The LCL loss: L = 1.0 · L_gen + 0.1 · L_con (OpenGVLab/LCL `loss.py`, lcl.md §2.3 and §7.3).

L_con is symmetric InfoNCE between each image's pooled latent and the LM feature at its `<soi>`, over every
pair of the global batch: features are gathered from all ranks *with* gradient (LCL --gather-with-grad),
ranks with different pair counts are padded to the largest and the padding is cut off again, and logits,
normalisation and cross-entropy run in fp32. L_gen is next-token cross-entropy.

Reduction "global" (the default) makes both terms means over the global batch, scaled by the world size so
that DDP's gradient averaging yields exactly the gradient of one process on the concatenated batch, whatever
the per-rank counts. Reduction "rank" is LCL's: per-rank means, averaged by DDP. Either way a rank or batch
without pairs gives a zero term that still touches every parameter (LCL's code gives NaN there).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from omnicorpus.train.config import LossConfig
from omnicorpus.train.model import LCLOutput


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and returns this rank's slice (LCL's GatherLayer)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_rows(local: torch.Tensor, counts: list[int]) -> torch.Tensor:
    """The rows of every rank in rank order, differentiable; `counts` are the per-rank row counts."""
    if not distributed():
        return local
    largest = max(counts)
    padded = F.pad(local, (0, 0, 0, largest - local.shape[0]))
    gathered = _GatherWithGrad.apply(padded)
    return torch.cat([gathered[rank * largest: rank * largest + count] for rank, count in enumerate(counts)])


def all_counts(count: int, device: torch.device) -> list[int]:
    if not distributed():
        return [count]
    counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, torch.tensor([count], dtype=torch.long, device=device))
    return [int(c.item()) for c in counts]


def global_sum(value: torch.Tensor) -> torch.Tensor:
    if distributed():
        value = value.clone()
        dist.all_reduce(value)
    return value


@dataclass
class LossResult:
    loss: torch.Tensor  # what this rank backpropagates
    generation: torch.Tensor  # L_gen over the global batch (detached, for logs)
    contrastive: torch.Tensor  # L_con over the global batch (detached, for logs)
    acc_i2t: float
    acc_t2i: float
    pairs: int  # M_global
    targets: int  # generation targets in the global batch


def lcl_loss(output: LCLOutput, gen_targets: torch.Tensor, config: LossConfig) -> LossResult:
    device = output.gen_logits.device
    world = dist.get_world_size() if distributed() else 1
    # Contrastive: local rows against the global columns; labels are this rank's offset into them.
    text = F.normalize(output.text_features.float(), dim=-1)
    image = F.normalize(output.pooled.float(), dim=-1)
    pair_counts = all_counts(text.shape[0], device)
    total_pairs = sum(pair_counts)
    scale = output.logit_scale.float().exp().reshape(())
    if total_pairs:
        all_text, all_image = gather_rows(text, pair_counts), gather_rows(image, pair_counts)
        offset = sum(pair_counts[: dist.get_rank()]) if distributed() else 0
        labels = torch.arange(text.shape[0], device=device) + offset
        with torch.autocast(device.type, enabled=False):
            logits_i2t = scale * image @ all_text.T
            logits_t2i = scale * text @ all_image.T
        contrastive_sum = (F.cross_entropy(logits_i2t, labels, reduction="sum")
                           + F.cross_entropy(logits_t2i, labels, reduction="sum")) / 2
        correct = torch.stack([(logits_i2t.argmax(1) == labels).sum(), (logits_t2i.argmax(1) == labels).sum()])
    else:
        contrastive_sum = torch.zeros((), device=device)
        correct = torch.zeros(2, dtype=torch.long, device=device)
    # Zero terms keep every parameter in the graph, so DDP and FSDP see the same graph on every rank and step.
    contrastive_sum = contrastive_sum + 0.0 * (scale + text.sum() + image.sum())
    generation_sum = F.cross_entropy(output.gen_logits.float(), gen_targets, reduction="sum")
    targets = int(global_sum(torch.tensor(gen_targets.numel(), device=device)).item())

    if config.reduction == "global":
        generation_part = generation_sum / max(targets, 1) * world
        contrastive_part = contrastive_sum / max(total_pairs, 1) * world
    else:
        generation_part = generation_sum / max(gen_targets.numel(), 1)
        contrastive_part = contrastive_sum / max(text.shape[0], 1)
    loss = config.generation_weight * generation_part + config.contrastive_weight * contrastive_part

    sums = global_sum(torch.stack([generation_sum.detach(), contrastive_sum.detach()]))
    correct = global_sum(correct)
    return LossResult(
        loss=loss,
        generation=sums[0] / max(targets, 1),
        contrastive=sums[1] / max(total_pairs, 1),
        acc_i2t=float(correct[0]) / max(total_pairs, 1),
        acc_t2i=float(correct[1]) / max(total_pairs, 1),
        pairs=total_pairs,
        targets=targets,
    )
