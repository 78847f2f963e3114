"""The auditor's browser without a browser: queries, labels and exports, and the HTTP safety rules."""

from __future__ import annotations

import hashlib
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import duckdb
import pyarrow.parquet as pq
import pytest

from omnicorpus.browse.data import IMAGE_BUCKETS, Catalog, NotFound, QueryError, SampleQuery, _bucket_labels
from omnicorpus.browse.labels import LabelStore, false_positive_table, write_export
from omnicorpus.browse.markup import html, safe_link
from omnicorpus.browse.pages import reading_order
from omnicorpus.browse.server import CONTENT_SECURITY_POLICY, image_type
from omnicorpus.cli import main
from tests.browse_support import SCRIPT, hostile_documents, raw_request, serving, write_run
from tests.builders import make_document
from tests.conftest import tiny_png

LANGUAGES = ("en", "de", "fr")


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory) -> Path:
    """60 documents with known languages, domains, images, texts and a quality signal: 40 kept, 20 rejected."""
    kept, rejected = [], []
    for number in range(60):
        slots = [f"Paragraph {number} about {'cats' if number % 2 else 'dogs'}."]
        slots += [f"img:https://img{number % 3}.example/{number}-{k}.jpg" for k in range(number % 4)]
        document = make_document(*slots, url=f"https://site{number % 5}.example/page/{number}",
                                 doc_id=f"{number:024x}", language=LANGUAGES[number % 3])
        document.domain = f"site{number % 5}.example"
        document.signals = {"quality": number / 100, "words": 4}
        if number >= 40:
            document.drop_reason = "read.duplicate_capture" if number % 2 else "extract.no_text"
            rejected.append(document)
        else:
            kept.append(document)
    return write_run(tmp_path_factory.mktemp("grid") / "out", kept, rejected,
                     {"quality": "float64", "words": "int32"})


@pytest.fixture(scope="module")
def grid(grid_run) -> Catalog:
    return Catalog([grid_run])


def ids(page) -> list[str]:
    return [card.id for card in page.cards]


# -- queries -------------------------------------------------------------------------------------------


def test_overview_of_the_example_run_agrees_with_its_stats(example_run):
    catalog = Catalog([example_run.output])
    overview = catalog.overview(catalog.runs[0])
    funnel = example_run.stats["funnel"]
    assert overview.counts == {"kept": funnel["kept"], "rejected": sum(funnel["dropped"].values())}
    assert dict(overview.drop_reasons) == funnel["dropped"]
    total = sum(overview.counts.values())
    for histogram in (overview.languages, overview.images_per_document, overview.text_chars):
        assert sum(sum(values) for _, values in histogram) == total
    expected = {label: [0, 0] for label, _ in overview.images_per_document}
    for column, folder in enumerate(("shards", "rejects")):
        for row in pq.read_table(Path(example_run.output) / folder, columns=["images"]).to_pylist():
            count = sum(url is not None for url in row["images"])
            expected[_bucket_of(count)][column] += 1
    assert dict(overview.images_per_document) == expected


def _bucket_of(count: int) -> str:
    """The label of the images-per-document bucket holding `count`, by the module's own labels."""
    labels = _bucket_labels(IMAGE_BUCKETS)
    index = sum(edge <= count for edge in IMAGE_BUCKETS) - 1
    return labels[index]


def test_samples_are_reproducible_from_their_seed_and_page_through_everything(grid):
    run = grid.runs[0]
    first = grid.samples(run, SampleQuery(seed=7), "kept")
    assert first.total == 40 and len(first.cards) == 20
    assert ids(grid.samples(run, SampleQuery(seed=7), "kept")) == ids(first)
    assert ids(grid.samples(run, SampleQuery(seed=8), "kept")) != ids(first)
    second = grid.samples(run, SampleQuery(seed=7, page=1), "kept")
    assert sorted(ids(first) + ids(second)) == [f"{n:024x}" for n in range(40)]
    past_the_end = grid.samples(run, SampleQuery(seed=7, page=2), "kept")
    assert past_the_end.cards == [] and past_the_end.total == 40
    grid.overview(run)  # with the overview cached, an unfiltered page takes its count from there
    assert (ids(grid.samples(run, SampleQuery(seed=7), "kept")), first.total) == (ids(first), 40)


@pytest.mark.parametrize("params, expected", [
    ({"language": "de"}, lambda n: n % 3 == 1),
    ({"domain": "site2.example"}, lambda n: n % 5 == 2),
    ({"url": "PAGE/1"}, lambda n: str(n).startswith("1")),
    ({"q": "CATS paragraph"}, lambda n: n % 2 == 1),
    ({"q": "cats. (x"}, lambda n: False),  # punctuation is matched literally, not as a pattern
    ({"q": "dogs."}, lambda n: n % 2 == 0),
    ({"min_images": "2", "max_images": "2"}, lambda n: n % 4 == 2),
    ({"min.quality": "0.1", "max.quality": "0.195"}, lambda n: 10 <= n <= 19),
    ({"reason": "extract.no_text"}, lambda n: n < 40 or n % 2 == 0),  # narrows the rejected column only
    ({"language": "fr", "q": "dogs", "min_images": "1"}, lambda n: n % 3 == 2 and n % 2 == 0 and n % 4 >= 1),
])
def test_each_filter_narrows_kept_and_rejected_to_exactly_the_matching_documents(grid, params, expected):
    run = grid.runs[0]
    query = SampleQuery.from_params({**params, "seed": "3"}, run, default_seed=0)
    found = set()
    for status in ("kept", "rejected"):
        cards = []
        for number in range(3):
            page = grid.samples(run, query.with_page(number), status)
            cards += page.cards
        assert len(cards) == page.total and all(card.status == status for card in cards)
        found |= {int(card.id, 16) for card in cards}
    assert found == {n for n in range(60) if expected(n)}
    # The query string round-trips: the permalink reproduces the same filters.
    again = SampleQuery.from_params(dict(query.to_params()), run, default_seed=99)
    assert again == query


def test_bad_filter_values_are_clear_errors(grid):
    with pytest.raises(QueryError, match="min_images must be a number"):
        SampleQuery.from_params({"min_images": "many"}, grid.runs[0], 1)
    with pytest.raises(NotFound):
        grid.document(grid.runs[0], "nope")


def test_queries_never_read_image_bytes_and_duckdb_is_locked_to_the_opened_folders(grid, tmp_path):
    plan = "\n".join(str(row) for row in grid._rows("EXPLAIN SELECT * FROM docs_0"))
    assert "texts" in plan and "image_bytes" not in plan
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    with pytest.raises(duckdb.Error, match="disabled by configuration|Permission"):
        grid._rows(f"SELECT * FROM read_csv('{outside}')")
    with pytest.raises(duckdb.Error):
        grid._rows("SET enable_external_access = true")


def test_image_bytes_come_from_the_requested_slot_only(tmp_path):
    document = make_document("Text.", "img:https://example.org/a.png", "More.", "img:https://example.org/b.png")
    document.image_bytes[1], document.image_bytes[3] = tiny_png(color=(1, 2, 3)), tiny_png(color=(4, 5, 6))
    catalog = Catalog([write_run(tmp_path / "out", [document], [])])
    run = catalog.runs[0]
    assert catalog.image_bytes(run, document.id, 1) == document.image_bytes[1]
    assert catalog.image_bytes(run, document.id, 3) == document.image_bytes[3]
    assert catalog.image_bytes(run, document.id, 0) is None
    assert catalog.image_bytes(run, document.id, 40) is None
    assert image_type(document.image_bytes[1]) == "image/png" and image_type(b"<html>") is None


def shown_order(document) -> list[str]:
    """What the document page shows, in order: texts, kept image URLs and removed elements (as "-url")."""
    shown = []
    for kind, value in reading_order({"texts": document.texts, "removed": document.removed}):
        if kind == "removed":
            shown.append("-" + (value["image_url"] or value["text"]))
        elif kind == "slot":
            shown.append(document.texts[value] or document.images[value])
    return shown


def test_reading_order_puts_removed_images_back_between_merged_paragraphs():
    document = make_document("A.", "img:1.png", "B.", "img:2.png", "C.", "img:3.png", "D.")
    document.remove_slot(3, "images.too_small")  # B and C merge
    document.remove_slot(1, "images.too_small")  # A and "B C" merge
    assert shown_order(document) == ["A.\n\nB.\n\nC.", "-1.png", "-2.png", "3.png", "D."]


def test_reading_order_of_removed_texts_and_galleries():
    document = make_document("A.", "img:1.png", "B.", "img:2.png", "img:3.png", "C.", "img:4.png")
    document.remove_slot(2, "filter.boilerplate")  # a text between two images: nothing merges
    assert shown_order(document) == ["A.", "1.png", "-B.", "2.png", "3.png", "C.", "4.png"]
    document.remove_slot(2, "images.too_small")  # image 2, between two images
    document.remove_slot(4, "images.too_small")  # the last image
    assert shown_order(document) == ["A.", "1.png", "-B.", "-2.png", "3.png", "C.", "-4.png"]


def test_markup_escapes_every_value_and_links_only_http():
    assert html("<p title='{}'>{}</p>", "'><b>", SCRIPT) == (
        "<p title='&#x27;&gt;&lt;b&gt;'>&lt;script&gt;window.__pwned = &#x27;script&#x27;; alert(1)&lt;/script&gt;</p>")
    assert "<a " not in safe_link("javascript:alert(1)") and "<a " not in safe_link(" JavaScript:alert(1)")
    assert "<a " not in safe_link("data:text/html,<script>") and "<a " not in safe_link("java\tscript:alert(1)")
    assert 'href="https://example.org/?a=1&amp;b=&quot;"' in safe_link('https://example.org/?a=1&b="')


# -- labels and exports --------------------------------------------------------------------------------


def test_labels_export_as_the_classifier_set_and_a_false_positive_table(grid, tmp_path):
    run = grid.runs[0]
    store = LabelStore(tmp_path / "labels.sqlite")
    verdicts = {41: "good", 43: "good", 45: "bad", 40: "good", 1: "bad", 2: "good"}
    for number, verdict in verdicts.items():
        store.put(run=str(run.root), document=grid.document(run, f"{number:024x}"), label=verdict, note=f"n{number}")
    store.put(run=str(run.root), document=grid.document(run, f"{1:024x}"), label="good", rule="my.rule")  # replaces
    store.delete(run=str(run.root), document_id=f"{2:024x}")
    labels = store.all()
    assert len(labels) == 5

    exported = tmp_path / "set.jsonl"
    assert write_export(labels, exported) == 5
    rows = {row["id"]: row for row in map(json.loads, exported.read_text().splitlines())}
    one = rows[f"{1:024x}"]
    assert one == {"id": f"{1:024x}", "text": "Paragraph 1 about cats.", "label": "good", "note": "", "rule": "my.rule",
                   "drop_reason": None, "url": "https://site1.example/page/1", "run": str(run.root)}
    assert rows[f"{45:024x}"]["drop_reason"] == "read.duplicate_capture" and rows[f"{45:024x}"]["label"] == "bad"
    write_export(labels, tmp_path / "set.parquet")
    assert sorted(pq.read_table(tmp_path / "set.parquet").column("id").to_pylist()) == sorted(rows)

    table = {row.reason: row for row in false_positive_table(labels)}
    duplicate = table["read.duplicate_capture"]
    assert (duplicate.labelled, duplicate.good, duplicate.bad) == (3, 2, 1)
    assert duplicate.false_positive_rate == pytest.approx(2 / 3)
    assert table["extract.no_text"].false_positive_rate == 1.0
    assert table["(kept)"].false_positive_rate is None and table["(kept)"].good == 1


def test_multi_block_text_is_joined_by_blank_lines(tmp_path):
    document = make_document("First block.\n\nSecond block.", "img:https://example.org/a.png", "Third.")
    catalog = Catalog([write_run(tmp_path / "out", [document], [])])
    store = LabelStore(tmp_path / "labels.sqlite")
    label = store.put(run="r", document=catalog.document(catalog.runs[0], document.id), label="bad")
    assert label.text == "First block.\n\nSecond block.\n\nThird."


def test_cli_export_writes_the_set_and_prints_the_table(grid_run, tmp_path, capsys):
    run_copy = tmp_path / "out"
    shutil.copytree(grid_run, run_copy)
    catalog = Catalog([run_copy])
    LabelStore(run_copy / "labels.sqlite").put(run=str(catalog.runs[0].root),
                                               document=catalog.document(catalog.runs[0], f"{41:024x}"), label="good")
    assert main(["browse", str(run_copy), "--export", str(tmp_path / "set.jsonl")]) == 0
    printed = capsys.readouterr().out
    assert "1 labelled document(s)" in printed and "read.duplicate_capture,1,1,0,1.0000" in printed
    assert json.loads((tmp_path / "set.jsonl").read_text())["label"] == "good"
    assert main(["browse", str(run_copy), "--export", str(tmp_path / "set.csv")]) == 2
    assert main(["browse", str(tmp_path / "missing")]) == 2


# -- HTTP ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    kept, rejected = hostile_documents(tiny_png())
    return write_run(tmp_path_factory.mktemp("hostile") / "out", [kept], [rejected], {"text_chars": "int64"},
                     config={"note": SCRIPT})


@pytest.fixture(scope="module")
def server(grid_run, hostile_run, tmp_path_factory):
    with serving([grid_run, hostile_run], tmp_path_factory.mktemp("labels") / "labels.sqlite") as url:
        yield url


@pytest.mark.parametrize("target", [
    "/run/0/file/../../../etc/passwd",
    "/run/0/file/..%2f..%2fetc/passwd",
    "/run/0/file/%2e%2e/%2e%2e/etc/passwd",
    "/run/0/file/%2Fetc%2Fpasswd",
    "/run/0/file//etc/passwd",
    "/run/0/file/shards/..",
    "/../etc/passwd",
    "/static/..%5c..%5cserver.py",
    "/run/0/file/run.json%00.png",
])
def test_relative_and_absolute_paths_are_refused(server, target):
    status, _, body = raw_request(server, target)
    assert status == 403, (target, body[:200])
    assert b"root:" not in body


@pytest.mark.parametrize("target", ["http://evil.example/run/0/", "//etc/passwd", "etc/passwd"])
def test_request_targets_that_are_not_plain_paths_are_refused(server, target):
    status, _, body = raw_request(server, target)
    assert status in (400, 403, 404) and b"root:" not in body


def test_only_files_under_the_run_folder_are_served(server, grid_run, tmp_path):
    status, headers, body = raw_request(server, "/run/0/file/run.json")
    assert status == 200 and headers["content-type"] == "application/json"
    assert json.loads(body) == json.loads((grid_run / "run.json").read_text())
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    link = grid_run / "escape.json"
    link.symlink_to(outside)
    try:
        assert raw_request(server, "/run/0/file/escape.json")[0] == 403
    finally:
        link.unlink()
    assert raw_request(server, "/run/0/file/nothing.json")[0] == 404
    status, headers, body = raw_request(server, "/run/0/file/shards/shard-00000.parquet")
    assert status == 200 and body == (grid_run / "shards" / "shard-00000.parquet").read_bytes()
    assert headers["content-disposition"].startswith("attachment")
    assert raw_request(server, "/run/7/")[0] == 404


def test_every_response_forbids_script_and_sniffing(server):
    for target in ("/", "/run/0/", "/run/1/doc/0badc0de0badc0de0badc0de", "/labels", "/nowhere", "/static/style.css",
                   "/run/1/image/0badc0de0badc0de0badc0de/3"):
        status, headers, _ = raw_request(server, target)
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, target
        assert "script-src" not in CONTENT_SECURITY_POLICY and "default-src 'none'" in CONTENT_SECURITY_POLICY
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"


class ActiveContent(HTMLParser):
    """Collects what could run in a page: script elements, on* attributes, javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attributes):
        if tag == "script":
            self.found.append("<script>")
        for name, value in attributes:
            if name.startswith("on"):
                self.found.append(f"{tag} {name}={value}")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith("javascript"):
                self.found.append(f"{tag} {name}={value}")


def test_hostile_strings_are_escaped_in_the_html(server):
    for target in ("/run/1/doc/0badc0de0badc0de0badc0de", "/run/1/doc/0badc0de0badc0de0badc0df", "/run/1/",
                   "/run/1/samples?seed=1&q=script", "/", "/compare?a=0&b=1"):
        status, _, body = raw_request(server, target)
        assert status == 200, target
        parser = ActiveContent()
        parser.feed(body.decode())
        assert parser.found == [], target
    page = raw_request(server, "/run/1/doc/0badc0de0badc0de0badc0de")[2].decode()
    assert "&lt;script&gt;window.__pwned = &#x27;script&#x27;; alert(1)&lt;/script&gt;" in page
    # An image whose bytes are HTML is not served as anything a browser would render.
    status, headers, _ = raw_request(server, "/run/1/image/0badc0de0badc0de0badc0de/4")
    assert status == 415 and headers["content-type"].startswith("text/plain")
    status, headers, body = raw_request(server, "/run/1/image/0badc0de0badc0de0badc0de/3")
    assert status == 200 and headers["content-type"] == "image/png" and body == tiny_png()


def test_forms_need_the_token_the_origin_and_the_host(server):
    form = urlencode({"label": "good", "token": "guess"}).encode()
    post = {"Content-Type": "application/x-www-form-urlencoded"}
    target = "/run/0/doc/000000000000000000000001/label"
    assert raw_request(server, target, "POST", post, form)[0] == 403
    status, _, body = raw_request(server, "/run/0/doc/000000000000000000000001")
    token = body.decode().split('name="token" value="')[1].split('"')[0]
    good = urlencode({"label": "good", "token": token}).encode()
    assert raw_request(server, target, "POST", {**post, "Origin": "http://evil.example"}, good)[0] == 403
    assert raw_request(server, "/", headers={"Host": "evil.example:80"})[0] == 403  # DNS rebinding
    status, headers, _ = raw_request(server, target, "POST", post, good)
    assert status == 303 and headers["location"] == "/run/0/doc/000000000000000000000001"
    assert "labelled <b class=\"label-good\">good</b>" in raw_request(server, headers["location"])[2].decode()
    bad_label = urlencode({"label": "maybe", "token": token}).encode()
    assert raw_request(server, target, "POST", post, bad_label)[0] == 400


def test_labels_go_to_the_run_folder_by_default_and_the_shards_stay_untouched(grid_run, tmp_path):
    run_copy = tmp_path / "out"
    shutil.copytree(grid_run, run_copy)
    parquet = sorted(run_copy.rglob("*.parquet"))
    before = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in parquet}
    with serving([run_copy], labels=None) as url:
        page = raw_request(url, "/run/0/doc/000000000000000000000005")[2].decode()
        token = page.split('name="token" value="')[1].split('"')[0]
        form = urlencode({"label": "bad", "token": token, "note": "spam"}).encode()
        assert raw_request(url, "/run/0/doc/000000000000000000000005/label", "POST",
                           {"Content-Type": "application/x-www-form-urlencoded"}, form)[0] == 303
        for target in ("/", "/run/0/", "/run/0/samples?seed=1", "/labels", "/labels/export.jsonl"):
            assert raw_request(url, target)[0] == 200
    assert {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in parquet} == before
    (label,) = LabelStore(run_copy / "labels.sqlite").all()
    assert (label.id, label.label, label.note) == ("000000000000000000000005", "bad", "spam")


def test_samples_without_a_seed_redirect_to_a_seeded_link(server):
    status, headers, _ = raw_request(server, "/run/0/samples?language=de")
    assert status == 303 and "seed=" in headers["location"] and "language=de" in headers["location"]
    status, _, first = raw_request(server, headers["location"])
    assert status == 200 and first == raw_request(server, headers["location"])[2]


def test_comparing_two_runs_counts_fates_by_document(grid_run, tmp_path):
    other = make_document("Paragraph 1 about cats.", url="https://site1.example/page/1", doc_id=f"{1:024x}")
    other.drop_reason = "extract.no_text"
    second = write_run(tmp_path / "second", [], [other], {"quality": "float64", "words": "int32"})
    catalog = Catalog([grid_run, second])
    transitions, changed = catalog.compare(*catalog.runs)
    counts = {(a, b): n for a, b, n in transitions}
    assert counts[("kept", "extract.no_text")] == 1
    assert counts[("kept", "absent")] == 39 and sum(counts.values()) == 60
    assert (f"{1:024x}", "https://site1.example/page/1", "kept", "extract.no_text") in changed


def test_runs_without_shards_or_stats_still_render(tmp_path):
    dropped = make_document("Only text.", url="https://example.org/a")
    dropped.drop_reason = "extract.no_image"
    folder = write_run(tmp_path / "out", [], [dropped])
    for name in ("stats.json", "run.json", "_SUCCESS"):
        (folder / name).unlink()
    with serving([folder], tmp_path / "labels.sqlite") as url:
        for target in ("/", "/run/0/", "/run/0/samples?seed=2", f"/run/0/doc/{dropped.id}", "/labels"):
            status, _, body = raw_request(url, target)
            assert status == 200, (target, body[:300])
        assert "no _SUCCESS" in raw_request(url, "/run/0/")[2].decode()
        assert raw_request(url, f"/run/0/image/{dropped.id}/0")[0] == 404
    with pytest.raises(FileNotFoundError, match="no Parquet files"):
        Catalog([tmp_path])


def test_the_command_serves_until_stopped(grid_run, tmp_path):
    import subprocess
    import sys

    command = [sys.executable, "-m", "omnicorpus.cli", "browse", str(grid_run), "--port", "0",
               "--labels", str(tmp_path / "labels.sqlite")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent)
    try:
        line = process.stdout.readline()
        assert "serving 1 run(s) at http://127.0.0.1:" in line, line
        url = line.split(" at ")[1].split()[0]
        status, _, body = raw_request(url, "/run/0/")
        assert status == 200 and b"Funnel" in body
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_host_checks_apply_on_loopback_only():
    from omnicorpus.browse.server import _allowed_hosts

    assert "localhost:8765" in _allowed_hosts("127.0.0.1", 8765)
    assert "[::1]:80" in _allowed_hosts("::1", 80)
    assert _allowed_hosts("0.0.0.0", 8765) is None
