"""The text tokenizer: HF `tokenizers`, trained on the shards' texts or loaded from a `tokenizer.json`.

Special tokens are dedicated ids: `<pad>` is a real padding token (LCL pads with id 0, which is the BPE byte
"!", so a literal "!" can never be a target there), `<sot>`/`<eot>` open and close a document, and an image
is the span `<soi> <img>×P <eoi>`. Text never encodes to a special token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from omnicorpus.train.config import TOKENIZER_KINDS, TrainConfigError
from omnicorpus.train.shards import open_parquet

PAD, SOT, EOT, SOI, IMG, EOI, UNK = "<pad>", "<sot>", "<eot>", "<soi>", "<img>", "<eoi>", "<unk>"
SPECIAL_TOKENS = (PAD, SOT, EOT, SOI, IMG, EOI, UNK)


@dataclass(frozen=True)
class SpecialIds:
    pad: int
    sot: int
    eot: int
    soi: int
    img: int
    eoi: int


class TextTokenizer:
    """A `tokenizers.Tokenizer` plus the ids of the special tokens; encodes text without adding any."""

    def __init__(self, tokenizer: Tokenizer):
        missing = [token for token in SPECIAL_TOKENS[:-1] if tokenizer.token_to_id(token) is None]
        if missing:
            raise TrainConfigError(f"the tokenizer lacks the special tokens {missing}; train one with "
                                   "`omnicorpus train tokenizer` or add them")
        # A page that literally says "<img>" must not inject a placeholder: special tokens are never matched
        # in text, only placed by the sequence builder.
        tokenizer.encode_special_tokens = True
        self.tokenizer = tokenizer
        self.special = SpecialIds(*(tokenizer.token_to_id(token) for token in SPECIAL_TOKENS[:-1]))

    @classmethod
    def from_file(cls, path: str | Path) -> "TextTokenizer":
        return cls(Tokenizer.from_file(str(path)))

    def save(self, path: str | Path) -> None:
        from omnicorpus.io.paths import atomic_write_bytes

        atomic_write_bytes(path, self.tokenizer.to_str().encode("utf-8"))

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.tokenizer.encode_batch(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)


def train_tokenizer(texts: Iterable[str], vocab_size: int, kind: str = "bpe") -> TextTokenizer:
    """Train a tokenizer on an iterator of texts.

    `bpe` is a byte-level BPE (GPT-2 style: no unknown tokens; vocab_size must exceed the 256-byte alphabet plus
    the special tokens). `word` is a lower-cased word-level vocabulary with `<unk>`, for small synthetic corpora.
    """
    if kind not in TOKENIZER_KINDS:
        raise TrainConfigError(f"tokenizer kind must be one of {TOKENIZER_KINDS}, got {kind!r}")
    if kind == "bpe":
        minimum = 256 + len(SPECIAL_TOKENS) + 1
        if vocab_size < minimum:
            raise TrainConfigError(f"a byte-level BPE needs vocab_size >= {minimum}, got {vocab_size}")
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    else:
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                            show_progress=False)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return TextTokenizer(tokenizer)


def shard_texts(paths: list[str], max_documents: int | None = None) -> Iterator[str]:
    """Every text slot of the shards, reading only the `texts` column, one row group at a time."""
    documents = 0
    for path in paths:
        handle = open_parquet(path)
        for group in range(handle.num_row_groups):
            for texts in handle.read_row_group(group, columns=["texts"]).column("texts").to_pylist():
                yield from (text for text in texts or () if text)
                documents += 1
                if max_documents is not None and documents >= max_documents:
                    return
