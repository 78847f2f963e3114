"""Per-rule funnel of the text filters on a WARC, as the markdown rows of docs/filters.md.

    python bench/filter_funnel.py INPUT.warc.gz [--config commoncrawl] [--set section.key=value ...]

Runs the pipeline with the local runner into a temporary folder and prints, for every filter stage, how many
documents entered it, how many each rule dropped (and the share of the stage's input), and how many paragraphs
each paragraph rule removed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omnicorpus.config import load_config, parse_override  # noqa: E402
from omnicorpus.pipeline import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+")
    parser.add_argument("--config", default="commoncrawl")
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    overrides = dict(parse_override(text) for text in args.overrides)
    overrides["run.runner"] = "local"
    with tempfile.TemporaryDirectory() as folder:
        stats = run(load_config(args.config, overrides), args.inputs, Path(folder) / "out").stats
    funnel = stats["funnel"]
    print(f"documents: {funnel['input']} in, {funnel['kept']} kept\n")
    print("| stage | input | rule | dropped | share of stage input |")
    print("|---|---|---|---|---|")
    for name, stage in stats["stages"].items():
        if not name.startswith("filter."):
            continue
        rows = sorted(stage["dropped"].items()) or [("-", 0)]
        for reason, count in rows:
            share = f"{count / stage['input']:.0%}" if stage["input"] and count else "-"
            print(f"| {name} | {stage['input']} | `{reason}` | {count} | {share} |")
    removed = {reason: count for stage in stats["stages"].values()
               for reason, count in stage.get("removed_elements", {}).items()}
    if removed:
        print("\n| paragraph rule | paragraphs removed (kept documents) |\n|---|---|")
        for reason, count in sorted(removed.items(), key=lambda item: -item[1]):
            print(f"| `{reason}` | {count} |")


if __name__ == "__main__":
    main()
