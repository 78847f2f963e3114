"""Language ID: paragraphs per second on one core, and correctness on the shared sample pages.

    python bench/language_id.py [--samples ../shared/samples] [--repeats 5]

Paragraphs are the text blocks omnicorpus extracts from the shared article pages, the Common Crawl excerpt and the
bundled Wikipedia article. The process is pinned to one CPU. Speed: omnicorpus' LanguageIdentifier (fastText
lid.176.ftz) one paragraph at a time and in batches, against langdetect (the usual pure-Python peer) on the same
paragraphs; medians of --repeats runs, and the same-run ratio. Correctness: each page's document-level language
against what the sample says it is (readability's expected-metadata `lang`, trafilatura's `region` DE/AT, the
Common Crawl excerpt's hosts: Chinese sites and one Swiss-German site), and the Wikipedia article (English).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from pages_warc import DEFAULT_SAMPLES, build_pages_warc  # noqa: E402

from omnicorpus.extract.html import ExtractConfig, ExtractStage  # noqa: E402
from omnicorpus.filters.base import document_paragraphs  # noqa: E402
from omnicorpus.filters.language import LanguageIdentifier, langdetect_opinion  # noqa: E402
from omnicorpus.io.warc import ReadConfig, WarcReader, RawPage  # noqa: E402


def documents(warc: Path):
    stage = ExtractStage(ExtractConfig(require_image=False))
    stage.ensure_setup()
    for item in WarcReader(str(warc), ReadConfig(index_images=False)).read():
        if not isinstance(item, RawPage) or item.problem or item.error:
            continue
        result = stage.process(item)
        if not isinstance(result, str):
            yield result


def expected_languages(samples: Path, pages) -> dict[str, str]:
    import json

    expected = {}
    evaldata = json.loads((samples / "html" / "trafilatura" / "evaldata.json").read_text())
    for page in pages:
        if page.source == "readability":
            metadata = page.path.parent / "expected-metadata.json"
            lang = json.loads(metadata.read_text()).get("lang") if metadata.exists() else None
            if lang:
                expected[page.url] = lang[:2].lower()
        elif evaldata.get(page.url, {}).get("region") in ("DE", "AT"):
            expected[page.url] = "de"
    return expected


def rate(function, items, repeats: int) -> float:
    """Median items per second over `repeats` runs."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(items)
        timings.append(time.perf_counter() - start)
    return len(items) / statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--langdetect-paragraphs", type=int, default=300,
                        help="paragraphs timed for langdetect (it is slow)")
    args = parser.parse_args()
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    with tempfile.TemporaryDirectory() as folder:
        pages_warc = Path(folder) / "pages.warc.gz"
        pages = build_pages_warc(pages_warc, args.samples)
        inputs = [pages_warc, args.samples / "warc" / "CC-MAIN-2020-34-excerpt-part-a.warc.gz",
                  ROOT / "examples" / "wikipedia-mona-lisa.warc.gz"]
        docs = [document for warc in inputs for document in documents(warc)]
    expected = expected_languages(args.samples, pages)
    for document in docs:
        if "commoncrawl" in (document.warc_file or "") or "CC-MAIN" in (document.warc_file or ""):
            expected[document.url] = "de" if "live-radsport.ch" in document.url else "zh"
        elif "wikipedia.org" in document.url:
            expected[document.url] = "en"

    identifier = LanguageIdentifier()
    print(f"model: {identifier.path}")
    right, wrong = Counter(), []
    for document in docs:
        if document.url not in expected:
            continue
        label, score = identifier.identify(document.text)
        want = expected[document.url]
        if label == want:
            right[want] += 1
        else:
            wrong.append((document.url, want, label, score))
    total = sum(right.values()) + len(wrong)
    print(f"\ndocument language vs the samples: {sum(right.values())}/{total} right "
          f"({', '.join(f'{lang} {count}' for lang, count in right.most_common())})")
    for url, want, got, score in wrong:
        print(f"  expected {want}, got {got} ({score:.2f}): {url}")

    paragraphs = [p.text for document in docs for p in document_paragraphs(document)]
    mean_chars = statistics.mean(len(p) for p in paragraphs)
    print(f"\n{len(paragraphs)} paragraphs from {len(docs)} documents, mean {mean_chars:.0f} characters; one core")
    one_by_one = rate(lambda items: [identifier.identify(p) for p in items], paragraphs, args.repeats)
    batched = rate(identifier.identify_many, paragraphs, args.repeats)
    subset = paragraphs[: args.langdetect_paragraphs]
    langdetect_rate = rate(lambda items: [langdetect_opinion(p) for p in items], subset, max(1, args.repeats // 2))
    print(f"{'method':<44}{'paragraphs/s':>14}")
    print(f"{'omnicorpus LanguageIdentifier.identify':<44}{one_by_one:>14,.0f}")
    print(f"{'omnicorpus LanguageIdentifier.identify_many':<44}{batched:>14,.0f}")
    print(f"{'langdetect 1.0.9 (first ' + str(len(subset)) + ' paragraphs)':<44}{langdetect_rate:>14,.0f}")
    print(f"ratio fastText/langdetect: {one_by_one / langdetect_rate:.0f}x; "
          f"goal >= 10,000 paragraphs/s per core: {'met' if one_by_one >= 10_000 else 'NOT met'}")


if __name__ == "__main__":
    main()
