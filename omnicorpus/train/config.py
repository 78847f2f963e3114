"""Trainer configuration: frozen dataclasses, the `tiny` and `b16` presets, and `section.key=value` overrides.

No torch here, so the CLI can build and check a config before torch is imported. Numbers that come from LCL
cite where (OpenGVLab/LCL code, scripts and configs, as summarised in docs/trainer.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any

LAYOUTS = ("interleaved", "pairs")
PRECISIONS = ("auto", "fp32", "bf16")
DISTRIBUTED = ("auto", "none", "ddp", "fsdp2")
REDUCTIONS = ("global", "rank")
TOKENIZER_KINDS = ("bpe", "word")


class TrainConfigError(ValueError):
    """A trainer setting is invalid; the message names it and what is allowed."""


def _check_positive(section: str, config: Any, *names: str) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise TrainConfigError(f"{section}.{name} must be > 0, got {getattr(config, name)}")


def _check_choice(section: str, name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise TrainConfigError(f"{section}.{name} must be one of {allowed}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class VisionConfig:
    image_size: int
    patch_size: int
    width: int
    layers: int
    heads: int

    def __post_init__(self):
        _check_positive("vision", self, "image_size", "patch_size", "width", "layers", "heads")
        if self.image_size % self.patch_size:
            raise TrainConfigError(f"vision.image_size {self.image_size} is not a multiple of "
                                   f"vision.patch_size {self.patch_size}")
        if self.width % self.heads:
            raise TrainConfigError(f"vision.width {self.width} is not a multiple of vision.heads {self.heads}")

    @property
    def tokens_per_image(self) -> int:
        """Patch tokens per image, P = (image_size / patch_size)^2: 16 for tiny, 196 for B/16 (LCL --num-img-token)."""
        return (self.image_size // self.patch_size) ** 2


@dataclass(frozen=True, kw_only=True)
class LanguageModelConfig:
    width: int
    layers: int
    heads: int
    # Longest sequence in tokens, image spans included (P + 2 tokens per image).
    context_length: int
    # 0 until the tokenizer is known; the trainer fills it from the tokenizer.
    vocab_size: int = 0

    def __post_init__(self):
        _check_positive("lm", self, "width", "layers", "heads", "context_length")
        if self.width % self.heads:
            raise TrainConfigError(f"lm.width {self.width} is not a multiple of lm.heads {self.heads}")


@dataclass(frozen=True, kw_only=True)
class LossConfig:
    # LCL scripts: --lcl-generation-loss-weight 1.0, --lcl-contrastive-loss-weight 0.1.
    generation_weight: float = 1.0
    contrastive_weight: float = 0.1
    # LCL / OpenCLIP: logit_scale starts at ln(1/0.07) and is clamped to [0, ln 100] after every step.
    init_logit_scale: float = math.log(1 / 0.07)
    max_logit_scale: float = math.log(100)
    # Heads of the attentive pooler (LCL B/16: 12 = width / 64).
    pool_heads: int = 12
    # "global": every term is a mean over the global batch, so 2 ranks give the gradient of 1 process on the
    # concatenated batch whatever their image counts; "rank": LCL's per-rank means, averaged by DDP.
    reduction: str = "global"

    def __post_init__(self):
        _check_positive("loss", self, "pool_heads", "max_logit_scale")
        if self.generation_weight < 0 or self.contrastive_weight < 0:
            raise TrainConfigError("loss.generation_weight and loss.contrastive_weight must be >= 0")
        _check_choice("loss", "reduction", self.reduction, REDUCTIONS)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    # "interleaved": one sequence per document, images in slot order (OBELICS / OmniCorpus layout);
    # "pairs": one (caption, image) sequence per image, LCL's InterleavedWrapper for pair data.
    layout: str = "interleaved"
    # Documents (or pairs) per batch on each rank.
    batch_size: int = 16
    # LCL MMC4 loader: at most 6 images per document, at least 1 (documents with fewer are skipped, counted).
    max_images: int = 6
    min_images: int = 1
    # LCL InterleavedWrapper: --img-first-prob 0.5 (pairs layout only).
    img_first_prob: float = 0.5
    # OpenCLIP training augmentation: RandomResizedCrop(scale=(0.9, 1.0)); off gives a centre crop.
    augment: bool = True
    # Row groups read together and emitted in a seeded random order (the per-worker shuffle buffer).
    shuffle_units: int = 4
    # DataLoader worker processes per rank (0 reads in the training process).
    workers: int = 2
    # Tokenizer trained by `omnicorpus train tokenizer` (or on the fly) when none is given.
    tokenizer_kind: str = "bpe"
    tokenizer_vocab_size: int = 32000

    def __post_init__(self):
        _check_choice("data", "layout", self.layout, LAYOUTS)
        _check_choice("data", "tokenizer_kind", self.tokenizer_kind, TOKENIZER_KINDS)
        _check_positive("data", self, "batch_size", "max_images", "shuffle_units", "tokenizer_vocab_size")
        if self.min_images < 0 or self.workers < 0:
            raise TrainConfigError("data.min_images and data.workers must be >= 0")
        if not 0.0 <= self.img_first_prob <= 1.0:
            raise TrainConfigError(f"data.img_first_prob must be in [0, 1], got {self.img_first_prob}")


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    # LCL LAION scripts: lr 5e-4 (OpenCLIP default), weight decay 0.2, AdamW betas (0.9, 0.98), eps 1e-6,
    # 2000 warm-up steps then cosine decay to 0.
    lr: float = 5e-4
    weight_decay: float = 0.2
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    warmup_steps: int = 2000
    max_steps: int = 10_000
    # LCL clips nothing; 0 turns clipping off here too.
    grad_clip: float = 0.0
    precision: str = "auto"
    compile: bool = False
    distributed: str = "auto"
    seed: int = 0
    log_every: int = 10
    save_every: int = 1000
    keep_checkpoints: int = 2

    def __post_init__(self):
        _check_positive("optim", self, "lr", "max_steps", "log_every", "save_every", "keep_checkpoints")
        if self.warmup_steps < 0 or self.weight_decay < 0 or self.grad_clip < 0:
            raise TrainConfigError("optim.warmup_steps, optim.weight_decay and optim.grad_clip must be >= 0")
        _check_choice("optim", "precision", self.precision, PRECISIONS)
        _check_choice("optim", "distributed", self.distributed, DISTRIBUTED)


@dataclass(frozen=True, kw_only=True)
class TrainerConfig:
    preset: str
    vision: VisionConfig
    lm: LanguageModelConfig
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def __post_init__(self):
        if self.loss.pool_heads and self.lm.width % self.loss.pool_heads:
            raise TrainConfigError(f"lm.width {self.lm.width} is not a multiple of loss.pool_heads "
                                   f"{self.loss.pool_heads} (the pooler projects into the LM width)")
        span = self.vision.tokens_per_image + 2
        if self.lm.context_length < span + 2:
            raise TrainConfigError(f"lm.context_length {self.lm.context_length} cannot hold one image span "
                                   f"(<soi> + {self.vision.tokens_per_image} <img> + <eoi>) plus <sot> and <eot>")

    @property
    def embed_dim(self) -> int:
        """Width of the contrastive space; LCL's released configs set it to the LM width (pooled latents live
        in the LM input space)."""
        return self.lm.width

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainerConfig":
        unknown = set(data) - {"preset", *_SECTION_CLASSES}
        if unknown:
            raise TrainConfigError(f"unknown trainer config sections {sorted(unknown)}")
        sections = {name: section_class(**data[name]) for name, section_class in _SECTION_CLASSES.items()}
        return cls(preset=data["preset"], **sections)

    def identity_hash(self) -> str:
        """Hash of everything that must match to resume (all but the logging and checkpoint cadence)."""
        data = self.to_dict()
        for key in ("log_every", "save_every", "keep_checkpoints"):
            data["optim"].pop(key)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


_SECTION_CLASSES: dict[str, type] = {
    "vision": VisionConfig,
    "lm": LanguageModelConfig,
    "loss": LossConfig,
    "data": DataConfig,
    "optim": OptimConfig,
}


def _tiny() -> TrainerConfig:
    """CPU preset (lcl.md §7.1 tiny-cpu): a 2-layer ViT, patch 8 on 32 px (16 visual tokens), a 2-layer LM of
    width 64. A step of 16 documents takes tens of milliseconds on one core."""
    return TrainerConfig(
        preset="tiny",
        vision=VisionConfig(image_size=32, patch_size=8, width=64, layers=2, heads=4),
        lm=LanguageModelConfig(width=64, layers=2, heads=4, context_length=128),
        loss=LossConfig(pool_heads=4),
        data=DataConfig(batch_size=16, workers=1, tokenizer_vocab_size=1024),
        # A model this small learns at a higher rate and needs no long warm-up.
        optim=OptimConfig(lr=2e-3, weight_decay=0.05, warmup_steps=20, max_steps=200, grad_clip=1.0,
                          log_every=10, save_every=100),
    )


def _b16() -> TrainerConfig:
    """LCL_ViT-B-16_laion (OpenGVLab/LCL model_configs): ViT-B/16 at 224 px (196 tokens), a 12-layer LM of
    width 768 with 12 heads, context 280, pooler 768 -> 768 with 12 heads; trained with bf16 autocast."""
    return TrainerConfig(
        preset="b16",
        vision=VisionConfig(image_size=224, patch_size=16, width=768, layers=12, heads=12),
        lm=LanguageModelConfig(width=768, layers=12, heads=12, context_length=280),
        loss=LossConfig(pool_heads=12),
        # LCL's global batch size is unpublished; 128 per GPU is a starting point (memory not yet measured).
        data=DataConfig(batch_size=128, workers=8, tokenizer_vocab_size=32000),
        optim=OptimConfig(),
    )


PRESETS = {"tiny": _tiny, "b16": _b16}


def preset(name: str) -> TrainerConfig:
    if name not in PRESETS:
        raise TrainConfigError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


def with_overrides(config: TrainerConfig, overrides: dict[str, Any]) -> TrainerConfig:
    """Apply {"section.key": value} overrides; string values are converted to the field's type."""
    sections: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section not in _SECTION_CLASSES or not name:
            raise TrainConfigError(f"override {key!r}: expected SECTION.KEY with SECTION one of "
                                   f"{sorted(_SECTION_CLASSES)}")
        section_class = _SECTION_CLASSES[section]
        types = typing.get_type_hints(section_class)
        if name not in types:
            raise TrainConfigError(f"unknown key {key!r}; {section} has {sorted(types)}")
        sections.setdefault(section, {})[name] = _convert(key, value, types[name])
    replaced = {section: dataclasses.replace(getattr(config, section), **values)
                for section, values in sections.items()}
    return dataclasses.replace(config, **replaced)


def _convert(key: str, value: Any, target: type) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if target is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(value)
            return value.lower() in ("true", "1", "yes")
        if target in (int, float):
            return target(value)
    except ValueError:
        raise TrainConfigError(f"{key}: {value!r} is not a valid {target.__name__}") from None
    return value


def parse_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise TrainConfigError(f"--set expects SECTION.KEY=VALUE, got {text!r}")
    return key.strip(), value.strip()
