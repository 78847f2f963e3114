"""`omnicorpus train` and `omnicorpus train tokenizer`. torch is imported only when a command runs."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import textwrap

from omnicorpus.train.config import PRESETS, TrainConfigError, TrainerConfig, parse_override, preset, with_overrides

# Flags that are shorthands for one config key each.
FLAG_KEYS = {
    "batch_size": "data.batch_size",
    "workers": "data.workers",
    "layout": "data.layout",
    "context_length": "lm.context_length",
    "max_steps": "optim.max_steps",
    "lr": "optim.lr",
    "warmup_steps": "optim.warmup_steps",
    "precision": "optim.precision",
    "distributed": "optim.distributed",
    "seed": "optim.seed",
    "log_every": "optim.log_every",
    "save_every": "optim.save_every",
}


def add_parser(commands) -> None:
    train = commands.add_parser(
        "train",
        help="pre-train a vision encoder on the shards by latent compression learning (LCL; needs omnicorpus[train])",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(
            """\
            Stream the shards of one or more runs and train a ViT with a causal language model by latent
            compression learning: L = 1.0 * generation cross-entropy + 0.1 * InfoNCE between each image's pooled
            latent and the LM state at the <soi> before it. Checkpoints, the tokenizer, config.json and
            log.jsonl go to --output; rerunning the same command resumes from the newest checkpoint.
            For several processes: torchrun --nproc-per-node N $(which omnicorpus) train ... (DDP; --distributed
            fsdp2 for FSDP2). See docs/trainer.md.

            omnicorpus train tokenizer --shards OUT --output tokenizer.json trains a tokenizer on the shards."""
        ),
    )
    train.add_argument("--shards", nargs="+", action="extend", metavar="SHARDS",
                       help="run folders (their shards/), shard folders, .parquet files, globs or fsspec URLs")
    train.add_argument("-o", "--output", metavar="DIR", help="checkpoint and log folder")
    train.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                       help="tiny (CPU, seconds per step) or b16 (ViT-B/16 + 12-layer LM, GPU); default tiny")
    train.add_argument("--tokenizer", metavar="JSON", help="a tokenizer.json (default: train one on the shards)")
    train.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps (the schedule ends there)")
    train.add_argument("--stop-at-step", type=int, metavar="K",
                       help="stop after step K with a checkpoint (a planned interruption; rerun to go on)")
    train.add_argument("--batch-size", type=int, metavar="B", help="documents per batch on each process")
    train.add_argument("--workers", type=int, metavar="W", help="data loader workers per process")
    train.add_argument("--layout", choices=("interleaved", "pairs"), help="documents as sequences or as pairs")
    train.add_argument("--context-length", type=int, metavar="L", help="longest sequence, image spans included")
    train.add_argument("--lr", type=float, help="peak learning rate")
    train.add_argument("--warmup-steps", type=int, metavar="N", help="linear warm-up steps")
    train.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                       help="auto: bf16 autocast on a GPU, fp32 on the CPU")
    train.add_argument("--compile", action="store_true", help="torch.compile each transformer block")
    train.add_argument("--distributed", choices=("auto", "none", "ddp", "fsdp2"),
                       help="auto: DDP under torchrun with several processes, else none")
    train.add_argument("--seed", type=int)
    train.add_argument("--log-every", type=int, metavar="N", help="log (and hash the batch) every N steps")
    train.add_argument("--save-every", type=int, metavar="N", help="checkpoint every N steps")
    train.add_argument("--peak-tflops", type=float, metavar="T",
                       help="peak TFLOP/s of one device, for MFU (default: known GPUs only)")
    train.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                       help="override any config value, e.g. --set data.shuffle_units=8 (repeatable)")
    train.add_argument("--overwrite", action="store_true", help="delete a previous run in --output and start again")
    train.set_defaults(handler=user_errors(_train))

    subcommands = train.add_subparsers(metavar="[tokenizer ...]")
    tokenizer = subcommands.add_parser("tokenizer", help="train a tokenizer with the special tokens on the shards")
    tokenizer.add_argument("--shards", nargs="+", required=True, action="extend", metavar="SHARDS",
                           dest="tokenizer_shards", help="run folders, shard folders, files, globs or fsspec URLs")
    tokenizer.add_argument("-o", "--output", required=True, metavar="JSON", dest="tokenizer_output",
                           help="where to write tokenizer.json")
    tokenizer.add_argument("--vocab-size", type=int, default=32000, help="vocabulary size (default 32000)")
    tokenizer.add_argument("--kind", choices=("bpe", "word"), default="bpe",
                           help="byte-level BPE (default) or a lower-cased word vocabulary (small corpora)")
    tokenizer.add_argument("--max-documents", type=int, metavar="N", help="train on the first N documents only")
    tokenizer.set_defaults(handler=user_errors(_tokenizer))


def user_errors(handler):
    """Bad settings or shards end the command with a one-line message and exit status 2, not a traceback."""

    @functools.wraps(handler)
    def run(args) -> int:
        from omnicorpus.train.shards import ShardError

        errors: tuple[type[BaseException], ...] = (TrainConfigError, ShardError)
        try:
            from omnicorpus.train.stream import StreamError
            errors += (StreamError,)
        except ImportError:  # no torch: the train extra is missing, reported by the handler
            pass
        try:
            return handler(args)
        except errors as exc:
            print(f"omnicorpus: error: {exc}", file=sys.stderr)
            return 2

    return run


@contextlib.contextmanager
def _train_extra():
    """torch and tokenizers come with the train extra; without it, say so instead of a traceback."""
    try:
        yield
    except ImportError as exc:
        raise TrainConfigError(f"this command needs the train extra: pip install 'omnicorpus[train]' ({exc})") from exc


def build_config(args) -> TrainerConfig:
    overrides = dict(parse_override(text) for text in args.overrides)
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            overrides[key] = value
    if args.compile:
        overrides["optim.compile"] = True
    return with_overrides(preset(args.preset), overrides)


def _train(args) -> int:
    if not args.shards or not args.output:
        raise TrainConfigError("omnicorpus train needs --shards and --output")
    config = build_config(args)
    with _train_extra():
        from omnicorpus.train.train import train
    result = train(config, args.shards, args.output, tokenizer_path=args.tokenizer, stop_at_step=args.stop_at_step,
                   overwrite=args.overwrite, peak_tflops=args.peak_tflops)
    if os.environ.get("RANK", "0") == "0":  # one line, not one per torchrun process
        print(f"step {result.step}: checkpoints and log.jsonl in {result.output}")
    return 0


def _tokenizer(args) -> int:
    from omnicorpus.train.shards import find_shards

    with _train_extra():
        from omnicorpus.train.tokenizer import shard_texts, train_tokenizer

    paths = find_shards(args.tokenizer_shards)
    tokenizer = train_tokenizer(shard_texts(paths, args.max_documents), args.vocab_size, args.kind)
    tokenizer.save(args.tokenizer_output)
    print(f"{args.tokenizer_output}: {tokenizer.vocab_size} tokens, special ids {tokenizer.special}")
    return 0
