"""Filling image slots with bytes: from the image records of the same WARC (the trunk's only source).

The unit's image records were stored by the extract phase; here each image slot whose URL is among them
gets its bytes, decoded facts (size, format) and `source = "warc"`. Slots whose URL is not stored keep the
URL with `status = "not_fetched"`; bytes that Pillow cannot read get `status = "decode_error"` and no bytes.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

from omnicorpus.document import Document


@dataclass(frozen=True, kw_only=True)
class ImagesConfig:
    resolve_from_warc: bool = True
    # Pillow's decompression-bomb guard: images declaring more pixels than this are refused undecoded.
    max_pixels: int = 89_478_485  # Pillow's own default MAX_IMAGE_PIXELS (~ 0.25 GB of RGBA)

    def __post_init__(self):
        if self.max_pixels <= 0:
            raise ValueError(f"images.max_pixels must be > 0, got {self.max_pixels}")


def describe_image(data: bytes, max_pixels: int) -> dict[str, Any]:
    """Facts about encoded image bytes: status, width, height, format, byte_size, sha256."""
    from PIL import Image

    facts: dict[str, Any] = {"byte_size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width <= 0 or height <= 0:
                    return {**facts, "status": "decode_error"}
                if width * height > max_pixels:
                    return {**facts, "status": "too_large", "width": width, "height": height}
                image_format = (image.format or "").lower() or None
                image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return {**facts, "status": "too_large"}
    except Exception:  # Pillow raises many types on hostile bytes
        return {**facts, "status": "decode_error"}
    return {**facts, "status": "ok", "width": width, "height": height, "format": image_format}


def resolve_from_store(document: Document, store: Mapping[str, bytes], config: ImagesConfig) -> dict[str, int]:
    """Fill the document's image slots from `store` (URL → bytes). Returns counts by status."""
    statuses: dict[str, int] = {}
    for slot in document.image_slots():
        info = document.image_info[slot]
        url = document.images[slot]
        data = store.get(url) if config.resolve_from_warc else None
        if data is not None:
            facts = describe_image(data, config.max_pixels)
            info.update(facts, source="warc")
            document.image_bytes[slot] = data if facts["status"] == "ok" else None
        elif info.get("status") is None:
            info["status"] = "not_fetched"
        statuses[info["status"]] = statuses.get(info["status"], 0) + 1
    return statuses

