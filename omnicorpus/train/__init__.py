"""The companion LCL trainer: stream the shards, pre-train a vision encoder by latent compression learning.

Latent compression learning (Yang et al., arXiv 2406.07543; code OpenGVLab/LCL) trains a ViT together with a
causal language model on interleaved image-text documents: each image's pooled latent is contrasted with the
LM state at the `<soi>` token just before it (InfoNCE, weight 0.1) and the text after it is generated from its
patch tokens (cross-entropy, weight 1.0). See docs/trainer.md.

Modules, in the order a reader meets them:
  config.py      presets and frozen dataclasses (no torch)
  tokenizer.py   the text tokenizer with the special tokens (HF `tokenizers`, no torch)
  shards.py      shard files and their (file, row group) units from the Parquet footers (no torch)
  interleave.py  a document row -> token ids and image pixels (no torch)
  synthetic.py   a rendered shapes-and-colours corpus written as real shards (tests, benchmarks; no torch)
  stream.py      the streaming IterableDataset over (file, row group) units, with resumable state
  batch.py       samples -> the tensors of one batch (the batch contract)
  model.py       ViT -> attentive pooler -> causal LM
  loss.py        generation cross-entropy + symmetric InfoNCE, gathered across ranks
  distributed.py process group, DDP / FSDP2 wrapping
  checkpoint.py  checkpoints and resume
  train.py       the training loop
  evaluate.py    zero-shot retrieval, linear probe, collapse monitors
  cli.py         `omnicorpus train` and `omnicorpus train tokenizer` (imports torch only when they run)

torch is imported by stream.py, batch.py, model.py, loss.py, distributed.py, checkpoint.py, train.py and
evaluate.py only; `import omnicorpus.train` imports none of them.
"""
