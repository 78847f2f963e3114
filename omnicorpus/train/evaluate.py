"""Evaluation of a trained encoder: zero-shot retrieval and classification through `<soi>` prompts, a linear
probe on frozen pooled features, and collapse monitors (lcl.md §7.5 checks 12 and 13).

Text is embedded as LCL's `encode_text` does: `<sot> text <soi>`, reading `text_projection(ln_final(h))` at
the `<soi>`, the text-first training format. Images are embedded as their L2-normalised pooled latents.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from omnicorpus.train.config import TrainerConfig
from omnicorpus.train.model import LCLModel
from omnicorpus.train.tokenizer import TextTokenizer


def load_trained(output: str | Path, device: str = "cpu") -> tuple[LCLModel, TextTokenizer, TrainerConfig]:
    """The model of the newest checkpoint in a training output folder, with its tokenizer and config."""
    import json

    from omnicorpus.train import checkpoint

    output = Path(output)
    folder = checkpoint.latest(output)
    if folder is None:
        raise FileNotFoundError(f"{output} holds no complete checkpoint")
    config = TrainerConfig.from_dict(json.loads((output / "config.json").read_text())["config"])
    model = LCLModel(config)
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True)["model"])
    return model.to(device).eval(), TextTokenizer.from_file(output / "tokenizer.json"), config


def prompts(tokenizer: TextTokenizer, texts: list[str], context_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded `<sot> text <soi>` rows and the position of each row's `<soi>`."""
    special = tokenizer.special
    rows = [[special.sot] + ids[: context_length - 2] + [special.soi] for ids in tokenizer.encode_batch(texts)]
    ids = torch.full((len(rows), max(map(len, rows))), special.pad, dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row)
    return ids, torch.tensor([len(row) - 1 for row in rows])


def encode_texts(model: LCLModel, tokenizer: TextTokenizer, texts: list[str]) -> torch.Tensor:
    device = next(model.parameters()).device
    ids, positions = prompts(tokenizer, texts, model.lm.positional_embedding.shape[0])
    return model.encode_text(ids.to(device), positions.to(device))


def encode_images(model: LCLModel, images: np.ndarray | torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    return model.encode_image(torch.as_tensor(images).to(device))


def retrieval_accuracy(model: LCLModel, tokenizer: TextTokenizer, images, captions: list[str]) -> tuple[float, float]:
    """Image→text and text→image top-1 accuracy among the given pairs (row i of each belongs together)."""
    similarity = encode_images(model, images) @ encode_texts(model, tokenizer, captions).T
    truth = torch.arange(len(captions), device=similarity.device)
    return ((similarity.argmax(1) == truth).float().mean().item(),
            (similarity.argmax(0) == truth).float().mean().item())


def zero_shot_accuracy(model: LCLModel, tokenizer: TextTokenizer, images, labels: list[int],
                       class_prompts: list[str]) -> float:
    """Top-1 accuracy of classifying each image as the class whose prompt embedding is nearest."""
    similarity = encode_images(model, images) @ encode_texts(model, tokenizer, class_prompts).T
    predicted = similarity.argmax(1).cpu()
    return (predicted == torch.tensor(labels)).float().mean().item()


@torch.no_grad()
def pooled_features(model: LCLModel, images) -> torch.Tensor:
    """The frozen pooled latents (not normalised), the features a probe reads."""
    device = next(model.parameters()).device
    return model.encode_patches(torch.as_tensor(images).to(device))[0].float().cpu()


def linear_probe(train_x: torch.Tensor, train_y: list[int], test_x: torch.Tensor, test_y: list[int],
                 ridge: float = 1e-2) -> float:
    """Accuracy of a ridge-regression classifier on standardised features (closed form, deterministic)."""
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    classes = max(max(train_y), max(test_y)) + 1
    targets = torch.nn.functional.one_hot(torch.tensor(train_y), classes).double()
    design = torch.cat([train_x.double(), torch.ones(len(train_x), 1, dtype=torch.double)], dim=1)
    gram = design.T @ design + ridge * len(train_x) * torch.eye(design.shape[1], dtype=torch.double)
    weights = torch.linalg.solve(gram, design.T @ targets)
    test_design = torch.cat([test_x.double(), torch.ones(len(test_x), 1, dtype=torch.double)], dim=1)
    return ((test_design @ weights).argmax(1) == torch.tensor(test_y)).double().mean().item()


def collapse_monitors(latents: torch.Tensor) -> dict[str, float]:
    """Per-dimension std of the normalised latents (≈ 1/√E when spread out, → 0 on collapse) and their
    effective rank (exp of the entropy of the normalised singular values; 1 means all latents are one)."""
    normalised = torch.nn.functional.normalize(latents.float(), dim=-1)
    singular = torch.linalg.svdvals(normalised - normalised.mean(0))
    weights = singular / singular.sum().clamp_min(1e-12)
    entropy = -(weights * weights.clamp_min(1e-12).log()).sum()
    return {"std_per_dim": normalised.std(0).mean().item(), "effective_rank": entropy.exp().item(),
            "dimensions": latents.shape[1]}
