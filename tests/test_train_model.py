"""The LCL model and loss on the tiny preset: causality, gradient paths, analytic initial losses, InfoNCE parity
and the zero-pair guard (lcl.md §7.5 checks 6, 8, 9 and 11)."""

import dataclasses
import math
import random
from collections import Counter

import pytest

from omnicorpus.document import Document
from omnicorpus.train import synthetic
from omnicorpus.train.config import preset, with_overrides
from omnicorpus.train.interleave import SequenceBuilder
from omnicorpus.train.tokenizer import train_tokenizer

torch = pytest.importorskip("torch")
# One intra-op thread: the tiny model's ops are too small to split, and on a busy 2-core machine a second
# OpenMP thread waiting at every barrier made the learnability run 15x slower (165 s against 11 s).
torch.set_num_threads(1)
F = torch.nn.functional

from omnicorpus.train.batch import collate  # noqa: E402
from omnicorpus.train.loss import lcl_loss  # noqa: E402
from omnicorpus.train.model import LCLModel  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer():
    corpus = synthetic.make_corpus(64, seed=11)
    return train_tokenizer((text for doc in corpus for text in doc.texts if text), 200, "word")


@pytest.fixture(scope="module")
def config(tokenizer):
    config = preset("tiny")
    return dataclasses.replace(config, lm=dataclasses.replace(config.lm, vocab_size=tokenizer.vocab_size))


def model_for(config, seed=0):
    torch.manual_seed(seed)
    return LCLModel(config)


def batch_of(tokenizer, config, documents, layout="interleaved", img_first_prob=0.5):
    build = SequenceBuilder(tokenizer, tokens_per_image=config.vision.tokens_per_image,
                            context_length=config.lm.context_length, image_size=config.vision.image_size,
                            layout=layout, img_first_prob=img_first_prob)
    samples = [s for doc in documents for s in build.build(doc.to_row(), 0, Counter())]
    return collate(samples, tokenizer.special, config.vision.tokens_per_image)


def pairs(count, seed=0):
    """Documents of one caption and one image (the pairs layout turns each into one pair sample)."""
    rng = random.Random(seed)
    documents = []
    for index in range(count):
        label = rng.randrange(len(synthetic.CLASSES))
        doc = Document(id=f"pair-{seed}-{index}", url=f"https://example.org/{index}")
        doc.append_text(synthetic.caption(label, rng))
        doc.append_image(f"https://example.org/{index}.png", None, synthetic.render(label, rng))
        documents.append(doc)
    return documents


def gradient_norms(model):
    groups = {"vit": model.visual, "pooler": model.pooler, "lm_blocks": model.lm.blocks,
              "ln_final": model.lm.ln_final, "lm_head": model.lm.lm_head}
    norms = {name: sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)
             for name, module in groups.items()}
    for name in ("text_projection", "token_embedding"):
        parameter = getattr(model.lm, name)
        parameter = parameter.weight if hasattr(parameter, "weight") else parameter
        norms[name] = 0.0 if parameter.grad is None else float(parameter.grad.abs().sum())
    norms["logit_scale"] = 0.0 if model.logit_scale.grad is None else abs(float(model.logit_scale.grad))
    return norms


def test_perturbing_an_image_leaves_everything_up_to_its_soi_bitwise_unchanged(tokenizer, config):
    documents = synthetic.make_corpus(6, seed=3, min_images=2, max_images=3)
    batch = batch_of(tokenizer, config, documents)
    model = model_for(config).eval()
    with torch.no_grad():
        before = model(batch, return_hidden=True)
        k = int(batch.soi_img[1])  # an image with context before it and (usually) text after it
        perturbed = dataclasses.replace(batch, images=batch.images.clone())
        perturbed.images[k] = 255 - perturbed.images[k]
        after = model(perturbed, return_hidden=True)
    length = batch.ids.shape[1]
    soi = int(batch.soi_idx[1])
    row, column = divmod(soi, length)
    assert torch.equal(before.hidden[row, : column + 1], after.hidden[row, : column + 1]), "LM outputs ≤ <soi>"
    assert torch.equal(before.text_features[1], after.text_features[1]), "c_k is unchanged"
    other_rows = [r for r in range(batch.ids.shape[0]) if r != row]
    assert torch.equal(before.hidden[other_rows], after.hidden[other_rows]), "other documents are unchanged"
    eoi = column + 1 + config.vision.tokens_per_image
    assert not torch.equal(before.hidden[row, eoi + 1:], after.hidden[row, eoi + 1:]), "outputs after <eoi> change"
    assert not torch.equal(before.pooled[1], after.pooled[1])


def test_vision_gets_gradient_through_both_paths(tokenizer, config):
    # L_con only: every part of both towers but lm_head.
    model = model_for(config)
    batch = batch_of(tokenizer, config, synthetic.make_corpus(8, seed=5))
    contrastive_only = with_overrides(config, {"loss.generation_weight": 0.0}).loss
    lcl_loss(model(batch), batch.gen_tgt, contrastive_only).loss.backward()
    norms = gradient_norms(model)
    assert norms["lm_head"] == 0.0
    assert all(norms[name] > 0 for name in ("vit", "pooler", "lm_blocks", "ln_final", "text_projection",
                                            "logit_scale", "token_embedding")), norms

    generation_only = with_overrides(config, {"loss.contrastive_weight": 0.0}).loss
    # L_gen on text-first pairs: nothing follows any image, so not one generation gradient reaches the ViT.
    model = model_for(config)
    text_first = batch_of(tokenizer, config, pairs(8), layout="pairs", img_first_prob=0.0)
    lcl_loss(model(text_first), text_first.gen_tgt, generation_only).loss.backward()
    norms = gradient_norms(model)
    assert norms["vit"] == 0.0 and norms["pooler"] == 0.0 and norms["lm_head"] > 0
    # L_gen on image-first pairs: the caption is generated from the image tokens.
    model = model_for(config)
    image_first = batch_of(tokenizer, config, pairs(8), layout="pairs", img_first_prob=1.0)
    assert image_first.num_pairs == 0, "an image-first pair's <soi> has no context: no contrastive pair"
    lcl_loss(model(image_first), image_first.gen_tgt, generation_only).loss.backward()
    norms = gradient_norms(model)
    assert norms["vit"] > 0 and norms["pooler"] > 0


def test_contrastive_loss_equals_reference_infonce_on_text_first_pairs(tokenizer, config):
    model = model_for(config)
    batch = batch_of(tokenizer, config, pairs(12, seed=2), layout="pairs", img_first_prob=0.0)
    output = model(batch)
    result = lcl_loss(output, batch.gen_tgt, config.loss)
    image, text = F.normalize(output.pooled, dim=-1), F.normalize(output.text_features, dim=-1)
    logits = math.exp(config.loss.init_logit_scale) * (image @ text.T).detach()
    labels = torch.arange(12)
    reference = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert result.pairs == 12
    assert float(result.contrastive) == pytest.approx(float(reference), rel=1e-6)
    generation = F.cross_entropy(output.gen_logits, batch.gen_tgt)
    assert float(result.loss.detach()) == pytest.approx(float(generation.detach()) + 0.1 * float(reference), rel=1e-6)


def test_initial_losses_are_near_their_analytic_values(tokenizer, config):
    """L_gen ≈ ln V; L_con ≈ ln M + s²/(2E) for random unit features, and ≥ ln M minus a little when the
    features are correlated (a shared component raises every logit alike)."""
    batch = batch_of(tokenizer, config, synthetic.make_corpus(48, seed=8))
    losses = []
    for seed in range(3):
        with torch.no_grad():
            losses.append(lcl_loss(model_for(config, seed)(batch), batch.gen_tgt, config.loss))
    vocab, pairs_count = tokenizer.vocab_size, losses[0].pairs
    scale, width = math.exp(config.loss.init_logit_scale), config.embed_dim
    for result in losses:
        assert abs(float(result.generation) - math.log(vocab)) < 0.1, (float(result.generation), math.log(vocab))
        contrastive = float(result.contrastive)
        assert math.log(pairs_count) - 0.25 < contrastive < math.log(pairs_count) + scale ** 2 / (2 * width) + 0.25
        assert result.acc_i2t < 0.25 and result.acc_t2i < 0.25


def test_a_batch_without_pairs_gives_a_finite_loss_and_touches_every_parameter(tokenizer, config):
    model = model_for(config)
    batch = batch_of(tokenizer, config, pairs(6), layout="pairs", img_first_prob=1.0)
    result = lcl_loss(model(batch), batch.gen_tgt, config.loss)
    assert result.pairs == 0 and float(result.contrastive) == 0.0 and math.isfinite(float(result.loss.detach()))
    result.loss.backward()
    assert all(p.grad is not None for p in model.parameters()), "DDP needs every parameter in the graph"
