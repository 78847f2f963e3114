"""The training loop, top to bottom: config → output folder and tokenizer → data → model → optimizer → loop.

Run it with `omnicorpus train --shards OUT --preset tiny --max-steps 200 --output runs/tiny` (one process), or
under `torchrun --nproc-per-node N` for DDP / FSDP2. Rerunning the same command resumes from the newest
checkpoint in the output folder; `--stop-at-step K` ends a run early (a planned interruption, saved).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from omnicorpus.io.paths import atomic_write_json
from omnicorpus.train import checkpoint, distributed
from omnicorpus.train.config import TrainConfigError, TrainerConfig
from omnicorpus.train.interleave import SequenceBuilder
from omnicorpus.train.loss import lcl_loss
from omnicorpus.train.model import LCLModel, train_flops
from omnicorpus.train.shards import find_shards, list_units
from omnicorpus.train.stream import ShardStream, batches
from omnicorpus.train.tokenizer import TextTokenizer, shard_texts, train_tokenizer

log = logging.getLogger(__name__)

# Dense bf16 peak of one GPU, for MFU (vendor figures; lcl.md §6). Matched against torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "GH200": 989.0, "A100": 312.0}
# The output folder's files that belong to one run (removed by --overwrite).
RUN_FILES = ("config.json", "tokenizer.json", "log.jsonl", "latest", "checkpoints")


@dataclass
class TrainResult:
    output: str
    step: int
    metrics: dict[str, Any]


def train(config: TrainerConfig, shards: list[str], output: str | Path, *, tokenizer_path: str | None = None,
          stop_at_step: int | None = None, overwrite: bool = False, peak_tflops: float | None = None) -> TrainResult:
    context = distributed.setup(config.optim.distributed)
    try:
        return _train(config, shards, Path(output), context, tokenizer_path, stop_at_step, overwrite, peak_tflops)
    finally:
        distributed.cleanup()


def _train(config, shards, output, context, tokenizer_path, stop_at_step, overwrite, peak_tflops) -> TrainResult:
    optim, device = config.optim, context.device
    bf16 = optim.precision == "bf16" or (optim.precision == "auto" and device.type == "cuda")

    # -- output folder, shards, tokenizer -------------------------------------------------------------------
    paths = find_shards(shards)
    units = list_units(paths)
    if overwrite and context.is_main:
        for name in RUN_FILES:
            target = output / name
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    context.barrier()
    tokenizer = prepare_tokenizer(config, paths, output, tokenizer_path, context)
    config = dataclasses.replace(config, lm=dataclasses.replace(config.lm, vocab_size=tokenizer.vocab_size))
    config_hash = config.identity_hash()
    check_output(output, config, paths, context)

    # -- data ----------------------------------------------------------------------------------------------
    torch.manual_seed(optim.seed)
    builder = SequenceBuilder(tokenizer, tokens_per_image=config.vision.tokens_per_image,
                              context_length=config.lm.context_length, image_size=config.vision.image_size,
                              layout=config.data.layout, max_images=config.data.max_images,
                              min_images=config.data.min_images, img_first_prob=config.data.img_first_prob,
                              augment=config.data.augment, seed=optim.seed)
    stream = ShardStream(units, builder, batch_size=config.data.batch_size, seed=optim.seed, rank=context.rank,
                         world_size=context.world_size, workers=config.data.workers,
                         shuffle_units=config.data.shuffle_units)

    # -- model and optimizer ---------------------------------------------------------------------------------
    model = LCLModel(config).to(device)
    wrapped = distributed.wrap(model, context, bf16=bf16, compile_blocks=optim.compile)
    optimizer = torch.optim.AdamW(param_groups(model, optim.weight_decay), lr=optim.lr,
                                  betas=(optim.beta1, optim.beta2), eps=optim.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(optim.warmup_steps, optim.max_steps))
    step = 0
    if (folder := checkpoint.latest(output)) is not None:
        step = checkpoint.load(folder, model, optimizer, scheduler, stream, context, config_hash)
    if context.is_main:
        parameters = sum(p.numel() for p in model.parameters())
        log.info("preset %s: %.1fM parameters, vocabulary %d, %d shard(s), %d row group(s), device %s, %s%s",
                 config.preset, parameters / 1e6, tokenizer.vocab_size, len(paths), len(units), device,
                 "bf16" if bf16 else "fp32", f", {context.mode} × {context.world_size}" if context.mode != "none"
                 else "")

    # -- the loop ------------------------------------------------------------------------------------------------
    peak = peak_flops(device, peak_tflops)
    metrics: dict[str, Any] = {}
    window = {"tokens": 0, "images": 0, "flops": 0.0, "since": time.perf_counter()}
    data = batches(stream)
    while step < optim.max_steps:
        batch = next(data)
        digest = batch.digest() if (step + 1) % optim.log_every == 0 else None
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            output_tensors = wrapped(batch)
        result = lcl_loss(output_tensors, batch.gen_tgt, config.loss)
        result.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip) if optim.grad_clip else None
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        model.clamp_logit_scale(config.loss.max_logit_scale)
        step += 1

        window["tokens"] += batch.text_tokens * context.world_size
        window["images"] += batch.num_images * context.world_size
        window["flops"] += train_flops(config, batch)
        if step % optim.log_every == 0 or step == optim.max_steps:
            elapsed = max(time.perf_counter() - window["since"], 1e-9)
            metrics = {
                "step": step,
                "loss": round(result.generation.item() * config.loss.generation_weight
                              + result.contrastive.item() * config.loss.contrastive_weight, 6),
                "l_gen": round(result.generation.item(), 6),
                "l_con": round(result.contrastive.item(), 6),
                "acc_i2t": round(result.acc_i2t, 4),
                "acc_t2i": round(result.acc_t2i, 4),
                "pairs": result.pairs,
                "logit_scale": round(math.exp(output_tensors.logit_scale.item()), 4),
                "lr": scheduler.get_last_lr()[0],
                "grad_norm": None if grad_norm is None else round(float(grad_norm), 4),
                "tokens_per_s": round(window["tokens"] / elapsed, 1),
                "images_per_s": round(window["images"] / elapsed, 1),
                "mfu": None if peak is None else round(window["flops"] / elapsed / peak, 4),
                "batch": digest,
            }
            if context.is_main:
                with open(output / "log.jsonl", "a") as handle:
                    handle.write(json.dumps(metrics) + "\n")
                log.info("step %d  loss %.4f  L_gen %.4f  L_con %.4f  acc %.2f/%.2f  scale %.1f  %.0f tok/s  "
                         "%.0f img/s%s", step, metrics["loss"], metrics["l_gen"], metrics["l_con"],
                         metrics["acc_i2t"], metrics["acc_t2i"], metrics["logit_scale"], metrics["tokens_per_s"],
                         metrics["images_per_s"], "" if peak is None else f"  MFU {metrics['mfu']:.1%}")
            window = {"tokens": 0, "images": 0, "flops": 0.0, "since": time.perf_counter()}
        if step % optim.save_every == 0 or step == optim.max_steps or step == stop_at_step:
            checkpoint.save(output, step, model, optimizer, scheduler, stream, context, config_hash,
                            optim.keep_checkpoints)
        if step == stop_at_step:
            break
    if context.is_main:
        log.info("data: %s", stream.counts())
    return TrainResult(str(output), step, metrics)


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """LCL / OpenCLIP: decay matrices and embeddings; not norms, biases, the CLS embedding or logit_scale."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim < 2 or "logit_scale" in name else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(warmup_steps: int, max_steps: int):
    """Linear warm-up over `warmup_steps` (OpenCLIP: lr · (step + 1) / warmup), then cosine decay to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return factor


def peak_flops(device: torch.device, peak_tflops: float | None) -> float | None:
    if peak_tflops is not None:
        return peak_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    log.warning("no peak FLOPs known for %s: pass --peak-tflops to get MFU", name)
    return None


def prepare_tokenizer(config: TrainerConfig, paths: list[str], output: Path, tokenizer_path: str | None,
                      context: distributed.DistributedContext) -> TextTokenizer:
    """The given tokenizer, else the run's own (output/tokenizer.json), else one trained on the shards."""
    target = output / "tokenizer.json"
    if context.is_main:
        if tokenizer_path is not None:
            tokenizer = TextTokenizer.from_file(tokenizer_path)
            if target.exists() and target.read_text() != tokenizer.tokenizer.to_str():
                raise TrainConfigError(f"{output} was trained with another tokenizer; use a new output folder "
                                       "or --overwrite")
            tokenizer.save(target)
        elif not target.exists():
            log.info("training a %s tokenizer (vocabulary %d) on the shards", config.data.tokenizer_kind,
                     config.data.tokenizer_vocab_size)
            train_tokenizer(shard_texts(paths), config.data.tokenizer_vocab_size,
                            config.data.tokenizer_kind).save(target)
    context.barrier()
    return TextTokenizer.from_file(target)


def check_output(output: Path, config: TrainerConfig, paths: list[str], context) -> None:
    """The output folder holds this run (same config and shards) or nothing yet."""
    record = {"config": config.to_dict(), "config_hash": config.identity_hash(), "shards": paths}
    existing = output / "config.json"
    if existing.exists():
        previous = json.loads(existing.read_text())
        if previous.get("config_hash") != record["config_hash"] or previous.get("shards") != paths:
            raise TrainConfigError(f"{output} holds a run with another config or other shards; use a new output "
                                   "folder or --overwrite")
    elif context.is_main:
        atomic_write_json(existing, record)
    context.barrier()
