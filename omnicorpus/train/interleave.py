"""Documents to sequences: a document row becomes token ids with image spans plus the pixels of its images.

Interleaved layout (the OmniCorpus / OBELICS slot order): `<sot>`, then each slot in order (a text block's
tokens, or an image span `<soi> <img>×P <eoi>`), then `<eot>`. Pairs layout (LCL's InterleavedWrapper): one
sequence per image with the text block next to it as caption, image-first `<soi> <img>×P <eoi> caption <eot>`
or text-first `<sot> caption <soi> <img>×P <eoi>` with probability `img_first_prob`.

Truncation never splits a span: when an image span would cross the context, the sequence ends there with
`<eot>` in place of its `<soi>` (LCL's MMC4 rule) and later images are left out; text past the context is cut.
Every image slot is counted under exactly one outcome (used, missing_bytes, undecodable, over_max_images,
cut_by_context, no_caption, in_skipped_document), so nothing is lost silently.
"""

from __future__ import annotations

import io
import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from omnicorpus.train.tokenizer import TextTokenizer

# Columns the trainer reads from a shard: never the provenance, signals or audit trail.
COLUMNS = ["id", "texts", "image_bytes"]


@dataclass
class Sample:
    """One training sequence: token ids and the images of its spans, in span order."""

    doc_id: str
    ids: np.ndarray  # int64 [length]
    images: np.ndarray  # uint8 [n_images, size, size, 3]


def load_image(data: bytes, size: int, rng: random.Random | None = None) -> np.ndarray | None:
    """Decode, crop and resize to size×size RGB uint8; None when the bytes are not a usable image.

    With `rng`: OpenCLIP's training crop, RandomResizedCrop(scale=(0.9, 1.0), ratio=(3/4, 4/3)). Without: the
    evaluation crop, the centre square (the same as resizing the shorter side and centre-cropping).
    """
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when the image is much larger
            image = _to_rgb(image)
    except Exception:  # noqa: BLE001 -- PIL raises many types (OSError, SyntaxError, DecompressionBombError, ...)
        return None
    width, height = image.size
    box = _random_crop(width, height, rng) if rng is not None else None
    if box is None:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        box = (left, top, left + side, top + side)
    return np.asarray(image.resize((size, size), Image.BICUBIC, box=box, reducing_gap=3.0), dtype=np.uint8)


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB with transparency composited on white (a transparent logo is not a black square)."""
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _random_crop(width: int, height: int, rng: random.Random) -> tuple[int, int, int, int] | None:
    for _ in range(10):
        area = width * height * rng.uniform(0.9, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        crop_width, crop_height = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < crop_width <= width and 0 < crop_height <= height:
            left, top = rng.randint(0, width - crop_width), rng.randint(0, height - crop_height)
            return left, top, left + crop_width, top + crop_height
    return None


class SequenceBuilder:
    """Turns document rows (dicts with `id`, `texts`, `image_bytes`) into samples; deterministic per epoch.

    Randomness (image placement in the pairs layout, augmentation crops) is seeded by (seed, epoch, document
    id, slot), so it does not depend on which worker or rank reads a document.
    """

    def __init__(self, tokenizer: TextTokenizer, *, tokens_per_image: int, context_length: int, image_size: int,
                 layout: str = "interleaved", max_images: int = 6, min_images: int = 1,
                 img_first_prob: float = 0.5, augment: bool = False, seed: int = 0):
        self.tokenizer = tokenizer
        self.special = tokenizer.special
        self.tokens_per_image = tokens_per_image
        self.context_length = context_length
        self.image_size = image_size
        self.layout = layout
        self.max_images = max_images
        self.min_images = min_images
        self.img_first_prob = img_first_prob
        self.augment = augment
        self.seed = seed

    @property
    def span(self) -> list[int]:
        return [self.special.soi] + [self.special.img] * self.tokens_per_image + [self.special.eoi]

    def build(self, row: dict[str, Any], epoch: int, counts: Counter) -> list[Sample]:
        """The samples of one document (none when it has too few usable images); outcomes go into `counts`."""
        counts["documents"] += 1
        texts = row["texts"] or []
        text_slots = [slot for slot, text in enumerate(texts) if text is not None]
        encoded = dict(zip(text_slots, self.tokenizer.encode_batch([texts[slot] for slot in text_slots])))
        blobs = row["image_bytes"] or [None] * len(texts)
        if self.layout == "pairs":
            samples = self._pairs(row["id"], texts, blobs, encoded, epoch, counts)
            used = len(samples)
        else:
            samples = self._interleaved(row["id"], texts, blobs, encoded, epoch, counts)
            used = len(samples[0].images) if samples else 0
        if not samples or used < self.min_images:
            counts["images.used"] -= used
            counts["images.in_skipped_document"] += used
            counts["documents.skipped_too_few_images"] += 1
            return []
        counts["documents.used"] += 1
        return samples

    def _rng(self, doc_id: str, epoch: int, slot: int) -> random.Random:
        return random.Random(f"{self.seed}:{epoch}:{doc_id}:{slot}")

    def placement(self, doc_id: str, epoch: int, slot: int) -> tuple[bool, random.Random]:
        """Pairs layout: whether this image goes before its caption, and the RNG its crop then draws from."""
        rng = self._rng(doc_id, epoch, slot)
        return rng.random() < self.img_first_prob, rng

    def _image(self, doc_id: str, blob: bytes | None, epoch: int, slot: int, counts: Counter,
               rng: random.Random | None = None) -> np.ndarray | None:
        if blob is None:
            counts["images.missing_bytes"] += 1
            return None
        if rng is None and self.augment:
            rng = self._rng(doc_id, epoch, slot)
        pixels = load_image(blob, self.image_size, rng if self.augment else None)
        if pixels is None:
            counts["images.undecodable"] += 1
        return pixels

    def _window_start(self, texts, encoded, counts: Counter) -> tuple[int, int]:
        """Where the sequence starts: (slot, tokens of that slot to skip).

        LCL cuts a long document at the end only, so a page whose first image stands after more text than the
        context holds would give no image at all. Such a document starts instead at the text just before its
        first image, keeping a quarter of the context of that text as the image's lead-in.
        """
        first_image = next((slot for slot, text in enumerate(texts) if text is None), None)
        if first_image is None:
            return 0, 0
        lead = sum(len(encoded[slot]) for slot in range(first_image))
        if 1 + lead + len(self.span) <= self.context_length:
            return 0, 0
        counts["documents.window_moved"] += 1
        skip = lead - self.context_length // 4
        for slot in range(first_image):
            if skip < len(encoded[slot]):
                return slot, skip
            skip -= len(encoded[slot])
        return first_image, 0

    def _interleaved(self, doc_id, texts, blobs, encoded, epoch, counts: Counter) -> list[Sample]:
        special, limit, span = self.special, self.context_length, self.span
        ids: list[int] = [special.sot]
        images: list[np.ndarray] = []
        start, skip = self._window_start(texts, encoded, counts)
        image_slots = sum(text is None for text in texts)
        reached = 0  # image slots the walk got to before the context ran out
        complete = True
        for slot, text in enumerate(texts):
            if slot < start:
                continue
            if len(ids) >= limit:
                complete = False
                break
            if text is not None:
                ids.extend(encoded[slot][skip:] if slot == start else encoded[slot])
                continue
            if len(images) < self.max_images and len(ids) + len(span) > limit:
                # The span would be cut: end the sequence with <eot> where its <soi> would stand.
                ids.append(special.eot)
                complete = False
                break
            reached += 1
            if len(images) >= self.max_images:
                counts["images.over_max_images"] += 1
                continue
            pixels = self._image(doc_id, blobs[slot], epoch, slot, counts)
            if pixels is not None:
                ids.extend(span)
                images.append(pixels)
        else:
            ids.append(special.eot)
        if len(ids) > limit:
            ids = ids[:limit]
            complete = False
        counts["images.used"] += len(images)
        counts["images.cut_by_context"] += image_slots - reached
        counts["documents.truncated"] += not complete
        pixels = np.stack(images) if images else np.zeros((0, self.image_size, self.image_size, 3), np.uint8)
        return [Sample(doc_id, np.asarray(ids, dtype=np.int64), pixels)]

    def _pairs(self, doc_id, texts, blobs, encoded, epoch, counts: Counter) -> list[Sample]:
        special, span = self.special, self.span
        caption_room = self.context_length - self.tokens_per_image - 4  # LCL: context - N - 4 caption tokens
        samples: list[Sample] = []
        for slot, text in enumerate(texts):
            if text is not None:
                continue
            if len(samples) >= self.max_images:
                counts["images.over_max_images"] += 1
                continue
            neighbours = [s for s in (slot + 1, slot - 1) if 0 <= s < len(texts) and texts[s] is not None]
            if not neighbours:
                counts["images.no_caption"] += 1
                continue
            image_first, rng = self.placement(doc_id, epoch, slot)
            pixels = self._image(doc_id, blobs[slot], epoch, slot, counts, rng)
            if pixels is None:
                continue
            caption = encoded[neighbours[0]][:caption_room]
            if image_first:
                ids = span + caption + [special.eot]
            else:
                ids = [special.sot] + caption + span
            counts["images.used"] += 1
            samples.append(Sample(doc_id, np.asarray(ids, dtype=np.int64), pixels[None]))
        return samples

