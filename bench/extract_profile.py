"""Where the extraction time goes: CPU ms per page for each step of the extract stage, per engine.

    python bench/extract_profile.py [--samples ../shared/samples] [--passes 3] [--engine trafilatura resiliparse]
                                    [--set extract.fast=false] [--unguarded] [--json FILE]

Runs the steps of `ExtractStage._extract` one by one on every shared ground-truth page (84 pages, mean 146 KB of
HTML), in one process, `--passes` times; a step's figure is the median over passes of its CPU time summed over
the pages, divided by the number of pages. The last line per engine is the whole stage (`ExtractStage.process`,
decode and checks included) timed the same way, which is what the steps should add up to. `--unguarded` runs
trafilatura with its own XPath expressions instead of their guarded equivalents (omnicorpus/extract/
xpath_guards.py), to measure what the guards save. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pages_warc import DEFAULT_SAMPLES, sample_pages  # noqa: E402
from omnicorpus.config import load_config, parse_override  # noqa: E402
from omnicorpus.extract import engines  # noqa: E402
from omnicorpus.extract.align import build_stream  # noqa: E402
from omnicorpus.extract.decode import decode_html  # noqa: E402
from omnicorpus.extract.html import ExtractStage, _key_chars, _title_of, parse_html  # noqa: E402
from omnicorpus.extract.layout import Placement, interleave  # noqa: E402
from omnicorpus.extract.sources import caption_elements, resolve_images  # noqa: E402
from omnicorpus.extract.xpath_guards import unguarded  # noqa: E402
from omnicorpus.io.warc import RawPage  # noqa: E402


class Steps:
    """CPU time per named step, summed over the pages of one pass."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._started = time.process_time()

    def mark(self, step: str) -> None:
        now = time.process_time()
        self.seconds[step] += now - self._started
        self._started = now


def profile_pass(pages: list[tuple[str, bytes]], config) -> dict[str, float]:
    steps = Steps()
    for url, payload in pages:
        steps.mark("(between pages)")
        html, _ = decode_html(payload, "text/html")
        steps.mark("charset decoding")
        tree = parse_html(html)
        steps.mark("lxml parse")
        if tree is None:
            continue
        _title_of(tree)
        captions = caption_elements(tree)
        images = resolve_images(tree, url, config.srcset_width, config.prefer_src, captions)
        steps.mark("image resolution (sources.py, title)")
        engine = config.engine
        if engine == "resiliparse":
            body = engines.resiliparse_body(tree, config)
            steps.mark("main text: resiliparse (with boilerplate.py)")
            if body is None or _key_chars(body) < config.resiliparse_min_chars:
                engine, body = "trafilatura", engines.trafilatura_body(tree, url, config)
                steps.mark("main text: trafilatura where resiliparse fell short")
        else:
            body = engines.trafilatura_body(tree, url, config)
            steps.mark("main text: trafilatura")
        if body is None:
            continue
        stream = build_stream(tree, [image.card for image in images if image.card is not None], captions)
        steps.mark("page positions (align.build_stream)")
        interleave(body, stream, images, Placement(gap_chars=config.image_gap_chars,
                                                   edge_gap_chars=config.image_edge_gap_chars,
                                                   trust_cards=engine == "trafilatura"))
        steps.mark("placement and slots (layout.interleave)")
    stage = ExtractStage(config)
    for url, payload in pages:
        stage.process(RawPage(url=url, warc_file="profile", record_id="", offset=0, payload=payload,
                              content_type="text/html"))
    steps.mark("extraction total (ExtractStage.process)")
    steps.seconds.pop("(between pages)", None)
    return steps.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--engine", nargs="+", default=list(engines.ENGINES), choices=engines.ENGINES)
    parser.add_argument("--config", default="commoncrawl")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides")
    parser.add_argument("--unguarded", action="store_true",
                        help="trafilatura's own XPath expressions, not the guarded ones (xpath_guards.py)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with unguarded() if args.unguarded else contextlib.nullcontext():
        profile(args)


def profile(args) -> None:
    config = load_config(args.config, dict(parse_override(text) for text in args.overrides)).extract
    pages = [(page.url, page.path.read_bytes()) for page in sample_pages(args.samples)]
    figures = {}
    for engine in args.engine:
        engine_config = replace(config, engine=engine, require_image=False)
        ExtractStage(engine_config).setup()
        profile_pass(pages[:5], engine_config)  # warm-up: first calls compile regexes and XPath
        passes = [profile_pass(pages, engine_config) for _ in range(args.passes)]
        figures[engine] = {step: round(1000 * statistics.median(p[step] for p in passes) / len(pages), 2)
                           for step in passes[0]}
        print(f"\n== {engine} ({len(pages)} pages, CPU ms per page, median of {args.passes} passes)")
        for step, ms in figures[engine].items():
            print(f"  {step:45s} {ms:6.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
