"""Per-image decisions as pure functions: URL and declared-size pre-filters, then decode, validate and hash.

`inspect_image(data, config)` is the whole judgement of one image's bytes: Pillow opens the header (the
decompression-bomb guard and the format allow-list act before any pixel is decoded), decodes every pixel
(truncated or corrupt files fail here), applies the size and aspect filters and computes sha256, pHash and
dHash (imagehash). JPEGs are decoded in draft mode, at 1/2 to 1/8 scale straight out of libjpeg, which still
reads the whole entropy-coded stream (so truncation is caught) but is about 8x faster than a full decode
(bench/images.py); the hashes only need 32x32 pixels. Hashes are taken after the EXIF orientation is applied,
so a rotated copy of a picture hashes like the upright one.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from omnicorpus.images.config import ImagesConfig
from omnicorpus.images.status import OK

# Hashes need at least 32x32 pixels (imagehash's pHash: hash_size 8 x highfreq_factor 4); decode a bit more.
_HASH_DECODE_PX = 64


@dataclass(frozen=True)
class ImageFacts:
    """What `inspect_image` learned. `data` is what a shard stores (re-encoded when resizing is on)."""

    status: str
    byte_size: int
    sha256: str
    width: int | None = None
    height: int | None = None
    format: str | None = None
    phash: str | None = None
    dhash: str | None = None
    data: bytes | None = None
    error: str | None = None

    def image_info(self) -> dict[str, Any]:
        """The `image_info` fields these facts fill."""
        return {"status": self.status, "byte_size": self.byte_size, "sha256": self.sha256, "width": self.width,
                "height": self.height, "format": self.format, "phash": self.phash, "dhash": self.dhash}


# ---------------------------------------------------------------------------------------------------------
# Before fetching: judged from the URL and the HTML attributes


def url_verdict(url: str, config: ImagesConfig) -> str | None:
    """`banned_url` when the URL path holds a ban word, `bad_url` when it cannot be fetched, else None.

    Only the path and query are searched: host names such as iconic-photos.example are not decoration.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "bad_url"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "bad_url"
    path = unquote(f"{parts.path}?{parts.query}").lower()
    if any(word and word.lower() in path for word in config.url_ban_words):
        return "banned_url"
    return None


def declared_verdict(declared_width: int | None, declared_height: int | None, config: ImagesConfig) -> str | None:
    """`declared_too_small` when the HTML says the image is shown below the minimum side (OBELICS)."""
    if not config.declared_size_filter:
        return None
    for side in (declared_width, declared_height):
        if side is not None and 0 < side < config.min_side_px:
            return "declared_too_small"
    return None


def dimension_verdict(width: int, height: int, config: ImagesConfig) -> str | None:
    if width * height > config.max_pixels or max(width, height) > config.max_side_px:
        return "too_many_pixels"
    if min(width, height) < config.min_side_px:
        return "too_small"
    if max(width / height, height / width) > config.max_aspect_ratio:
        return "bad_aspect"
    return None


# ---------------------------------------------------------------------------------------------------------
# The bytes


def inspect_image(data: bytes, config: ImagesConfig) -> ImageFacts:
    """Decode, validate, filter and hash one image. Never raises on hostile bytes: the status says why."""
    base = {"byte_size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    with warnings.catch_warnings():
        # Turn Pillow's bomb warning (between max_pixels and twice that) into a refusal; silence the rest
        # (malformed MPO headers, palette transparency): the status is the verdict.
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            return ImageFacts(status="too_many_pixels", error=_message(exc), **base)
        except Exception as exc:  # Pillow raises many types on hostile bytes
            return ImageFacts(status="decode_error", error=_message(exc), **base)
        with image:
            width, height = image.size
            image_format = (image.format or "").lower() or None
            facts = {**base, "width": width, "height": height, "format": image_format}
            if width <= 0 or height <= 0:
                return ImageFacts(status="decode_error", error=f"zero-sized image {width}x{height}", **facts)
            if image_format not in config.formats:
                return ImageFacts(status="bad_format", **facts)
            if width * height > config.max_pixels or max(width, height) > config.max_side_px:
                return ImageFacts(status="too_many_pixels", **facts)
            try:
                small = _decode_for_hashing(image)
            except Exception as exc:
                return ImageFacts(status="decode_error", error=_message(exc), **facts)
            verdict = dimension_verdict(width, height, config)
            if verdict is not None:
                return ImageFacts(status=verdict, **facts)
            import imagehash

            phash, dhash = str(imagehash.phash(small)), str(imagehash.dhash(small))
            stored = data
            if config.resize_max_side_px and max(width, height) > config.resize_max_side_px:
                try:
                    stored, (width, height), image_format = _resized(data, config)
                except Exception as exc:
                    return ImageFacts(status="decode_error", error=_message(exc), **facts)
                base = {"byte_size": len(stored), "sha256": hashlib.sha256(stored).hexdigest()}
    return ImageFacts(status=OK, width=width, height=height, format=image_format, phash=phash, dhash=dhash,
                      data=stored, **base)


def _decode_for_hashing(image):
    """Decode every pixel (fails on truncated or corrupt data) into a small upright grayscale image."""
    if image.format == "JPEG":
        image.draft("L", (_HASH_DECODE_PX, _HASH_DECODE_PX))  # libjpeg's DCT scaling: 1/2 .. 1/8
    image.load()
    small = image if image.mode == "L" else image.convert("L")
    factor = min(small.size) // (2 * _HASH_DECODE_PX)
    if factor >= 2:
        small = small.reduce(factor)
    transpose = _EXIF_TRANSPOSE.get(_orientation(image))
    if transpose is not None:
        small = small.transpose(transpose)
    return small


def _orientation(image) -> int | None:
    try:
        return image.getexif().get(0x0112)  # the EXIF Orientation tag
    except Exception:  # a malformed EXIF block: the pixels as stored
        return None


# EXIF orientation → the transpose that makes the picture upright (as PIL.ImageOps.exif_transpose does).
_EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                   7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def _resized(data: bytes, config: ImagesConfig) -> tuple[bytes, tuple[int, int], str]:
    """Re-encode at most resize_max_side_px on the longer side, upright (the EXIF orientation is applied)."""
    from PIL import ImageOps

    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)
        upright = ImageOps.exif_transpose(image.convert("RGBA" if _has_alpha(image) else "RGB"))
    upright.thumbnail((config.resize_max_side_px, config.resize_max_side_px), Image.Resampling.LANCZOS)
    if config.resize_format == "jpeg" and upright.mode == "RGBA":
        flattened = Image.new("RGB", upright.size, (255, 255, 255))
        flattened.paste(upright, mask=upright.getchannel("A"))
        upright = flattened
    buffer = io.BytesIO()
    options = {"quality": config.resize_quality} if config.resize_format in ("jpeg", "webp") else {}
    upright.save(buffer, format=config.resize_format.upper(), **options)
    return buffer.getvalue(), upright.size, config.resize_format


def _has_alpha(image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _message(exc: BaseException) -> str:
    # Pillow names the file object ("<_io.BytesIO object at 0x...>"): drop it so messages repeat exactly.
    return _FILE_OBJECT.sub("(bytes)", f"{type(exc).__name__}: {exc}")[:300]


_FILE_OBJECT = re.compile(r"<_io\.BytesIO object at 0x[0-9a-f]+>")
