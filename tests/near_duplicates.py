"""A labelled near-duplicate set built from real article texts (tests/fixtures/dedup, see SOURCES.md).

Every article becomes an original plus six copies with known edits; copies of one article are duplicates of
each other, documents of different articles are not, including articles of the same site, which share that
site's header and footer. `score_pairs` turns a dedup result into pair precision and recall. Used by
tests/test_dedup.py and by `python bench/dedup.py quality` (the curve in docs/dedup.md).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from omnicorpus.document import Document, document_id, new_image_info

ARTICLES = Path(__file__).resolve().parent / "fixtures" / "dedup"

# Site of each article; articles of one site are the hardest true non-duplicates.
SITES = {
    "medium-1": "medium.com", "medium-2": "medium.com", "medium-3": "medium.com",
    "ehow-1": "ehow.com", "ehow-2": "ehow.com",
    "webmd-1": "webmd.com", "webmd-2": "webmd.com",
    "wikia": "fandom.com", "wordpress": "wptavern.com", "buzzfeed-1": "buzzfeed.com", "folha": "folha.uol.com.br",
    "aktualne": "aktualne.cz", "gmw": "gmw.cn", "herald-sun-1": "heraldsun.com.au", "iab-1": "iab.com",
}
# Written for this set: what a site repeats on every page (navigation, footer).
SITE_CHROME = {
    "medium.com": ("Sign in. Get started. Write a story on Medium. Homepage. Follow us for more stories.",
                   "Applause from the author. Share this story. Responses. Never miss a story from this writer, "
                   "when you sign up for Medium. Learn more about how Medium works."),
    "ehow.com": ("eHow Home. Food and Drink. Home and Garden. Parties and Entertaining. Style. Crafts.",
                 "Related articles. How to Make a Terrarium. Resources. Tips. Warnings. Copyright Leaf Group "
                 "Ltd. All rights reserved. Use of this web site constitutes acceptance of the terms of use."),
    "webmd.com": ("WebMD Health News. Reviewed by a physician. Find a doctor. Symptom checker.",
                  "WebMD does not provide medical advice, diagnosis or treatment. See additional information. "
                  "Copyright WebMD LLC. All rights reserved. Sources: press release and study authors."),
}
BOILERPLATE = (
    "Subscribe to our newsletter to get the best stories delivered to your inbox every morning. No spam, "
    "unsubscribe at any time.",
    "We use cookies to personalise content and ads, to provide social media features and to analyse our "
    "traffic. By continuing to browse you agree to our cookie policy.",
    "Advertisement. Continue reading below. Share this article on Facebook, Twitter and by email.",
    "Related: the ten most read stories of the week, hand picked by our editors.",
)
EDITS = ("original", "paragraph_swap", "boilerplate", "truncated", "syndicated", "recapture", "combined")
BASE_TIME = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


@dataclass
class Labelled:
    document: Document
    article: str  # the label: documents of one article are duplicates
    edit: str


def article_names() -> list[str]:
    return sorted(SITES)


def _swap(paragraphs: list[str], rng: random.Random) -> list[str]:
    paragraphs = list(paragraphs)
    first, second = rng.sample(range(len(paragraphs)), 2)
    paragraphs[first], paragraphs[second] = paragraphs[second], paragraphs[first]
    return paragraphs


def _insert_boilerplate(paragraphs: list[str], rng: random.Random) -> list[str]:
    paragraphs = list(paragraphs)
    first, second = rng.sample(BOILERPLATE, 2)
    paragraphs.insert(rng.randrange(1, len(paragraphs)), first)
    paragraphs.append(second)
    return paragraphs


def _truncate(paragraphs: list[str], fraction: float) -> list[str]:
    """Cut the text after `1 - fraction` of its characters, at a space if one is near (Chinese has none)."""
    text = "\n\n".join(paragraphs)
    target = int(len(text) * (1 - fraction))
    space = text.rfind(" ", 0, target)
    return text[: space if space > target - 50 else target].split("\n\n")


def _edited(paragraphs: list[str], edit: str, rng: random.Random) -> list[str]:
    if edit == "paragraph_swap":
        return _swap(paragraphs, rng)
    if edit == "boilerplate":
        return _insert_boilerplate(paragraphs, rng)
    if edit == "truncated":
        return _truncate(paragraphs, 0.1)
    if edit == "recapture":  # the page fixed a typo and gained an update line since the first capture
        return [*paragraphs, "Update: this article was corrected after publication."]
    if edit == "combined":
        return _truncate(_insert_boilerplate(_swap(paragraphs, rng), rng), 0.05)
    return list(paragraphs)  # original, syndicated (same text, another site)


def labelled_set(seed: int = 0, articles: list[str] | None = None) -> list[Labelled]:
    rng = random.Random(seed)
    result = []
    for article in articles or article_names():
        site = SITES[article]
        paragraphs = (ARTICLES / f"{article}.txt").read_text(encoding="utf-8").strip().split("\n\n")
        header, footer = SITE_CHROME.get(site, ("", ""))
        for number, edit in enumerate(EDITS):
            body = _edited(paragraphs, edit, rng)
            if edit in ("syndicated", "combined"):
                url = f"https://mirror-{number}.example.net/{site}/{article}"
            elif edit == "recapture":
                url = f"http://www.{site}/{article}/"  # the original's URL as another capture spells it
            elif edit == "original":
                url = f"https://{site}/{article}"
            else:
                url = f"https://{site}/{article}?variant={number}"
            text = "\n\n".join(part for part in (header, *body, footer) if part)
            document = Document(id=document_id(f"{article}/{edit}"), url=url, domain=site,
                                fetch_time=BASE_TIME + dt.timedelta(days=number))
            document.append_text(text)
            document.append_image(f"https://{site}/images/{article}-{number}.jpg", new_image_info(status="not_fetched"))
            result.append(Labelled(document, article, edit))
    return result


@dataclass
class PairScores:
    precision: float
    recall: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int


def score_pairs(labels: dict[str, str], cluster_of: dict[str, str]) -> PairScores:
    """Pair precision and recall: a pair is predicted a duplicate when both documents end in one cluster."""
    ids = sorted(labels)
    true = {(a, b) for a, b in combinations(ids, 2) if labels[a] == labels[b]}
    predicted = {(a, b) for a, b in combinations(ids, 2) if cluster_of.get(a, a) == cluster_of.get(b, b)}
    correct = len(true & predicted)
    return PairScores(precision=correct / len(predicted) if predicted else 1.0,
                      recall=correct / len(true) if true else 1.0,
                      true_pairs=len(true), predicted_pairs=len(predicted), correct_pairs=correct)


def write_shard(documents: list[Document], path: Path, config) -> Path:
    """Documents as an omnicorpus document file (the input of `omnicorpus dedup`)."""
    from omnicorpus.io.parquet import file_metadata, write_documents
    from omnicorpus.pipeline import run_schema

    path.parent.mkdir(parents=True, exist_ok=True)
    write_documents(path, documents, run_schema(config), metadata=file_metadata(config.output_hash(), "test"),
                    kept=True)
    return path


def dedup_clusters(documents: list[Document], config, folder: Path) -> dict[str, str]:
    """Run `omnicorpus dedup` on the documents; returns id -> id of the document kept in its cluster."""
    import pyarrow.parquet as pq

    from omnicorpus.dedup.command import run_dedup

    shard = write_shard(documents, folder / "input" / "shard-00000.parquet", config)
    result = run_dedup(config, [str(shard)], folder / "out")
    cluster_of = {row["id"]: row["id"] for row in pq.read_table(Path(result.output) / "shards",
                                                                 columns=["id"]).to_pylist()}
    for row in pq.read_table(Path(result.output) / "rejects", columns=["id", "signals"]).to_pylist():
        cluster_of[row["id"]] = row["signals"]["duplicate_of"]
    return cluster_of
