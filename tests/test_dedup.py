import datetime as dt
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from omnicorpus.cli import main
from omnicorpus.config import ConfigError, load_config
from tests.builders import NO_TEXT_FILTERS
from omnicorpus.dedup.cluster import EDGE_SCHEMA, StarEdges, connected_components, node_partition
from omnicorpus.dedup.command import run_dedup
from omnicorpus.dedup.keys import KEY_SCHEMA, pack_node
from omnicorpus.dedup.minhash import MinHasher, candidate_probability, choose_layout, shingle_hash, shingles
from omnicorpus.dedup.normalize import normalize_text, normalize_url, tokenize_batch
from omnicorpus.document import Document, document_id, new_image_info
from omnicorpus.io.paths import InputError
from omnicorpus.pipeline import run
from omnicorpus.runner.local import LocalExecutor
from omnicorpus.validate import validate_output
from tests.builders import html_page, make_warc
from tests.near_duplicates import ARTICLES, dedup_clusters, labelled_set, score_pairs, write_shard

UTC = dt.timezone.utc


def local_config(**overrides):
    return load_config(None, {"run.runner": "local", **overrides})


def article(name="wikia"):
    return (ARTICLES / f"{name}.txt").read_text(encoding="utf-8")


def doc(name, text, url=None, day=1, images=(), **fields):
    document = Document(id=document_id(name), url=url or f"https://example.org/{name}", domain="example.org",
                        fetch_time=dt.datetime(2024, 1, day, tzinfo=UTC), **fields)
    document.append_text(text)
    for image in images:
        document.append_image(image, new_image_info(status="not_fetched"))
    return document


def outcome(output):
    """id -> (drop_reason or None, duplicate_of) over a run's shards and rejects."""
    result = {}
    for folder in ("shards", "rejects"):
        for row in pq.read_table(Path(output) / folder, columns=["id", "drop_reason", "signals"]).to_pylist():
            result[row["id"]] = (row["drop_reason"], row["signals"]["duplicate_of"])
    return result


# ---------------------------------------------------------------------------------------------------------
# Normalisation and signatures


def test_vectorised_words_equal_the_regex_normalisation():
    rng = random.Random(7)
    pool = ([chr(c) for c in range(32, 127)] * 3 + [chr(c) for c in range(0xA0, 0x250)]
            + [chr(c) for c in range(0x300, 0x370)] + [chr(c) for c in range(0x3040, 0x3100)]
            + [chr(c) for c in range(0x4E00, 0x4E40)] + [chr(c) for c in range(0x900, 0x980)]
            + ["\U0001F600", "\U00020000", "\U0001D7D8", "\uff10", "\ufb01", "\u0130", "\u03a3", "\x00", "_"])
    texts = [article("aktualne"), article("gmw"), "", "  ", "Café 1,000.5 ①² ΑΣ Σίσυφος_x 2020年 東京タワー"]
    texts += ["".join(rng.choice(pool) for _ in range(rng.randrange(0, 60))) for _ in range(300)]
    tokens = tokenize_batch(texts)
    points = tokens.code_points
    for index, text in enumerate(texts):
        words = ["".join(map(chr, points[start:end]))
                 for start, end in zip(tokens.starts[tokens.owners == index], tokens.ends[tokens.owners == index])]
        assert words == normalize_text(text).split(), repr(text)
    assert normalize_text("Ünïcödé CAFÉ, 12 345 cafés!") == "unicode cafe 0 0 cafes"
    assert normalize_text("東京タワー 2020年") == "東 京 タ ワ ー 0 年"


def test_signatures_equal_datasketch_minhash_of_the_same_shingles():
    from datasketch import MinHash

    texts = [article(name) for name in ("wikia", "gmw", "folha")] + ["three short words", "", "!!!"]
    sketches = MinHasher(num_perm=64, ngram=5, seed=3).sketch(texts)
    for text, signature, has_words in zip(texts, sketches.signatures, sketches.has_words):
        reference = MinHash(num_perm=64, seed=3, hashfunc=shingle_hash)
        reference.update_batch(shingles(normalize_text(text), 5))
        assert has_words == bool(normalize_text(text))
        assert np.array_equal(reference.hashvalues, signature)
    # Equal normalised text gives an equal content digest; one changed word does not.
    again = MinHasher(num_perm=64, ngram=5, seed=3).sketch([texts[0].upper(), texts[0] + " extra"])
    assert again.content_digests[0] == sketches.content_digests[0] != again.content_digests[1]


def test_the_default_band_layout_finds_pairs_at_the_threshold_where_datasketchs_misses_half():
    from datasketch.lsh import _optimal_param

    assert choose_layout(0.8, 112) == (14, 8)
    assert _optimal_param(0.8, 112, 0.5, 0.5) == (9, 12)
    assert candidate_probability(0.8, 14, 8) > 0.92 > 0.5 > candidate_probability(0.8, 9, 12)
    assert load_config(None).dedup.near.layout == (14, 8)


def test_urls_normalise_to_one_page_identity():
    same = ["https://www.Example.org/a/b/?utm_source=x&b=2&a=1#top", "http://example.org:80/a/b?a=1&b=2",
            "https://example.org/a/%62?b=2&fbclid=123&a=1"]
    assert len({normalize_url(url) for url in same}) == 1
    assert normalize_url("https://example.org/a?b=1") != normalize_url("https://example.org/a?b=2")
    assert normalize_url("https://example.org:8080/a") != normalize_url("https://example.org/a")
    assert normalize_url("") is None and normalize_url(None) is None


def test_config_is_checked():
    with pytest.raises(ConfigError, match="dedup.keep must be one of"):
        local_config(**{"dedup.keep": "oldest"})
    with pytest.raises(ConfigError, match="bands and rows are both 0"):
        local_config(**{"dedup.near": {"bands": 10}})
    with pytest.raises(ConfigError, match="needs more than num_perm"):
        local_config(**{"dedup.near": {"bands": 20, "rows": 8}})
    with pytest.raises(ConfigError, match="unknown key 'dedup.near.treshold'"):
        local_config(**{"dedup.near": {"treshold": 0.7}})


# ---------------------------------------------------------------------------------------------------------
# Quality on real near-duplicates


def test_labelled_near_duplicates_are_found_with_high_precision_and_recall(tmp_path):
    labelled = labelled_set()
    labels = {item.document.id: item.article for item in labelled}
    for kinds, name in (({}, "all kinds"),
                        ({"dedup.url": False, "dedup.content": False, "dedup.image_set": False}, "MinHash only")):
        cluster_of = dedup_clusters([item.document for item in labelled], local_config(**kinds), tmp_path / name)
        scores = score_pairs(labels, cluster_of)
        assert scores.precision >= 0.95 and scores.recall >= 0.95, (name, scores)
    # The copy kept is the newest capture of each article; the others name it.
    newest = {item.article: item.document.id for item in labelled}  # edits are in capture order
    assert {cluster_of[item.document.id] for item in labelled if item.article == "wikia"} == {newest["wikia"]}


# ---------------------------------------------------------------------------------------------------------
# Kinds, reasons and keep policies


def test_each_kind_is_dropped_with_its_reason_and_the_kept_document(tmp_path):
    text = article("wikia")
    other = article("wordpress")
    documents = [
        doc("url-old", other, url="https://site.org/page", day=1),
        doc("url-new", other + " Updated.", url="http://www.site.org/page/", day=5),
        doc("content-a", text, url="https://a.org/x", day=2),
        doc("content-b", text.replace(".", "!"), url="https://b.org/y", day=3),
        doc("near-a", article("folha"), day=2),
        doc("near-b", article("folha").replace("\n\n", " Anúncio.\n\n", 2), day=4),
        doc("images-a", "A caption only.", images=["https://i.org/1.jpg", "https://i.org/2.jpg"], day=1),
        doc("images-b", "Another caption.", images=["https://i.org/2.jpg", "https://i.org/1.jpg"], day=2),
        doc("one-image-a", "Logo page one.", images=["https://i.org/logo.png"], day=1),
        doc("one-image-b", "Logo page two.", images=["https://i.org/logo.png"], day=2),
        doc("unique", article("iab-1"), day=1),
    ]
    result = run_dedup(local_config(), [str(write_shard(documents, tmp_path / "in" / "s.parquet",
                                                        local_config()))], tmp_path / "out")
    found = outcome(result.output)
    ids = {name: document_id(name) for name in
           ("url-old", "url-new", "content-a", "content-b", "near-a", "near-b", "images-a", "images-b")}
    assert found[ids["url-old"]] == ("dedup.url", ids["url-new"])
    assert found[ids["content-a"]] == ("dedup.content", ids["content-b"])
    assert found[ids["near-a"]] == ("dedup.near", ids["near-b"])
    assert found[ids["images-a"]] == ("dedup.image_set", ids["images-b"])
    for kept in ("url-new", "content-b", "near-b", "images-b", "one-image-a", "one-image-b", "unique"):
        assert found[document_id(kept)] == (None, None), kept
    assert result.stats["funnel"] == {"input": 11, "kept": 7, "dropped": {
        "dedup.content": 1, "dedup.image_set": 1, "dedup.near": 1, "dedup.url": 1}}
    assert validate_output(result.output).problems == []


@pytest.mark.parametrize("policy, expected", [("newest", "c"), ("longest", "b"), ("most_images", "a"),
                                              ("quality", "b")])
def test_keep_policies_choose_the_survivor(tmp_path, policy, expected):
    text = article("webmd-1")
    documents = [
        doc("a", text, day=1, images=[f"https://i.org/{i}.jpg" for i in range(3)]),
        doc("b", text + "\n\nA longer copy with one more paragraph of text.", day=2),
        doc("c", text, day=3, images=["https://i.org/x.jpg"]),
    ]
    documents[0].signals["quality_score"] = 0.2
    documents[1].signals["quality_score"] = 0.9  # "c" has no score: it falls behind every scored document
    config = local_config(**{"dedup.keep": policy})
    from omnicorpus.pipeline import run_schema

    schema = run_schema(config, {"quality_score": "float64"})
    from omnicorpus.io.parquet import file_metadata, write_documents

    shard = tmp_path / "in" / "s.parquet"
    shard.parent.mkdir()
    write_documents(shard, documents, schema, metadata=file_metadata("x", "test"), kept=True)
    found = outcome(run_dedup(config, [str(shard)], tmp_path / "out").output)
    kept = [name for name in "abc" if found[document_id(name)][0] is None]
    assert kept == [expected]
    assert {found[document_id(name)][1] for name in "abc" if name != expected} == {document_id(expected)}


def test_quality_policy_without_the_field_falls_back_to_newest(tmp_path):
    text = article("webmd-2")
    documents = [doc("old", text, day=1), doc("new", text, day=9), doc("undated", text)]
    documents[2].fetch_time = None
    cluster_of = dedup_clusters(documents, local_config(**{"dedup.keep": "quality"}), tmp_path)
    assert set(cluster_of.values()) == {document_id("new")}


# ---------------------------------------------------------------------------------------------------------
# Connected components over map_groups


def _components_by_rounds(edges, tmp_path, partitions=3):
    """Run star edges + large/small-star rounds on (a, b) pairs of ints; returns node -> root."""
    nodes = {value: pack_node((value, 0), f"n{value}", 0) for pair in edges for value in pair}
    keys = pa.table({
        "partition": pa.array([index % partitions for index in range(len(edges)) for _ in range(2)], pa.int32()),
        "kind": pa.array([3] * 2 * len(edges), pa.int8()),
        "key": pa.array([index for index in range(len(edges)) for _ in range(2)], pa.uint64()),
        "key2": pa.array([0] * 2 * len(edges), pa.uint64()),
        "node": pa.array([nodes[value] for pair in edges for value in pair], pa.binary()),
    }, schema=KEY_SCHEMA)
    pq.write_table(keys, tmp_path / "keys.parquet")
    executor = LocalExecutor()
    star = executor.map_groups([str(tmp_path / "keys.parquet")], "partition", StarEdges(partitions),
                               str(tmp_path / "edges"))
    final, rounds = connected_components(executor, star, tmp_path, partitions)
    table = pa.concat_tables([pq.read_table(path) for path in final])
    by_node = {node: value for value, node in nodes.items()}
    roots = {}
    for row in table.to_pylist():
        if row["neighbour"] < row["node"]:
            assert by_node[row["node"]] not in roots
            roots[by_node[row["node"]]] = by_node[row["neighbour"]]
    return roots, rounds


def test_components_match_union_find_on_long_chains_and_random_graphs(tmp_path):
    rng = random.Random(3)
    chain = list(range(1000, 1400))
    rng.shuffle(chain)  # a path whose node order is random: the worst case for label propagation
    edges = list(zip(chain, chain[1:]))
    edges += [(rng.randrange(0, 300), rng.randrange(0, 300)) for _ in range(250)]
    edges = [(a, b) for a, b in edges if a != b]
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
    expected = {node: find(node) for pair in edges for node in pair}
    roots, rounds = _components_by_rounds(edges, tmp_path)
    assert {node: roots.get(node, node) for node in expected} == expected
    assert 2 <= rounds <= 30


def test_node_partition_is_stable():
    nodes = pa.array([pack_node((1, 2), "abc", 7), pack_node((0, 0), "é", 0)], pa.binary())
    assert node_partition(nodes, 5).to_pylist() == node_partition(nodes, 5).to_pylist()
    assert EDGE_SCHEMA.field("node").type == pa.binary()


# ---------------------------------------------------------------------------------------------------------
# In a run, and as its own command


# The pages' images are not in the WARCs and the example does not fetch: keep them as URLs. The text filters are
# off: the articles are cut to their longer paragraphs, which is not what they are tested on.
EXAMPLE_OFFLINE = {"run.runner": "local", "images.keep_unresolved": True, **NO_TEXT_FILTERS}


def _site_warcs(tmp_path):
    """Two WARCs (two units) whose pages duplicate each other across the files."""
    wikia = [p for p in article("wikia").split("\n\n") if len(p) > 60]
    medium = [p for p in article("medium-2").split("\n\n") if len(p) > 60]
    image = '<img src="https://img.example.org/{}.jpg" alt="a picture" width="400" height="300">'
    first = make_warc(tmp_path / "first.warc.gz", [
        {"url": "https://news.example.org/star-wars", "body": html_page("Star Wars", *wikia, image.format(1)),
         "date": "2024-01-01T00:00:00Z"},
        {"url": "https://blog.example.org/literally", "body": html_page("Literally", *medium, image.format(2)),
         "date": "2024-01-01T00:00:00Z"},
    ])
    second = make_warc(tmp_path / "second.warc.gz", [
        {"url": "http://www.news.example.org/star-wars/", "body": html_page("Star Wars", *wikia, image.format(1)),
         "date": "2024-02-01T00:00:00Z"},  # a later capture of the same URL
        {"url": "https://mirror.example.net/literally",
         "body": html_page("Literally", *medium[:-1], "Subscribe to our newsletter.", image.format(3)),
         "date": "2024-03-01T00:00:00Z"},  # a near-duplicate on another site
    ])
    return [str(first), str(second)]


def test_a_run_drops_duplicates_across_its_inputs(tmp_path):
    inputs = _site_warcs(tmp_path)
    config = load_config("example", EXAMPLE_OFFLINE)
    result = run(config, inputs, tmp_path / "out")
    assert result.stats["funnel"]["dropped"] == {"dedup.near": 1, "dedup.url": 1}
    assert result.stats["stages"]["dedup"] == {"input": 4, "kept": 2, "dropped": {"dedup.near": 1, "dedup.url": 1},
                                               "removed_elements": {}}
    rejects = pq.read_table(tmp_path / "out" / "rejects").to_pylist()
    kept = {row["id"]: row["url"] for row in pq.read_table(tmp_path / "out" / "shards").to_pylist()}
    assert sorted(kept.values()) == ["http://www.news.example.org/star-wars/", "https://mirror.example.net/literally"]
    for row in rejects:
        assert row["signals"]["duplicate_of"] in kept and row["image_bytes"] == [None] * len(row["images"])
    assert validate_output(result.output).problems == []
    cluster = json.loads((tmp_path / "out" / "_work" / "dedup" / "cluster.json").read_text())
    assert cluster["documents"] == 4 and cluster["losers"] == {"url": 1, "content": 0, "image_set": 0, "near": 1}

    # Resume: a run killed after the cluster step, during the mark step, finishes with the same output.
    resumed = tmp_path / "resumed"
    shutil.copytree(tmp_path / "out", resumed)
    for name in ("_SUCCESS", "run.json", "stats.json"):
        (resumed / name).unlink()
    for folder in ("shards", "rejects", "stats", "_work/images"):
        shutil.rmtree(resumed / folder)
    sorted((resumed / "_work" / "dedup").glob("*.stats.json"))[0].unlink()
    run(config, inputs, resumed)
    for folder in ("shards", "rejects"):
        for path in sorted((tmp_path / "out" / folder).glob("*.parquet")):
            assert (resumed / folder / path.name).read_bytes() == path.read_bytes()


def test_dedup_command_over_several_runs_writes_a_run_and_resumes(tmp_path, capsys):
    inputs = _site_warcs(tmp_path)
    config = load_config("example", {**EXAMPLE_OFFLINE, "dedup.enabled": False})
    run(config, inputs[:1], tmp_path / "run-a")
    run(config, inputs[1:], tmp_path / "run-b")
    output = tmp_path / "deduped"
    assert main(["dedup", str(tmp_path / "run-a"), str(tmp_path / "run-b"), str(output), "--runner", "local"]) == 0
    assert "4 in, 2 kept; duplicates dropped: dedup.near 1, dedup.url 1" in capsys.readouterr().out
    for name in ("_SUCCESS", "run.json", "stats.json"):
        assert (output / name).exists()
    assert validate_output(output).problems == []
    assert json.loads((output / "run.json").read_text())["inputs"][0].endswith("shard-00000.parquet")
    before = {path.name: path.read_bytes() for path in (output / "shards").glob("*.parquet")}
    assert main(["dedup", str(tmp_path / "run-a"), str(tmp_path / "run-b"), str(output), "--runner", "local"]) == 0
    assert "already complete" in capsys.readouterr().out
    assert {path.name: path.read_bytes() for path in (output / "shards").glob("*.parquet")} == before


def test_dedup_command_refuses_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run_dedup(local_config(), [str(tmp_path / "missing")], tmp_path / "out")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "shards").mkdir()
    with pytest.raises(InputError, match="unfinished run"):
        run_dedup(local_config(), [str(tmp_path / "half")], tmp_path / "out")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "foreign.parquet")
    with pytest.raises(InputError, match="not an omnicorpus v1 document file"):
        run_dedup(local_config(), [str(tmp_path / "foreign.parquet")], tmp_path / "out")
    with pytest.raises(ConfigError, match="needs dedup enabled"):
        run_dedup(local_config(**{"dedup.enabled": False}), [str(tmp_path / "foreign.parquet")], tmp_path / "out")


def test_survivors_are_the_same_on_every_rerun(tmp_path):
    labelled = [item.document for item in labelled_set(seed=4, articles=["ehow-1", "ehow-2", "gmw"])]
    shuffled = list(labelled)
    random.Random(1).shuffle(shuffled)
    first = dedup_clusters(labelled, local_config(), tmp_path / "first")
    second = dedup_clusters(shuffled, local_config(), tmp_path / "second")
    assert first == second
    assert (tmp_path / "first" / "out" / "shards" / "shard-00000.parquet").exists()


@pytest.mark.ray
def test_ray_and_local_runners_find_the_same_duplicates(tmp_path):
    labelled = [item.document for item in labelled_set(seed=2, articles=["medium-2", "webmd-1", "webmd-2"])]
    half = len(labelled) // 2
    config = local_config()
    shards = [str(write_shard(labelled[:half], tmp_path / "in" / "a.parquet", config)),
              str(write_shard(labelled[half:], tmp_path / "in" / "b.parquet", config))]
    local = run_dedup(config, shards, tmp_path / "local")
    distributed = run_dedup(load_config(None, {"run.runner": "ray", "run.workers": 2}), shards, tmp_path / "ray")
    assert local.stats == distributed.stats and local.stats["funnel"]["kept"] == 3
    for folder in ("shards", "rejects"):
        files = sorted((tmp_path / "local" / folder).glob("*.parquet"))
        assert files
        for path in files:
            assert (tmp_path / "ray" / folder / path.name).read_bytes() == path.read_bytes(), path.name


def test_show_names_the_kept_copy_of_a_duplicate(tmp_path, capsys):
    text = article("ehow-2")
    documents = [doc("first", text, day=1), doc("second", text, day=2)]
    result = run_dedup(local_config(), [str(write_shard(documents, tmp_path / "in" / "s.parquet", local_config()))],
                       tmp_path / "out")
    assert main(["show", result.output, "--rejects", "--id", document_id("first")]) == 0
    printed = capsys.readouterr().out
    assert "dropped: dedup.content" in printed and f"duplicate of: {document_id('second')}" in printed
    assert main(["show", result.output, "--id", document_id("second")]) == 0
