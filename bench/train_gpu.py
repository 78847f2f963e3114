"""GPU checks of the LCL trainer in one short script (lcl.md §7.6), for when a GPU is available.

    python bench/train_gpu.py                     # all checks, tiny and b16, on cuda:0
    python bench/train_gpu.py --cpu               # no GPU: the CPU-compatible part (tiny; no compile, no MFU)

1. bf16 autocast vs fp32, first step from the same weights: relative loss difference (target < 1e-2) and the
   cosine similarity of the flattened gradients (target > 0.99).
2. torch.compile (per block) vs eager: the largest relative loss difference over --steps steps.
3. DDP vs FSDP2 on one device (a one-process group): the largest relative loss difference over a few steps.
4. Throughput per preset: steps/s, tokens/s, images/s and MFU (train FLOPs from model.train_flops over the
   device's dense bf16 peak; lcl.md §6 puts CLIP at ~11-13 % on A100s).
Batches are synthetic documents (rendered shapes with captions) built in memory through the trainer's own
SequenceBuilder and collate, so data loading is not what is measured. Prints one JSON object at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections import Counter

import torch
import torch.nn.functional as F

from omnicorpus.train import distributed, synthetic
from omnicorpus.train.batch import collate
from omnicorpus.train.config import preset
from omnicorpus.train.interleave import SequenceBuilder
from omnicorpus.train.loss import lcl_loss
from omnicorpus.train.model import LCLModel, train_flops
from omnicorpus.train.tokenizer import train_tokenizer
from omnicorpus.train.train import param_groups, peak_flops


def make_batches(name: str, count: int, batch_size: int | None):
    corpus = synthetic.make_corpus(64, seed=0)
    tokenizer = train_tokenizer((t for doc in corpus for t in doc.texts if t), 200, "word")
    config = preset(name)
    config = dataclasses.replace(config, lm=dataclasses.replace(config.lm, vocab_size=tokenizer.vocab_size))
    size = batch_size or config.data.batch_size
    build = SequenceBuilder(tokenizer, tokens_per_image=config.vision.tokens_per_image,
                            context_length=config.lm.context_length, image_size=config.vision.image_size)
    documents = synthetic.make_corpus(size * count, seed=1, max_images=2)
    samples = [s for doc in documents for s in build.build(doc.to_row(), 0, Counter())]
    batches = [collate(samples[i * size:(i + 1) * size], tokenizer.special, config.vision.tokens_per_image)
               for i in range(count)]
    return config, batches


def fresh(config, device, seed=0):
    torch.manual_seed(seed)
    return LCLModel(config).to(device)


def step(model, optimizer, config, batch, bf16):
    with torch.autocast(batch.ids.device.type, dtype=torch.bfloat16, enabled=bf16):
        output = model(batch)
    result = lcl_loss(output, batch.gen_tgt, config.loss)
    result.loss.backward()
    if optimizer is not None:
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        (model.module if hasattr(model, "module") else model).clamp_logit_scale(config.loss.max_logit_scale)
    return float(result.loss.detach())


def optimizer_for(model, config):
    return torch.optim.AdamW(param_groups(model, config.optim.weight_decay), lr=1e-4,
                             betas=(config.optim.beta1, config.optim.beta2), eps=config.optim.eps)


def bf16_vs_fp32(config, batch, device):
    losses, grads = {}, {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        model = fresh(config, device)
        losses[name] = step(model, None, config, batch, bf16)
        grads[name] = torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])
    return {"relative_loss_difference": abs(losses["bf16"] - losses["fp32"]) / abs(losses["fp32"]),
            "gradient_cosine": float(F.cosine_similarity(grads["bf16"], grads["fp32"], dim=0)),
            "losses": losses}


def compare_runs(config, batches, device, bf16, variants):
    curves = {}
    for name, prepare in variants.items():
        model = fresh(config, device)
        wrapped = prepare(model)
        optimizer = optimizer_for(model, config)
        curves[name] = [step(wrapped, optimizer, config, batch.to(device), bf16) for batch in batches]
    first, second = curves.values()
    return {"max_relative_loss_difference": max(abs(a - b) / abs(a) for a, b in zip(first, second)),
            "curves": curves}


def throughput(config, batches, device, bf16, compile_blocks, peak):
    model = fresh(config, device)
    if compile_blocks:
        for block in [*model.visual.blocks, *model.lm.blocks]:
            block.compile()
    optimizer = optimizer_for(model, config)
    on_device = [batch.to(device) for batch in batches]
    for batch in on_device[:3]:  # warm-up (and compilation)
        step(model, optimizer, config, batch, bf16)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for batch in on_device[3:]:
        step(model, optimizer, config, batch, bf16)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    measured = on_device[3:]
    flops = sum(train_flops(config, batch) for batch in measured)
    return {"steps_per_s": len(measured) / elapsed,
            "tokens_per_s": sum(b.text_tokens for b in measured) / elapsed,
            "images_per_s": sum(b.num_images for b in measured) / elapsed,
            "tflops_per_s": flops / elapsed / 1e12,
            "mfu": None if peak is None else flops / elapsed / peak,
            "batch_size": batches[0].ids.shape[0],
            "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="run the CPU-compatible checks when there is no GPU")
    parser.add_argument("--steps", type=int, default=20, help="steps for compile vs eager and throughput")
    parser.add_argument("--presets", nargs="+", default=["tiny", "b16"])
    parser.add_argument("--batch-size", type=int, help="override the presets' per-device batch size")
    parser.add_argument("--peak-tflops", type=float, help="device peak for MFU (default: known GPUs)")
    args = parser.parse_args(argv)
    if torch.cuda.is_available():
        device = torch.device("cuda", 0)
        presets, compile_ok = args.presets, True
    elif args.cpu:
        device = torch.device("cpu")
        presets, compile_ok = ["tiny"], False
        print("no CUDA GPU: running the CPU-compatible checks (tiny preset, bf16 autocast on the CPU, eager "
              "only, no MFU); compile vs eager, b16 throughput and MFU need a GPU", file=sys.stderr)
    else:
        print("bench/train_gpu.py needs a CUDA GPU (torch.cuda.is_available() is False); "
              "pass --cpu to run the CPU-compatible checks", file=sys.stderr)
        return 2
    peak = peak_flops(device, args.peak_tflops)
    report = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "peak_tflops": None if peak is None else peak / 1e12}

    config, batches = make_batches("tiny", args.steps, args.batch_size)
    report["bf16_vs_fp32"] = bf16_vs_fp32(config, batches[0].to(device), device)
    print(f"bf16 vs fp32 first step: loss rel. diff {report['bf16_vs_fp32']['relative_loss_difference']:.2e}, "
          f"gradient cosine {report['bf16_vs_fp32']['gradient_cosine']:.4f}", flush=True)
    if compile_ok:
        def compiled(model):
            for block in [*model.visual.blocks, *model.lm.blocks]:
                block.compile()
            return model

        report["compile_vs_eager"] = compare_runs(config, batches, device, True,
                                                  {"eager": lambda m: m, "compiled": compiled})
        print(f"compile vs eager over {args.steps} steps: max loss rel. diff "
              f"{report['compile_vs_eager']['max_relative_loss_difference']:.2e}", flush=True)
    try:
        contexts = {mode: distributed.DistributedContext(0, 1, 0, device, mode) for mode in ("ddp", "fsdp2")}
        distributed.setup("ddp")  # a one-process group for both wrappings
        report["ddp_vs_fsdp2"] = compare_runs(config, batches[:5], device, device.type == "cuda", {
            mode: (lambda m, c=context: distributed.wrap(m, c, bf16=device.type == "cuda", compile_blocks=False))
            for mode, context in contexts.items()})
        print(f"DDP vs FSDP2 on one device over 5 steps: max loss rel. diff "
              f"{report['ddp_vs_fsdp2']['max_relative_loss_difference']:.2e}", flush=True)
    finally:
        distributed.cleanup()

    report["throughput"] = {}
    for name in presets:
        config, batches = make_batches(name, args.steps + 3, args.batch_size)
        for compile_blocks in ((False, True) if compile_ok else (False,)):
            key = f"{name}{'-compiled' if compile_blocks else ''}"
            result = throughput(config, batches, device, device.type == "cuda", compile_blocks, peak)
            report["throughput"][key] = result
            mfu = "" if result["mfu"] is None else f", MFU {result['mfu']:.1%}"
            print(f"{key}: {result['steps_per_s']:.2f} steps/s, {result['tokens_per_s']:.0f} tokens/s, "
                  f"{result['images_per_s']:.0f} images/s, {result['tflops_per_s']:.1f} TFLOP/s{mfu} "
                  f"(batch {result['batch_size']}, {result['parameters_m']:.1f}M parameters)", flush=True)
    print(json.dumps(report, default=str))
    checks_ok = report["bf16_vs_fp32"]["relative_loss_difference"] < 1e-2 and \
        report["bf16_vs_fp32"]["gradient_cosine"] > 0.99 and not math.isnan(report["bf16_vs_fp32"]["gradient_cosine"])
    return 0 if checks_ok else 1


if __name__ == "__main__":
    sys.exit(main())
