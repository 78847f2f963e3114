"""Build a WARC from the shared ground-truth article pages, for benchmarks and fidelity checks.

    python bench/pages_warc.py OUT.warc.gz [--samples ../shared/samples] [--copies N]

Readability pages get the URL readability's own test harness uses (http://fakehost/test/page.html, plus a query
naming the page so every record has its own URL; relative URLs resolve the same way). Trafilatura pages get their
real URL from evaldata.json. With --copies N each page is written N times under distinct URLs (throughput runs).
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import dataclass
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def _find_samples() -> Path:
    """The shared sample set next to the checkout (../shared/samples), also from a worktree one level deeper."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "shared" / "samples").is_dir():
            return folder / "shared" / "samples"
    return Path(__file__).resolve().parent.parent.parent / "shared" / "samples"


DEFAULT_SAMPLES = _find_samples()
READABILITY_BASE = "http://fakehost/test/page.html"


@dataclass(frozen=True)
class SamplePage:
    source: str  # "readability" or "trafilatura"
    name: str
    url: str
    path: Path


def sample_pages(samples: Path = DEFAULT_SAMPLES) -> list[SamplePage]:
    pages = []
    for folder in sorted((samples / "html" / "readability").iterdir()):
        if (folder / "source.html").exists():
            pages.append(SamplePage("readability", folder.name, f"{READABILITY_BASE}?page={folder.name}",
                                    folder / "source.html"))
    evaldata = json.loads((samples / "html" / "trafilatura" / "evaldata.json").read_text())
    for url, entry in sorted(evaldata.items()):
        pages.append(SamplePage("trafilatura", Path(entry["file"]).name, url,
                                samples / "html" / "trafilatura" / entry["file"]))
    return pages


def build_pages_warc(output: Path, samples: Path = DEFAULT_SAMPLES, copies: int = 1) -> list[SamplePage]:
    """Write every sample page (times `copies`) as a response record; returns the pages written."""
    pages = sample_pages(samples)
    with open(output, "wb") as handle:
        writer = WARCWriter(handle, gzip=str(output).endswith(".gz"))
        for copy in range(copies):
            for page in pages:
                url = page.url if copy == 0 else f"{page.url}{'&' if '?' in page.url else '?'}copy={copy}"
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1")
                record = writer.create_warc_record(url, "response", payload=io.BytesIO(page.path.read_bytes()),
                                                   http_headers=headers,
                                                   warc_headers_dict={"WARC-Date": "2024-01-01T00:00:00Z"})
                writer.write_record(record)
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output", type=Path)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES)
    parser.add_argument("--copies", type=int, default=1)
    args = parser.parse_args()
    pages = build_pages_warc(args.output, args.samples, args.copies)
    print(f"{len(pages) * args.copies} records ({len(pages)} pages x {args.copies}) -> {args.output}")


if __name__ == "__main__":
    main()
