"""Per-image decisions: pre-filters, decode/validate/hash on real sample images, resizing, the stages."""

import hashlib
import io
import json

import imagehash
import pytest
from PIL import Image

from omnicorpus.config import ConfigError, load_config
from omnicorpus.images.config import ImageFrequencyConfig, ImagesConfig
from omnicorpus.images.decode import declared_verdict, dimension_verdict, inspect_image, url_verdict
from omnicorpus.images.stage import ImageFrequencyStage, ImageOutcome, ImagesStage, frequency_key
from omnicorpus.images.status import STATUSES
from omnicorpus.schema import is_declared_reason
from omnicorpus.stage import StageStats, run_stages
from tests.builders import make_document
from tests.conftest import FIXTURES

IMAGES = FIXTURES / "images"
EXPECTED = json.loads((IMAGES / "expected.json").read_text())
DEFAULT = ImagesConfig()


def expected_status(facts: dict, config: ImagesConfig) -> str:
    """The status the shared facts call for under our rules (independent of our decoder's own reading)."""
    if not facts["decodes"]:
        return "too_many_pixels" if facts["error"].startswith("DecompressionBombError") else "decode_error"
    if facts["format"].lower() not in config.formats:
        return "bad_format"
    return dimension_verdict(facts["width"], facts["height"], config) or "ok"


@pytest.mark.parametrize("name", sorted(EXPECTED["files"]))
def test_every_sample_image_gets_the_outcome_its_facts_call_for(name):
    facts = EXPECTED["files"][name]
    data = (IMAGES / name).read_bytes()
    result = inspect_image(data, DEFAULT)
    assert result.status == expected_status(facts, DEFAULT), result.error
    assert result.byte_size == facts["bytes"] == len(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    if facts["decodes"]:
        assert (result.width, result.height, result.format) == (facts["width"], facts["height"],
                                                                  facts["format"].lower())
    else:
        assert result.data is None and result.error
    if result.status == "ok":
        assert result.data == data and len(result.phash) == len(result.dhash) == 16


def test_the_decompression_bomb_is_refused_before_decoding():
    result = inspect_image((IMAGES / "decompression_bomb.gif").read_bytes(), DEFAULT)
    assert result.status == "too_many_pixels" and result.phash is None and result.width is None
    assert "DecompressionBomb" in result.error
    # A bomb below Pillow's own hard limit is caught by images.max_pixels.
    small_limit = ImagesConfig(max_pixels=400 * 300)
    assert inspect_image((IMAGES / "iptc.jpg").read_bytes(), small_limit).status == "too_many_pixels"


def test_near_duplicate_families_hash_close_and_exif_rotation_is_undone():
    lenient = ImagesConfig(min_side_px=1)
    for family, members in EXPECTED["families"].items():
        hashes = [inspect_image((IMAGES / name).read_bytes(), lenient) for name in members]
        assert {h.status for h in hashes} == {"ok"}, family
        first = imagehash.hex_to_hash(hashes[0].dhash)
        assert all(imagehash.hex_to_hash(h.dhash) - first <= 10 for h in hashes), family
    # hopper_orientation_6.jpg stores its pixels rotated; hashed upright it matches hopper.jpg, and hashed
    # as stored it would not.
    upright = inspect_image((IMAGES / "hopper_orientation_6.jpg").read_bytes(), lenient)
    reference = inspect_image((IMAGES / "hopper.jpg").read_bytes(), lenient)
    stored = Image.open(IMAGES / "hopper_orientation_6.jpg")
    as_stored = imagehash.dhash(stored)
    assert imagehash.hex_to_hash(upright.dhash) - imagehash.hex_to_hash(reference.dhash) <= 4
    assert as_stored - imagehash.hex_to_hash(reference.dhash) > 10


def test_hashes_from_draft_decoding_match_a_full_decode():
    data = (IMAGES / "iptc.jpg").read_bytes()
    fast = inspect_image(data, DEFAULT)
    full = Image.open(io.BytesIO(data))
    full.load()
    assert imagehash.hex_to_hash(fast.phash) - imagehash.phash(full) <= 4
    assert imagehash.hex_to_hash(fast.dhash) - imagehash.dhash(full) <= 4


def test_formats_outside_the_allow_list_are_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (300, 300), (1, 2, 3)).save(buffer, format="TIFF")
    assert inspect_image(buffer.getvalue(), DEFAULT).status == "bad_format"
    assert inspect_image(buffer.getvalue(), ImagesConfig(formats=("tiff",))).status == "ok"
    webp = (IMAGES / "flower.webp").read_bytes()
    assert inspect_image(webp, ImagesConfig(formats=("jpeg", "png"))).status == "bad_format"


def test_resizing_re_encodes_upright_and_hashes_what_is_stored():
    config = ImagesConfig(resize_max_side_px=200, min_side_px=100)
    data = (IMAGES / "flower.jpg").read_bytes()  # 480x360
    result = inspect_image(data, config)
    assert result.status == "ok" and (result.width, result.height) == (200, 150) and result.format == "jpeg"
    assert result.data != data and result.sha256 == hashlib.sha256(result.data).hexdigest()
    assert result.byte_size == len(result.data) and Image.open(io.BytesIO(result.data)).size == (200, 150)
    transparent = inspect_image((IMAGES / "transparent.gif").read_bytes(),
                                ImagesConfig(resize_max_side_px=100, resize_format="png", min_side_px=100))
    assert transparent.format == "png" and Image.open(io.BytesIO(transparent.data)).mode == "RGBA"
    small = inspect_image((IMAGES / "iptc.jpg").read_bytes(), ImagesConfig(resize_max_side_px=1000))
    assert small.data == (IMAGES / "iptc.jpg").read_bytes()  # not above the limit: original bytes


@pytest.mark.parametrize("url, verdict", [
    ("https://example.org/photos/cat.jpg", None),
    ("https://example.org/static/Site-Logo.png", "banned_url"),
    ("https://example.org/img/share_button.gif?v=2", "banned_url"),
    ("https://example.org/x.png?type=icon", "banned_url"),
    ("https://example.org/wp-content/plugins/slider/a.jpg", "banned_url"),
    ("https://iconic-photos.example/cat.jpg", None),  # the host is not searched
    ("ftp://example.org/a.jpg", "bad_url"),
    ("https:///a.jpg", "bad_url"),
])
def test_url_ban_words(url, verdict):
    assert url_verdict(url, DEFAULT) == verdict


def test_declared_size_prefilter():
    assert declared_verdict(100, 400, DEFAULT) == "declared_too_small"
    assert declared_verdict(None, 149, DEFAULT) == "declared_too_small"
    assert declared_verdict(300, None, DEFAULT) is None
    assert declared_verdict(None, None, DEFAULT) is None
    assert declared_verdict(0, 0, DEFAULT) is None  # width="0": unknown, not small
    assert declared_verdict(100, 100, ImagesConfig(declared_size_filter=False)) is None


def test_dimension_rules_match_the_anchors():
    assert dimension_verdict(150, 150, DEFAULT) is None
    assert dimension_verdict(149, 300, DEFAULT) == "too_small"
    assert dimension_verdict(300, 600, DEFAULT) is None  # exactly 2
    assert dimension_verdict(300, 601, DEFAULT) == "bad_aspect"
    assert dimension_verdict(20_001, 10_001, ImagesConfig(max_pixels=10**9)) == "too_many_pixels"


def test_bad_config_is_named():
    with pytest.raises(ConfigError, match="images.min_side_px must be > 0"):
        load_config(None, {"images.min_side_px": 0})
    with pytest.raises(ConfigError, match="images.fetch_allow_networks: 'localhost' is not an IP network"):
        load_config(None, {"images.fetch_allow_networks": ["localhost"]})
    with pytest.raises(ConfigError, match="image_frequency.key must be one of"):
        load_config(None, {"image_frequency.key": "colour"})
    with pytest.raises(ConfigError, match="images.formats must be a non-empty list"):
        load_config(None, {"images.formats": ["svg"]})


def test_every_status_is_a_declared_removal_reason():
    for status in STATUSES:
        if status != "ok":
            assert is_declared_reason(f"images.{status}"), status
    ImagesStage.check_declared()
    ImageFrequencyStage.check_declared()


# ---------------------------------------------------------------------------------------------------------
# The stages


def _ok(sha: str, phash: str, data: bytes = b"bytes") -> ImageOutcome:
    return ImageOutcome("ok", "http", {"width": 300, "height": 200, "format": "jpeg", "byte_size": len(data),
                                       "sha256": sha, "phash": phash, "dhash": "0" * 16}, data)


def _run(stage, documents):
    stats = {stage.name: StageStats()}
    kept, rejected = run_stages([stage], documents, stats)
    stats[stage.name].check(stage.name)
    return kept, rejected, stats[stage.name]


def test_images_stage_keeps_bytes_removes_failures_and_repeats_and_merges_texts():
    document = make_document("Intro.", "img:https://a.org/1.jpg", "Middle.", "img:https://a.org/404.jpg",
                             "After the missing one.", "img:https://a.org/copy-of-1.jpg", "img:https://a.org/logo.png",
                             "img:https://a.org/2.jpg", "End.")
    outcomes = {"https://a.org/1.jpg": _ok("a" * 64, "1" * 16),
                "https://a.org/404.jpg": ImageOutcome("not_found", "http"),
                "https://a.org/copy-of-1.jpg": _ok("a" * 64, "1" * 16), "https://a.org/2.jpg": _ok("b" * 64, "2" * 16)}
    stage = ImagesStage(ImagesConfig(), outcomes)
    (kept,), rejected, stats = _run(stage, [document])
    assert kept.texts == ["Intro.", None, "Middle.\n\nAfter the missing one.", None, "End."]
    assert kept.images == [None, "https://a.org/1.jpg", None, "https://a.org/2.jpg", None]
    assert kept.image_bytes[1] == b"bytes" and kept.image_info[3]["sha256"] == "b" * 64
    assert kept.image_info[1]["status"] == "ok" and kept.image_info[1]["source"] == "http"
    assert [(e["position"], e["reason"], e["image_url"]) for e in kept.removed] == [
        (3, "images.not_found", "https://a.org/404.jpg"),
        (5, "images.duplicate_in_document", "https://a.org/copy-of-1.jpg"),
        (6, "images.banned_url", "https://a.org/logo.png"),
    ]
    assert stats.removed == {"images.not_found": 1, "images.duplicate_in_document": 1, "images.banned_url": 1}
    assert stage.status_counts == {"ok": 3, "not_found": 1, "banned_url": 1}


def test_images_stage_drops_documents_left_without_enough_images():
    document = make_document("Text.", "img:https://a.org/gone.jpg", "More text.")
    kept, (rejected,), stats = _run(ImagesStage(ImagesConfig(), {}), [document])
    assert kept == [] and rejected.drop_reason == "images.too_few_images"
    assert rejected.texts == ["Text.\n\nMore text."] and rejected.removed[0]["reason"] == "images.not_fetched"
    text_only_allowed = ImagesStage(ImagesConfig(min_images=0), {})
    (kept,), _, _ = _run(text_only_allowed, [make_document("Text.", "img:https://a.org/x.jpg")])
    assert kept.images == [None]


def test_keep_unresolved_keeps_urls_but_never_rejected_content():
    document = make_document("Text.", "img:https://a.org/timeout.jpg", "img:https://a.org/noai.jpg",
                             "img:https://a.org/tiny.jpg")
    outcomes = {"https://a.org/timeout.jpg": ImageOutcome("timeout", "http"),
                "https://a.org/noai.jpg": ImageOutcome("opted_out", "http"),
                "https://a.org/tiny.jpg": ImageOutcome("too_small", "http", {"width": 10, "height": 10})}
    (kept,), _, _ = _run(ImagesStage(ImagesConfig(keep_unresolved=True), outcomes), [document])
    assert kept.images == [None, "https://a.org/timeout.jpg"]
    assert kept.image_info[1]["status"] == "timeout" and kept.image_bytes == [None, None]
    assert [e["reason"] for e in kept.removed] == ["images.opted_out", "images.too_small"]


def test_declared_size_removes_before_any_bytes():
    document = make_document("Text.", "img:https://a.org/spacer.gif", "img:https://a.org/photo.jpg")
    document.image_info[1]["declared_width"] = 1
    document.image_info[1]["declared_height"] = 1
    outcomes = {"https://a.org/photo.jpg": _ok("c" * 64, "3" * 16)}
    (kept,), _, _ = _run(ImagesStage(ImagesConfig(), outcomes), [document])
    assert kept.removed[0]["reason"] == "images.declared_too_small" and kept.num_images == 1


def test_frequency_stage_records_dup_count_and_removes_frequent_images():
    logo, photo = {"phash": "f" * 16}, {"phash": "e" * 16}
    document = make_document("Text.", "img:https://a.org/brand.png", "Words.", "img:https://a.org/photo.jpg")
    document.image_info[1].update(logo)
    document.image_info[3].update(photo)
    counts = {frequency_key("https://a.org/brand.png", logo, "phash"): 11}
    (kept,), _, stats = _run(ImageFrequencyStage(ImageFrequencyConfig(), counts, 1), [document])
    assert kept.images == [None, "https://a.org/photo.jpg"] and kept.texts == ["Text.\n\nWords.", None]
    assert kept.image_info[1]["dup_count"] == 1
    assert kept.removed == [{"position": 1, "kind": "image", "reason": "image_frequency.too_frequent",
                             "text": None, "image_url": "https://a.org/brand.png"}]

    def only_logo():
        document = make_document("Text.", "img:https://a.org/brand.png")
        document.image_info[1].update(logo)
        return document

    _, (rejected,), _ = _run(ImageFrequencyStage(ImageFrequencyConfig(), counts, 1), [only_logo()])
    assert rejected.drop_reason == "image_frequency.too_few_images"
    # At the cap the image stays: more than max_documents removes it.
    (kept,), _, _ = _run(ImageFrequencyStage(ImageFrequencyConfig(max_documents=11), counts, 1), [only_logo()])
    assert kept.image_info[1]["dup_count"] == 11 and kept.removed == []


def test_frequency_keys():
    info = {"phash": "ab" * 8, "sha256": "cd" * 32}
    assert frequency_key("https://a.org/x.jpg", info, "phash") == "phash:" + "ab" * 8
    assert frequency_key("https://a.org/x.jpg", info, "url") == "url:https://a.org/x.jpg"
    assert frequency_key("https://a.org/x.jpg", {}, "phash") == "url:https://a.org/x.jpg"


def test_the_docs_list_every_status_and_every_key():
    import dataclasses

    from tests.conftest import ROOT

    contract = (ROOT / "docs" / "data-contract.md").read_text()
    assert all(f"| `{status}` |" in contract for status in STATUSES)
    configuration = (ROOT / "docs" / "configuration.md").read_text()
    for section, cls in (("images", ImagesConfig), ("image_frequency", ImageFrequencyConfig)):
        for field in dataclasses.fields(cls):
            assert f"`{section}.{field.name}`" in configuration, f"{section}.{field.name}"
