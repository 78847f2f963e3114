"""A synthetic interleaved corpus: rendered shapes × colours with captions and distractor text, as real shards.

Used by the tests (learnability, resume, streaming) and the GPU benchmark. Documents are written through the
project's own writer (`Document`, `write_documents`, the run schema), so they meet the data contract exactly
as `omnicorpus run` output does. Each image sits before or after its caption (p = 0.5), with unrelated
sentences in between, as in lcl.md §7.5 check 12.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import omnicorpus
from omnicorpus.document import Document, document_id, new_image_info

SHAPES = ("disc", "ring", "bar", "pillar")
COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (230, 210, 40)}
CAPTIONS = ("a {colour} {shape}.", "a photo of a {colour} {shape}.", "here is a {colour} {shape}.",
            "look at this {colour} {shape}.")
DISTRACTORS = (
    "the meeting starts at noon.", "we walked along the river before dinner.", "prices rose again this year.",
    "the train was late on monday.", "she read the report twice.", "a storm is expected tonight.",
    "the library opens at nine.", "they planted trees in the park.", "our team won the last game.",
    "the soup needs more salt.",
)


@dataclass(frozen=True)
class ShapeClass:
    shape: str
    colour: str

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


CLASSES = tuple(ShapeClass(shape, colour) for shape in SHAPES for colour in COLOURS)


def render(label: int, rng: random.Random, size: int = 32) -> bytes:
    """A PNG of class `label`: a jittered shape of a jittered colour on a noisy grey background."""
    item = CLASSES[label]
    noise = np.random.default_rng(rng.getrandbits(32))
    grey = rng.randint(70, 180)
    pixels = np.clip(noise.normal(grey, 12, (size, size, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    colour = tuple(int(np.clip(c + rng.randint(-20, 20), 0, 255)) for c in COLOURS[item.colour])
    radius = rng.uniform(0.30, 0.36) * size
    cx, cy = size / 2 + rng.uniform(-0.05, 0.05) * size, size / 2 + rng.uniform(-0.05, 0.05) * size
    if item.shape in ("disc", "ring"):
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=colour)
        if item.shape == "ring":
            hole = radius * 0.55
            draw.ellipse((cx - hole, cy - hole, cx + hole, cy + hole), fill=(grey, grey, grey))
    else:
        # A bar lies across the image, a pillar stands up it.
        long, short = radius * 1.3, radius * 0.35
        half_width, half_height = (long, short) if item.shape == "bar" else (short, long)
        draw.rectangle((cx - half_width, cy - half_height, cx + half_width, cy + half_height), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def caption(label: int, rng: random.Random) -> str:
    item = CLASSES[label]
    return rng.choice(CAPTIONS).format(colour=item.colour, shape=item.shape)


def make_document(index: int, rng: random.Random, *, images: int, text_first_prob: float = 0.5,
                  labels: list[int] | None = None, distractors: bool = True) -> Document:
    """A document of `images` captioned images, each caption before (p = text_first_prob) or after its image."""
    url = f"https://synthetic.example/doc/{index}"
    document = Document(id=document_id(url), url=url, domain="synthetic.example", title=f"document {index}")
    labels = labels if labels is not None else [rng.randrange(len(CLASSES)) for _ in range(images)]
    for position, label in enumerate(labels):
        if distractors:
            document.append_text(" ".join(rng.sample(DISTRACTORS, rng.randint(1, 2))))
        data = render(label, rng)
        info = new_image_info(width=32, height=32, format="png", byte_size=len(data), status="ok",
                              alt=CLASSES[label].name)
        image_url = f"{url}/image-{position}.png"
        if rng.random() < text_first_prob:
            document.append_text(caption(label, rng))
            document.append_image(image_url, info, data)
        else:
            document.append_image(image_url, info, data)
            document.append_text(caption(label, rng))
    if distractors and rng.random() < 0.5:
        document.append_text(rng.choice(DISTRACTORS))
    return document


def make_corpus(documents: int, seed: int = 0, *, min_images: int = 1, max_images: int = 3) -> list[Document]:
    rng = random.Random(seed)
    return [make_document(index, rng, images=rng.randint(min_images, max_images)) for index in range(documents)]


def write_shards(folder: str | Path, documents: list[Document], *, docs_per_shard: int = 1000,
                 row_group_docs: int = 1000) -> list[Path]:
    """Write documents as `folder/shards/shard-NNNNN.parquet`, the layout `omnicorpus run` produces."""
    from omnicorpus.config import PipelineConfig
    from omnicorpus.io.parquet import file_metadata, write_documents
    from omnicorpus.pipeline import run_schema, shard_name

    arrow_schema = run_schema(PipelineConfig())
    metadata = file_metadata("synthetic", omnicorpus.__version__)
    paths = []
    for index, start in enumerate(range(0, len(documents), docs_per_shard)):
        path = Path(folder) / "shards" / shard_name(index)
        write_documents(path, documents[start:start + docs_per_shard], arrow_schema, metadata=metadata,
                        row_group_docs=row_group_docs, kept=True)
        paths.append(path)
    return paths
