"""Two gloo processes on the CPU (lcl.md §7.5 check 10): the global loss and every gradient of a 2-rank DDP
step equal one process on the concatenated batch, also when the ranks hold different numbers of images or
one rank has no pair at all; and the trainer runs under torchrun with DDP and FSDP2 alike."""

import dataclasses
import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from omnicorpus.document import Document
from omnicorpus.train import synthetic
from omnicorpus.train.config import preset
from omnicorpus.train.interleave import SequenceBuilder
from omnicorpus.train.tokenizer import train_tokenizer

torch = pytest.importorskip("torch")
# One intra-op thread: the tiny model's ops are too small to split, and on a busy 2-core machine a second
# OpenMP thread waiting at every barrier made the learnability run 15x slower (165 s against 11 s).
torch.set_num_threads(1)

from omnicorpus.train.batch import collate  # noqa: E402
from omnicorpus.train.loss import lcl_loss  # noqa: E402
from omnicorpus.train.model import LCLModel  # noqa: E402

WORKER = Path(__file__).with_name("train_gloo_worker.py")


def image_first_documents(count):
    rng = random.Random(4)
    documents = []
    for index in range(count):
        doc = Document(id=f"image-first-{index}", url=f"https://example.org/if/{index}")
        label = rng.randrange(len(synthetic.CLASSES))
        doc.append_image(f"https://example.org/if/{index}.png", None, synthetic.render(label, rng))
        doc.append_text(synthetic.caption(label, rng))
        documents.append(doc)
    return documents


def _documents():
    corpus = synthetic.make_corpus(8, seed=21, min_images=1, max_images=3)
    return {
        # rank 0 and rank 1 hold different numbers of images and pairs
        "unequal": (corpus[:2], corpus[2:7]),
        # rank 1's documents open with their image: no contrastive pair there
        "rank_without_pairs": (corpus[:3], image_first_documents(2)),
    }


SCENARIOS = _documents()


def setup():
    corpus = synthetic.make_corpus(32, seed=1)
    tokenizer = train_tokenizer((text for doc in corpus for text in doc.texts if text), 200, "word")
    config = preset("tiny")
    return tokenizer, dataclasses.replace(config, lm=dataclasses.replace(config.lm, vocab_size=tokenizer.vocab_size))


def build_model(config):
    torch.manual_seed(0)
    return LCLModel(config)


def build_batch(tokenizer, config, documents):
    build = SequenceBuilder(tokenizer, tokens_per_image=config.vision.tokens_per_image,
                            context_length=config.lm.context_length, image_size=config.vision.image_size)
    samples = [s for doc in documents for s in build.build(doc.to_row(), 0, Counter())]
    return collate(samples, tokenizer.special, config.vision.tokens_per_image)


def torchrun(*args, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout)


def test_two_gloo_ranks_match_one_process_on_the_concatenated_batch(tmp_path):
    finished = torchrun(WORKER, tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    tokenizer, config = setup()
    for name, (first, second) in SCENARIOS.items():
        ranks = [torch.load(tmp_path / f"{name}-rank{rank}.pt") for rank in (0, 1)]
        model = build_model(config)
        batch = build_batch(tokenizer, config, [*first, *second])
        result = lcl_loss(model(batch), batch.gen_tgt, config.loss)
        result.loss.backward()
        assert ranks[0]["local_images"] != ranks[1]["local_images"]
        for saved in ranks:  # every rank logs the global losses
            assert saved["pairs"] == result.pairs == ranks[0]["local_pairs"] + ranks[1]["local_pairs"]
            assert saved["generation"] == pytest.approx(float(result.generation), rel=1e-5)
            assert saved["contrastive"] == pytest.approx(float(result.contrastive), rel=1e-5)
            assert saved["acc"] == pytest.approx((result.acc_i2t, result.acc_t2i))
        for parameter_name, parameter in model.named_parameters():
            for saved in ranks:  # DDP leaves the averaged gradient on every rank
                torch.testing.assert_close(saved["grads"][parameter_name], parameter.grad, rtol=1e-4, atol=1e-6,
                                           msg=f"{name}: gradient of {parameter_name}")
    assert ranks[1]["local_pairs"] == 0, "the second scenario has a rank without pairs"


def test_trainer_under_torchrun_ddp_and_fsdp2_agree(tmp_path):
    synthetic.write_shards(tmp_path / "data", synthetic.make_corpus(48, seed=2), row_group_docs=6)
    losses = {}
    for mode in ("ddp", "fsdp2"):
        output = tmp_path / mode
        finished = torchrun("-m", "omnicorpus.cli", "train", "--shards", tmp_path / "data", "--output", output,
                            "--distributed", mode, "--max-steps", 2, "--log-every", 1, "--workers", 0,
                            "--batch-size", 4, "--set", "data.tokenizer_kind=word",
                            "--set", "data.tokenizer_vocab_size=200")
        assert finished.returncode == 0, finished.stderr[-3000:]
        log = [json.loads(line) for line in (output / "log.jsonl").read_text().splitlines()]
        losses[mode] = [entry["loss"] for entry in log]
        assert sorted((output / "checkpoints" / "step-00000002").glob("rank-*.pt"))[-1].name == "rank-00001.pt"
    assert losses["ddp"] == pytest.approx(losses["fsdp2"], rel=1e-4)
