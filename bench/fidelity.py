"""Score interleaved extraction against the shared ground-truth pages (docs/extraction.md has the figures).

    python bench/fidelity.py [--samples ../shared/samples] [--config extract-only] [--set extract.fast=false]
                             [--work DIR] [--json FILE] [--pages] [--no-peers]

Builds a WARC of the sample pages (bench/pages_warc.py), runs `omnicorpus run --config extract-only` on it with
the local runner, reads the shards and rejects, and scores each page:

- readability pages (html/readability/*): main-text token F1 against the text of `expected.html`; image recall,
  precision and Kendall tau of order against the `<img>` elements of `expected.html` (relative URLs resolved
  against the page URL readability's harness uses, data: URIs left out on both sides, an expected image matched
  by its src or any srcset URL);
- trafilatura pages (html/trafilatura/*): token-weighted precision/recall/F1 of the evaldata.json `with`
  (must appear) and `without` (must not appear) snippets.

In the same script, trafilatura's own text-only extraction (with the config's focus, tables, comments and fast
settings, and with trafilatura's defaults) and trafilatura's own image output walked in order (what omnicorpus
did before) are scored on the same decoded pages, so "text with images is at least as good as text only" is
checked in one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Callable

import pyarrow.parquet as pq
from lxml import html as lxml_html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pages_warc import DEFAULT_SAMPLES, READABILITY_BASE, SamplePage, build_pages_warc  # noqa: E402
from omnicorpus.config import load_config, parse_override  # noqa: E402
from omnicorpus.extract.decode import decode_html  # noqa: E402
from omnicorpus.extract.fidelity import (ImageScores, Scores, image_candidates, image_scores,  # noqa: E402
                                         normalize_url, same_picture, snippet_scores, token_f1)
from omnicorpus.extract.sources import base_url_of  # noqa: E402
from omnicorpus.pipeline import run  # noqa: E402


@dataclass(frozen=True)
class Extraction:
    """What one extractor gave for one page: its main text and image URLs in order (None: nothing)."""

    text: str
    images: tuple[str, ...]


@dataclass
class Ground:
    page: SamplePage
    text: str | None = None  # readability: the expected text
    images: list[frozenset[str]] = field(default_factory=list)  # readability: candidates per expected image
    with_snippets: list[str] = field(default_factory=list)  # trafilatura
    without_snippets: list[str] = field(default_factory=list)


def ground_truth(pages: list[SamplePage], samples: Path) -> list[Ground]:
    evaldata = json.loads((samples / "html" / "trafilatura" / "evaldata.json").read_text())
    truths = []
    for page in pages:
        if page.source == "readability":
            expected = lxml_html.fromstring((page.path.parent / "expected.html").read_text(encoding="utf-8"))
            source = lxml_html.fromstring(decode_html(page.path.read_bytes(), "text/html")[0])
            base = base_url_of(source, READABILITY_BASE)
            page_images = [image_candidates(img, base) for img in source.iter("img")]
            images = [c for c in (image_candidates(img, READABILITY_BASE) for img in expected.iter("img")) if c]
            images = same_picture(images, page_images)
            truths.append(Ground(page, text=expected.text_content(), images=images))
        else:
            entry = evaldata[page.url]
            truths.append(Ground(page, with_snippets=entry.get("with", []), without_snippets=entry.get("without", [])))
    return truths


# -- extractors ------------------------------------------------------------------------------------------


def run_extractions(pages: list[SamplePage], samples: Path, config, work: Path) -> dict[str, Extraction]:
    """Run the omnicorpus pipeline on a WARC of the pages; returns {page url: extraction} of kept documents."""
    warc = work / "pages.warc.gz"
    build_pages_warc(warc, samples)
    result = run(config, [str(warc)], work / "out", overwrite=True)
    extractions = {}
    for path in sorted((Path(result.output) / "shards").glob("*.parquet")):
        for row in pq.read_table(path, columns=["url", "texts", "images"]).to_pylist():
            text = "\n\n".join(t for t in row["texts"] if t is not None)
            extractions[row["url"].strip()] = Extraction(text, tuple(i for i in row["images"] if i is not None))
    return extractions


def trafilatura_text_only(**options) -> Callable[[str, str], Extraction | None]:
    def extract(html: str, url: str) -> Extraction | None:
        from trafilatura import extract as trafilatura_extract

        text = trafilatura_extract(html, url=url, deduplicate=False, **options)
        return Extraction(text, ()) if text else None

    return extract


def resiliparse_text_only(**options) -> Callable[[str, str], Extraction | None]:
    def extract(html: str, url: str) -> Extraction | None:
        from resiliparse.extract.html2text import extract_plain_text

        text = extract_plain_text(html, main_content=True, **options)
        return Extraction(text, ()) if text.strip() else None

    return extract


def trafilatura_images_walked(**options) -> Callable[[str, str], Extraction | None]:
    def extract(html: str, url: str) -> Extraction | None:
        from trafilatura import bare_extraction

        document = bare_extraction(html, url=url, include_images=True, deduplicate=False, **options)
        if document is None or document.body is None:
            return None
        return Extraction(document.text or "", tuple(g.get("src") for g in document.body.iter("graphic")))

    return extract


# -- scoring ---------------------------------------------------------------------------------------------


@dataclass
class Summary:
    text_f1: list[float] = field(default_factory=list)  # readability pages, one per page
    snippets: Scores = Scores(0, 0, 0)  # trafilatura pages, pooled
    images: list[ImageScores] = field(default_factory=list)  # readability pages
    missing: list[str] = field(default_factory=list)  # pages without output
    per_page: dict[str, dict] = field(default_factory=dict)

    def add(self, truth: Ground, extraction: Extraction | None) -> None:
        name = f"{truth.page.source}/{truth.page.name}"
        if extraction is None:
            self.missing.append(name)
            extraction = Extraction("", ())
        if truth.page.source == "readability":
            f1 = token_f1(extraction.text, truth.text).f1
            self.text_f1.append(f1)
            got = [url for url in (normalize_url(u) for u in extraction.images) if url is not None]
            scores = image_scores(got, truth.images)
            self.images.append(scores)
            self.per_page[name] = {"text_f1": round(f1, 3), "images_matched": scores.matched,
                                   "images_extracted": scores.extracted, "images_expected": scores.expected,
                                   "kendall_tau": scores.kendall_tau}
        else:
            scores = snippet_scores(extraction.text, truth.with_snippets, truth.without_snippets)
            self.snippets = self.snippets + scores
            self.per_page[name] = {"snippet_f1": round(scores.f1, 3)}

    def figures(self) -> dict:
        matched = sum(s.matched for s in self.images)
        extracted = sum(s.extracted for s in self.images)
        expected = sum(s.expected for s in self.images)
        taus = [s.kendall_tau for s in self.images if s.kendall_tau is not None]
        with_images = [s for s in self.images if s.expected]
        return {
            "readability_text_f1_mean": round(mean(self.text_f1), 4) if self.text_f1 else None,
            "trafilatura_snippet_precision": round(self.snippets.precision, 4),
            "trafilatura_snippet_recall": round(self.snippets.recall, 4),
            "trafilatura_snippet_f1": round(self.snippets.f1, 4),
            "image_recall_pooled": round(matched / expected, 4) if expected else None,
            "image_precision_pooled": round(matched / extracted, 4) if extracted else None,
            "image_recall_page_mean": round(mean(s.recall for s in with_images), 4) if with_images else None,
            "kendall_tau_min": round(min(taus), 4) if taus else None,
            "kendall_tau_mean": round(mean(taus), 4) if taus else None,
            "images": {"matched": matched, "extracted": extracted, "expected": expected},
            "pages_without_output": self.missing,
        }


def score(truths: list[Ground], extractions: Callable[[Ground], Extraction | None]) -> Summary:
    summary = Summary()
    for truth in truths:
        summary.add(truth, extractions(truth))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--config", default="extract-only", help="pipeline config (default: extract-only)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                        help="override one config value, e.g. --set extract.fast=false (repeatable)")
    parser.add_argument("--work", type=Path, help="folder for the WARC and the run (default: a temporary one)")
    parser.add_argument("--json", type=Path, help="write all figures (and per-page scores) to this file")
    parser.add_argument("--pages", action="store_true", help="print per-page scores of omnicorpus")
    parser.add_argument("--no-peers", action="store_true", help="score omnicorpus only")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("trafilatura").setLevel(logging.CRITICAL)

    from bench.pages_warc import sample_pages

    config = load_config(args.config, dict([parse_override(text) for text in args.overrides],
                                           **{"run.runner": "local"}))
    pages = sample_pages(args.samples)
    truths = ground_truth(pages, args.samples)
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        ours = run_extractions(pages, args.samples, config, work)
    results = {"omnicorpus": score(truths, lambda truth: ours.get(truth.page.url.strip()))}

    if not args.no_peers:
        extract = config.extract
        same = dict(include_comments=extract.include_comments, include_tables=extract.include_tables,
                    favor_precision=extract.favor == "precision", favor_recall=extract.favor == "recall",
                    fast=extract.fast)
        peers = {
            "trafilatura text-only (same settings)": trafilatura_text_only(**same),
            "trafilatura text-only (defaults)": trafilatura_text_only(),
            "trafilatura images walked (same settings)": trafilatura_images_walked(**same),
            "resiliparse text-only (defaults)": resiliparse_text_only(),
        }
        decoded = {t.page.url: decode_html(t.page.path.read_bytes(), "text/html")[0] for t in truths}
        for name, extractor in peers.items():
            results[name] = score(truths, lambda truth: extractor(decoded[truth.page.url], truth.page.url))

    figures = {name: summary.figures() for name, summary in results.items()}
    for name, values in figures.items():
        print(f"\n== {name}")
        for key, value in values.items():
            print(f"  {key}: {value}")
    if args.pages:
        print("\n== omnicorpus per page")
        for name, values in results["omnicorpus"].per_page.items():
            print(f"  {name}: {values}")
    if args.json:
        payload = {"figures": figures, "pages": {n: s.per_page for n, s in results.items()}}
        args.json.write_text(json.dumps(payload, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
