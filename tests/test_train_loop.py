"""The trainer end to end on the CPU: learnability on synthetic shards (lcl.md §7.5 check 12), exact resume
(check 14), and the CLI on the shards that `omnicorpus run` makes from the bundled example."""

import json
import math
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from omnicorpus.cli import main
from omnicorpus.train import synthetic
from omnicorpus.train.config import preset, with_overrides
from omnicorpus.train.interleave import SequenceBuilder, load_image

torch = pytest.importorskip("torch")
# One intra-op thread: the tiny model's ops are too small to split, and on a busy 2-core machine a second
# OpenMP thread waiting at every barrier made the learnability run 15x slower (165 s against 11 s).
torch.set_num_threads(1)

from omnicorpus.train.batch import collate  # noqa: E402
from omnicorpus.train.evaluate import (collapse_monitors, linear_probe, load_trained, pooled_features,  # noqa: E402
                                       zero_shot_accuracy)
from omnicorpus.train.loss import lcl_loss  # noqa: E402
from omnicorpus.train.model import LCLModel  # noqa: E402
from omnicorpus.train.train import train  # noqa: E402

WORD_TOKENIZER = {"data.tokenizer_kind": "word", "data.tokenizer_vocab_size": 200}


def read_log(output):
    return [json.loads(line) for line in (Path(output) / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """The tiny preset trained for 160 steps on 1024 synthetic documents written as real shards."""
    folder = tmp_path_factory.mktemp("learn")
    synthetic.write_shards(folder / "data", synthetic.make_corpus(1024, seed=3, max_images=2), docs_per_shard=256,
                           row_group_docs=32)
    config = with_overrides(preset("tiny"), {**WORD_TOKENIZER, "optim.max_steps": 160, "optim.log_every": 20,
                                             "data.workers": 0})
    train(config, [str(folder / "data")], folder / "run")
    model, tokenizer, config = load_trained(folder / "run")
    return model, tokenizer, config, read_log(folder / "run")


def test_losses_fall_from_their_initial_values(learned):
    *_, log = learned
    first, last = log[0], log[-3:]
    assert first["step"] == 20 and last[-1]["step"] == 160
    assert max(entry["l_gen"] for entry in last) < 0.5 * first["l_gen"]
    # L_con starts at about ln M (the chance level of its batch) and ends clearly below it.
    assert first["l_con"] > math.log(first["pairs"]) - 0.3
    gaps = [math.log(entry["pairs"]) - entry["l_con"] for entry in last]
    assert sum(gaps) / len(gaps) > 0.3, last
    assert all(entry["logit_scale"] <= 100 for entry in log)


def test_in_batch_retrieval_and_zero_shot_on_held_out_data(learned):
    """Held-out documents of one caption and one image each, one per colour: the trainer's own in-batch
    accuracy on them is far above 1/M; zero-shot over all shape × colour prompts is above 1/K."""
    model, tokenizer, config, _ = learned
    rng = random.Random(99)
    colours = len(synthetic.COLOURS)
    held_out = [synthetic.make_document(50_000 + i, rng, images=1, text_first_prob=1.0,
                                        labels=[rng.randrange(len(synthetic.SHAPES)) * colours + i])
                for i in range(colours)]
    build = SequenceBuilder(tokenizer, tokens_per_image=config.vision.tokens_per_image,
                            context_length=config.lm.context_length, image_size=config.vision.image_size)
    batch = collate([s for doc in held_out for s in build.build(doc.to_row(), 0, Counter())], tokenizer.special,
                    config.vision.tokens_per_image)
    with torch.no_grad():
        result = lcl_loss(model(batch), batch.gen_tgt, config.loss)
    assert result.pairs == colours
    assert result.acc_i2t > 0.8 and result.acc_t2i > 0.8, (result.acc_i2t, result.acc_t2i)

    classes = len(synthetic.CLASSES)
    labels = [i % classes for i in range(64)]
    images = np.stack([load_image(synthetic.render(label, rng), config.vision.image_size) for label in labels])
    prompts = [f"a {item.name}." for item in synthetic.CLASSES]
    assert zero_shot_accuracy(model, tokenizer, images, labels, prompts) > 2 / classes


def test_linear_probe_on_frozen_pooled_features_beats_chance_and_random_init(learned):
    model, _, config, _ = learned
    rng = random.Random(5)
    colours = len(synthetic.COLOURS)
    labels = [rng.randrange(len(synthetic.CLASSES)) for _ in range(96)]
    images = np.stack([load_image(synthetic.render(label, rng), config.vision.image_size) for label in labels])
    colour = [label % colours for label in labels]
    trained = pooled_features(model, images)
    torch.manual_seed(0)
    untrained = pooled_features(LCLModel(config), images)
    accuracy = linear_probe(trained[:64], colour[:64], trained[64:], colour[64:])
    assert accuracy > 0.8 > 1 / colours
    assert accuracy >= linear_probe(untrained[:64], colour[:64], untrained[64:], colour[64:])
    monitors = collapse_monitors(trained)
    assert monitors["effective_rank"] > 1.5, monitors


def test_resume_gives_the_same_losses_and_batches_as_an_uninterrupted_run(tmp_path):
    synthetic.write_shards(tmp_path / "data", synthetic.make_corpus(64, seed=4), row_group_docs=8)
    config = with_overrides(preset("tiny"), {**WORD_TOKENIZER, "optim.max_steps": 6, "optim.log_every": 1,
                                             "data.batch_size": 4, "data.workers": 2, "optim.warmup_steps": 2,
                                             "data.shuffle_units": 2})
    shards = [str(tmp_path / "data")]
    train(config, shards, tmp_path / "straight")
    stopped = train(config, shards, tmp_path / "resumed", stop_at_step=3)
    assert stopped.step == 3 and (tmp_path / "resumed" / "latest").read_text() == "step-00000003"
    finished = train(config, shards, tmp_path / "resumed")
    assert finished.step == 6
    straight, resumed = read_log(tmp_path / "straight"), read_log(tmp_path / "resumed")
    keys = ("step", "loss", "l_gen", "l_con", "acc_i2t", "acc_t2i", "logit_scale", "lr", "grad_norm", "batch")
    assert [[entry[k] for k in keys] for entry in resumed] == [[entry[k] for k in keys] for entry in straight]
    assert len({entry["batch"] for entry in straight}) == 6
    # A different config in the same folder is refused rather than mixed in.
    other = with_overrides(config, {"optim.lr": 1e-4})
    with pytest.raises(ValueError, match="another config"):
        train(other, shards, tmp_path / "resumed")


def test_cli_trains_on_the_example_run_shards(example_run, tmp_path, capsys):
    tokenizer = tmp_path / "tokenizer.json"
    assert main(["train", "tokenizer", "--shards", example_run.output, "--output", str(tokenizer),
                 "--vocab-size", "400"]) == 0
    output = tmp_path / "run"
    code = main(["train", "--shards", example_run.output, "--output", str(output), "--tokenizer", str(tokenizer),
                 "--max-steps", "3", "--batch-size", "2", "--workers", "0", "--log-every", "1", "--context-length", "2048"])
    assert code == 0
    log = read_log(output)
    assert [entry["step"] for entry in log] == [1, 2, 3]
    assert all(np.isfinite(entry["loss"]) and entry["pairs"] > 0 for entry in log)
    assert (output / "checkpoints" / "step-00000003" / "model.pt").exists()
    assert json.loads((output / "config.json").read_text())["config"]["lm"]["vocab_size"] == 400
    assert "step 3" in capsys.readouterr().out


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["train", "--output", str(tmp_path / "run")]) == 2
    assert main(["train", "--shards", str(tmp_path / "nothing"), "--output", str(tmp_path / "run")]) == 2
    assert main(["train", "--shards", str(tmp_path), "--output", str(tmp_path / "run"),
                 "--set", "optim.nonsense=1"]) == 2
    errors = capsys.readouterr().err
    assert "needs --shards and --output" in errors and "names no .parquet" in errors
    assert "unknown key 'optim.nonsense'" in errors
