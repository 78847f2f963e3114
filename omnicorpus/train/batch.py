"""The batch contract (lcl.md §7.2): samples become padded ids plus flat index tensors computed on the CPU.

Indices are flat positions into the `[B, L]` id tensor (row-major), precomputed here so the model needs no
boolean masks (which break `torch.compile` graphs):
  img_tok_idx  where the N·P image tokens go; images are concatenated in span order, row-major over `ids`
  soi_idx      the `<soi>` positions that get a contrastive pair (those with text context before them)
  soi_img      which image each of those `<soi>` opens
  gen_src      positions t whose next token is a generation target: not `<img>`, `<eoi>` or `<pad>`
  gen_tgt      ids[t + 1] at those positions
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from omnicorpus.train.interleave import Sample
from omnicorpus.train.tokenizer import SpecialIds

TENSOR_FIELDS = ("ids", "images", "img_tok_idx", "soi_idx", "soi_img", "gen_src", "gen_tgt")


@dataclass
class Batch:
    ids: torch.Tensor  # long [B, L]
    images: torch.Tensor  # uint8 [N, H, W, 3], in span order
    img_tok_idx: torch.Tensor  # long [N * P]
    soi_idx: torch.Tensor  # long [M]
    soi_img: torch.Tensor  # long [M]
    gen_src: torch.Tensor  # long [T]
    gen_tgt: torch.Tensor  # long [T]
    doc_ids: list[str]
    text_tokens: int  # tokens that are neither padding nor image placeholders
    # The producing reader's position after this batch (stream.py); None for batches built by hand.
    state: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_pairs(self) -> int:
        return int(self.soi_idx.numel())

    def to(self, device: torch.device | str) -> "Batch":
        moved = {name: getattr(self, name).to(device, non_blocking=True) for name in TENSOR_FIELDS}
        return Batch(**moved, doc_ids=self.doc_ids, text_tokens=self.text_tokens, state=self.state)

    def digest(self) -> str:
        """A short hash of the ids and pixels: equal batches, equal digests (determinism and resume checks)."""
        hasher = hashlib.sha1()
        for name in ("ids", "images"):
            tensor = getattr(self, name).detach().cpu().contiguous()
            hasher.update(str(tuple(tensor.shape)).encode())
            hasher.update(tensor.numpy().tobytes())
        return hasher.hexdigest()[:16]


def collate(samples: list[Sample], special: SpecialIds, tokens_per_image: int, pad_to_multiple: int = 8) -> Batch:
    """Right-pad the samples to the longest (rounded up to a multiple, which keeps compiled shapes few)."""
    if not samples:
        raise ValueError("cannot collate an empty batch")
    longest = max(len(sample.ids) for sample in samples)
    length = -(-longest // pad_to_multiple) * pad_to_multiple
    ids = np.full((len(samples), length), special.pad, dtype=np.int64)
    for row, sample in enumerate(samples):
        ids[row, : len(sample.ids)] = sample.ids
    images = np.concatenate([sample.images for sample in samples])
    flat = ids.reshape(-1)
    img_tok_idx = np.flatnonzero(flat == special.img)
    soi_all = np.flatnonzero(flat == special.soi)
    if len(img_tok_idx) != len(images) * tokens_per_image or len(soi_all) != len(images):
        raise ValueError(f"{len(soi_all)} image spans and {len(img_tok_idx)} <img> tokens for {len(images)} "
                         f"images of {tokens_per_image} tokens: a sample's ids and images disagree")
    # A <soi> at a document start (position 0, or right after <sot>) has no context to contrast with.
    column = soi_all % length
    previous = flat[np.maximum(soi_all - 1, 0)]
    contrastive = (column > 0) & ~((column == 1) & (previous == special.sot))
    targets = np.zeros_like(ids, dtype=bool)
    targets[:, :-1] = ~np.isin(ids[:, 1:], (special.img, special.eoi, special.pad))
    gen_src = np.flatnonzero(targets)
    text_tokens = int(np.isin(ids, (special.pad, special.img), invert=True).sum())
    return Batch(
        ids=torch.from_numpy(ids),
        images=torch.from_numpy(images),
        img_tok_idx=torch.from_numpy(img_tok_idx),
        soi_idx=torch.from_numpy(soi_all[contrastive]),
        soi_img=torch.from_numpy(np.flatnonzero(contrastive)),
        gen_src=torch.from_numpy(gen_src),
        gen_tgt=torch.from_numpy(flat[gen_src + 1]),
        doc_ids=[sample.doc_id for sample in samples],
        text_tokens=text_tokens,
    )
