"""The trainer's data side: tokenizer, documents to sequences, the batch contract, the streaming dataset
(lcl.md §7.5 checks 1-5 and 14's data half)."""

import random
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from omnicorpus.document import Document
from omnicorpus.train import synthetic
from omnicorpus.train.interleave import SequenceBuilder, load_image
from omnicorpus.train.shards import ShardError, find_shards, list_units
from omnicorpus.train.tokenizer import TextTokenizer, train_tokenizer

torch = pytest.importorskip("torch")
# One intra-op thread: the tiny model's ops are too small to split, and on a busy 2-core machine a second
# OpenMP thread waiting at every barrier made the learnability run 15x slower (165 s against 11 s).
torch.set_num_threads(1)

from omnicorpus.train.batch import collate  # noqa: E402
from omnicorpus.train.stream import ShardStream, StreamError, batches  # noqa: E402

P = 4  # image tokens per image in these tests: short sequences, easy to read


@pytest.fixture(scope="module")
def corpus():
    return synthetic.make_corpus(96, seed=7)


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return train_tokenizer((text for doc in corpus for text in doc.texts if text), 200, "word")


@pytest.fixture(scope="module")
def shards(tmp_path_factory, corpus):
    folder = tmp_path_factory.mktemp("synthetic")
    synthetic.write_shards(folder, corpus, docs_per_shard=40, row_group_docs=8)
    return folder


def builder(tokenizer, **options):
    settings = dict(tokens_per_image=P, context_length=64, image_size=16)
    settings.update(options)
    return SequenceBuilder(tokenizer, **settings)


def document(*slots, doc_id="doc"):
    """Slots: text strings, or ("img", bytes | None) for an image slot."""
    doc = Document(id=doc_id, url=f"https://example.org/{doc_id}")
    for slot in slots:
        if isinstance(slot, tuple):
            doc.append_image(f"https://example.org/{doc_id}/{len(doc.texts)}.png", None, slot[1])
        else:
            doc.append_text(slot)
    return doc.to_row()


def png(label=0, seed=0):
    return synthetic.render(label, random.Random(seed))


def test_tokenizer_has_dedicated_special_tokens_and_text_never_encodes_to_them(tokenizer, tmp_path):
    special = tokenizer.special
    assert len({special.pad, special.sot, special.eot, special.soi, special.img, special.eoi}) == 6
    ids = tokenizer.encode("a red disc ! <soi> <img> <pad>")
    assert not set(ids) & {special.soi, special.img, special.pad, special.eoi}
    tokenizer.save(tmp_path / "tokenizer.json")
    assert TextTokenizer.from_file(tmp_path / "tokenizer.json").special == special
    bpe = train_tokenizer(["a red disc! a blue ring!"] * 20, 300, "bpe")
    assert "!" in bpe.decode(bpe.encode("disc!")), "'!' is ordinary text, not padding (LCL's id-0 hack)"
    assert bpe.special.pad not in bpe.encode("!!!")


def test_interleaved_sequence_keeps_slot_order_with_one_span_per_image(tokenizer):
    counts = Counter()
    row = document("a red disc.", ("img", png(0)), "the train was late.", ("img", png(5)), "a blue ring.")
    (sample,) = builder(tokenizer).build(row, 0, counts)
    special, ids = tokenizer.special, sample.ids.tolist()
    assert ids[0] == special.sot and ids[-1] == special.eot
    starts = [i for i, t in enumerate(ids) if t == special.soi]
    assert len(starts) == 2 == len(sample.images)
    for start in starts:
        assert ids[start + 1: start + 1 + P] == [special.img] * P and ids[start + 1 + P] == special.eoi
    assert tokenizer.decode(ids[1:starts[0]]) == "a red disc ."
    assert sample.images.shape == (2, 16, 16, 3) and sample.images.dtype == np.uint8
    assert counts["images.used"] == 2 and counts["documents.used"] == 1


def test_truncation_never_splits_a_span_and_trims_the_images(tokenizer):
    row = document("a red disc.", ("img", png(0)), "a blue ring.", ("img", png(1)), "a green bar.", ("img", png(2)))
    counts = Counter()
    for limit in range(8, 40):
        (sample,) = builder(tokenizer, context_length=limit, min_images=0).build(row, 0, counts)
        ids = sample.ids.tolist()
        assert len(ids) <= limit
        spans = [i for i, t in enumerate(ids) if t == tokenizer.special.soi]
        assert len(spans) == len(sample.images)
        for start in spans:  # every span is whole
            assert ids[start + 1 + P] == tokenizer.special.eoi
        assert ids.count(tokenizer.special.img) == P * len(sample.images)
    assert counts["images.cut_by_context"] > 0 and counts["documents.truncated"] > 0


def test_a_long_lead_text_moves_the_window_to_the_first_image(tokenizer):
    lead = " ".join(["the train was late."] * 40)  # far longer than the context
    row = document(lead, ("img", png(0)), "a red disc.", ("img", png(1)), "a blue ring.")
    counts = Counter()
    (sample,) = builder(tokenizer, context_length=48).build(row, 0, counts)
    ids = sample.ids.tolist()
    assert len(ids) <= 48 and ids[0] == tokenizer.special.sot
    first = ids.index(tokenizer.special.soi)
    assert first - 1 == 48 // 4  # a quarter of the context of lead-in text before the first image
    assert len(sample.images) >= 1 and counts["documents.window_moved"] == 1
    short = document("a red disc.", ("img", png(0)))
    builder(tokenizer, context_length=48).build(short, 0, counts)
    assert counts["documents.window_moved"] == 1  # a document that fits starts at its beginning


def test_unusable_images_are_counted_and_documents_without_images_skipped(tokenizer):
    counts = Counter()
    row = document("intro text.", ("img", None), "middle text.", ("img", b"not an image"), "end.")
    assert builder(tokenizer).build(row, 0, counts) == []
    assert counts["images.missing_bytes"] == 1 and counts["images.undecodable"] == 1
    assert counts["documents.skipped_too_few_images"] == 1
    (text_only,) = builder(tokenizer, min_images=0).build(row, 0, Counter())
    assert len(text_only.images) == 0 and tokenizer.special.soi not in text_only.ids
    many = document(*[item for i in range(8) for item in (f"caption {i}.", ("img", png(i)))])
    counts = Counter()
    (sample,) = builder(tokenizer, context_length=200).build(many, 0, counts)
    assert len(sample.images) == 6 and counts["images.over_max_images"] == 2  # LCL: at most 6 per document


def test_load_image_handles_modes_sizes_and_garbage():
    from PIL import Image
    import io

    def encoded(image, fmt):
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
        return buffer.getvalue()

    transparent = Image.new("RGBA", (40, 20), (255, 0, 0, 0))
    pixels = load_image(encoded(transparent, "PNG"), 8)
    assert pixels.shape == (8, 8, 3) and pixels.min() == 255, "transparency is composited on white"
    assert load_image(encoded(Image.new("L", (3, 300), 7), "JPEG"), 8).shape == (8, 8, 3)
    assert load_image(encoded(Image.new("P", (50, 50)), "GIF"), 8).shape == (8, 8, 3)
    assert load_image(b"GIF89a broken", 8) is None and load_image(b"", 8) is None
    crop_a, crop_b = (load_image(png(3), 16, random.Random(seed)) for seed in (1, 1))
    assert np.array_equal(crop_a, crop_b), "augmentation is seeded"


def test_batch_contract_spans_pairs_and_targets(tokenizer, corpus):
    special = tokenizer.special
    build = builder(tokenizer)
    samples = [s for doc in corpus[:12] for s in build.build(doc.to_row(), 0, Counter())]
    samples += build.build(document(("img", png(1)), "a red ring opens this page."), 0, Counter())
    batch = collate(samples, special, P)
    ids = batch.ids
    flat = ids.reshape(-1)
    # 1. every <img> position is filled by exactly one image token, images in span order
    assert int((ids == special.img).sum()) == batch.num_images * P == batch.img_tok_idx.numel()
    assert torch.equal(flat[batch.img_tok_idx], torch.full_like(batch.img_tok_idx, special.img))
    # 2. one contrastive pair per <soi> that is not at a document start (<sot> right before it)
    soi = (flat == special.soi).nonzero().squeeze(1)
    at_start = [(p % ids.shape[1]) == 1 for p in soi.tolist()]
    assert batch.num_pairs == len(soi) - sum(at_start) and sum(at_start) > 0
    assert torch.equal(flat[batch.soi_idx], torch.full_like(batch.soi_idx, special.soi))
    spans_before = torch.searchsorted(soi, batch.soi_idx)
    assert torch.equal(batch.soi_img, spans_before), "soi_img names the image each <soi> opens"
    # 5. targets: never <pad>, <img> or <eoi>; <soi> and <eot> are targets (LCL parity)
    targets = set(batch.gen_tgt.tolist())
    assert not targets & {special.pad, special.img, special.eoi}
    assert {special.soi, special.eot} <= targets
    assert torch.equal(batch.gen_tgt, flat[batch.gen_src + 1])
    expected = sum(1 for row in ids.tolist() for a, b in zip(row, row[1:])
                   if b not in (special.pad, special.img, special.eoi))
    assert batch.gen_src.numel() == expected


def test_pairs_layout_places_images_first_about_half_the_time(tokenizer):
    build = builder(tokenizer, layout="pairs")
    image_first = sum(build.placement(f"doc-{index}", 0, 1)[0] for index in range(10_000))
    assert 4800 < image_first < 5200  # binomial(10k, 0.5): 4 standard deviations either side
    special = tokenizer.special
    orders = set()
    for index in range(12):
        row = dict(document("a red disc.", ("img", png(0)), "a blue ring."), id=f"doc-{index}")
        (sample,) = build.build(row, 0, Counter())  # one pair: the caption is the next text block
        ids = sample.ids.tolist()
        first = build.placement(row["id"], 0, 1)[0]
        orders.add(first)
        if first:  # LCL InterleavedWrapper: <soi> <img>×P <eoi> caption <eot>, no <sot>
            assert ids[: P + 2] == build.span and ids[-1] == special.eot
            assert tokenizer.decode(ids[P + 2:-1]) == "a blue ring ."
        else:  # <sot> caption <soi> <img>×P <eoi>, nothing after the image
            assert ids[0] == special.sot and ids[-(P + 2):] == build.span
    assert orders == {True, False}


def test_find_shards_accepts_run_folders_globs_and_fsspec_urls(shards, tmp_path):
    files = find_shards([str(shards)])
    assert len(files) == 3 and all(f.endswith(".parquet") for f in files)
    assert find_shards([str(shards / "shards" / "*.parquet")]) == files
    assert len(find_shards([f"file://{shards}"])) == 3
    units = list_units(files)
    assert sum(u.num_rows for u in units) == 96 and [u.first_row for u in units][:2] == [0, 8]
    with pytest.raises(ShardError, match="names no .parquet"):
        find_shards([str(tmp_path / "missing")])
    import fsspec  # any fsspec URL: the in-memory file system stands in for s3:// or https://

    memory = fsspec.filesystem("memory")
    for path in files:
        memory.pipe(f"/{tmp_path.name}/shards/{path.rsplit('/', 1)[-1]}", open(path, "rb").read())
    remote = find_shards([f"memory://{tmp_path.name}"])
    assert len(remote) == 3 and remote[0].startswith("memory://")
    assert [u.num_rows for u in list_units(remote)] == [u.num_rows for u in units]


def test_two_ranks_times_two_workers_see_every_document_once_per_epoch(shards, tokenizer):
    units = list_units(find_shards([str(shards)]))
    seen: list[str] = []
    for rank in range(2):
        stream = ShardStream(units, builder(tokenizer, min_images=0), batch_size=5, rank=rank, world_size=2,
                             workers=2, max_epochs=1, seed=3)
        seen += [doc for batch in batches(stream) for doc in batch.doc_ids]
    assert len(seen) == 96 and len(set(seen)) == 96
    # Fewer row groups than readers: rows are split instead, still exactly once.
    few = [u for u in units if u.path == units[0].path][:1]
    seen = []
    for rank in range(2):
        stream = ShardStream(few, builder(tokenizer, min_images=0), batch_size=3, rank=rank, world_size=2,
                             workers=2, max_epochs=1)
        seen += [doc for batch in batches(stream) for doc in batch.doc_ids]
    assert sorted(seen) == sorted(set(seen)) and len(seen) == few[0].num_rows
    with pytest.raises(StreamError, match="cannot feed"):
        ShardStream(few, builder(tokenizer), batch_size=2, world_size=4, workers=4)


def test_stream_resumes_mid_epoch_exactly(shards, tokenizer):
    units = list_units(find_shards([str(shards)]))

    def make():
        return ShardStream(units, builder(tokenizer, augment=True), batch_size=7, workers=2, seed=5,
                           shuffle_units=3)

    reference = [batch.digest() for _, batch in zip(range(30), batches(make()))]
    first = make()
    head = [batch.digest() for _, batch in zip(range(17), batches(first))]
    state = first.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    tail = [batch.digest() for _, batch in zip(range(13), batches(resumed))]
    assert head + tail == reference, "batches 18..30 after a resume are the uninterrupted ones"
    assert state["readers"]["0"]["epoch"] >= 1, "the run crossed an epoch boundary (the stream is endless)"
    other = ShardStream(units, builder(tokenizer), batch_size=7, workers=1, seed=5)
    with pytest.raises(StreamError, match="another set-up"):
        other.load_state_dict(state)


def test_import_omnicorpus_and_its_cli_stay_torch_free():
    code = ("import sys, omnicorpus, omnicorpus.cli, omnicorpus.train.cli, omnicorpus.train.synthetic;"
            "omnicorpus.cli.build_parser();"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
