"""Bytes to text for HTML payloads: BOM → HTTP charset → <meta> charset → UTF-8 → detection.

Never raises on bad bytes: the last resort decodes with replacement characters. Declared labels are mapped to
the superset codecs browsers use (WHATWG Encoding Standard), e.g. gb2312 → gb18030, iso-8859-1 → cp1252,
because pages labelled with the narrow charset routinely contain characters of the wide one.
"""

from __future__ import annotations

import codecs
import re

_CHARSET_PARAM = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE
)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))

# WHATWG Encoding Standard: labels that browsers decode with a wider codec.
_WHATWG_SUPERSETS = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "chinese": "gb18030",
    "csgb2312": "gb18030", "iso-ir-58": "gb18030",
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
    "ascii": "cp1252", "us-ascii": "cp1252", "iso-8859-9": "cp1254", "latin5": "cp1254",
    "iso-8859-11": "cp874", "tis-620": "cp874",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "ms_kanji": "cp932",
    "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "big5": "big5hkscs",
    # A page that says utf-16 in its own bytes was evidently parsed as ASCII: browsers use utf-8.
    "utf-16": "utf-8", "utf-16le": "utf-8", "utf-16be": "utf-8",
}

# Fraction of sampled bytes that are control characters above which a payload is binary, not HTML.
BINARY_CONTROL_FRACTION = 0.1
# A declared charset is kept when at most this fraction of characters fail to decode.
MAX_REPLACED_FRACTION = 0.005
_CONTROL_BYTES = bytes(set(range(32)) - {9, 10, 12, 13, 27})


def codec_for(label: str | bytes | None) -> str | None:
    """The Python codec for a charset label, or None when the label is unknown."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    label = label.strip().strip("\"'").lower()
    label = _WHATWG_SUPERSETS.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def looks_binary(payload: bytes) -> bool:
    sample = payload[:4096]
    if not sample:
        return False
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls / len(sample) > BINARY_CONTROL_FRACTION


def decode_html(payload: bytes, content_type: str | None) -> tuple[str, str]:
    """Returns (text, how) where `how` names the source of the encoding, e.g. 'http:gb18030'."""
    for bom, codec in _BOMS:
        if payload.startswith(bom):
            return payload[len(bom) :].decode(codec, "replace"), f"bom:{codec}"
    candidates: list[tuple[str, str]] = []
    if content_type and (match := _CHARSET_PARAM.search(content_type.encode("latin-1", "ignore"))):
        if codec := codec_for(match.group(1)):
            candidates.append(("http", codec))
    if match := _META_CHARSET.search(payload[:8192]):
        if codec := codec_for(match.group(1)):
            candidates.append(("meta", codec))
    candidates.append(("default", "utf-8"))
    for source, codec in candidates:
        try:
            return payload.decode(codec), f"{source}:{codec}"
        except UnicodeDecodeError:
            # A declared charset with a few bad bytes is still the right one; detection would do worse.
            text = payload.decode(codec, "replace")
            if source != "default" and text.count("\ufffd") <= MAX_REPLACED_FRACTION * len(text):
                return text, f"{source}:{codec}:replace"
    detected = _detect(payload)
    if detected:
        return payload.decode(detected, "replace"), f"detected:{detected}"
    source, codec = candidates[0]
    return payload.decode(codec, "replace"), f"{source}:{codec}:replace"


def _detect(payload: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(payload[:262144]).best()
    return codec_for(best.encoding) if best is not None else None
