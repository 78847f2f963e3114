"""The `omnicorpus` command: run, validate, show, dedup."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from pathlib import Path

from omnicorpus import __version__
from omnicorpus.filters import classifier
from omnicorpus.browse import add_parser as add_browse_parser
from omnicorpus.dedup.command import add_parser as add_dedup_parser
from omnicorpus.train.cli import add_parser as add_train_parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "handler"):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except BrokenPipeError:  # `omnicorpus show OUT | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except _USER_ERRORS() as exc:
        print(f"omnicorpus: error: {exc}", file=sys.stderr)
        return 2


def _USER_ERRORS() -> tuple[type[BaseException], ...]:
    from omnicorpus.config import ConfigError
    from omnicorpus.io.paths import InputError
    from omnicorpus.pipeline import RunError
    from omnicorpus.schema import ContractError

    return (ConfigError, InputError, RunError, ContractError, FileNotFoundError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="omnicorpus",
        description="Build interleaved image-text corpora from web crawls (WARC in, sharded Parquet out).",
    )
    parser.add_argument("--version", action="version", version=f"omnicorpus {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="WARC files → interleaved documents → sharded Parquet",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(
            """\
            Read WARC files, extract each HTML page's main body with its images in page order, take each image
            from the same WARC, a local image store or HTTP, validate, filter and hash it, cap images repeated
            across the corpus, and write kept documents to OUT/shards/, dropped ones with their reason
            to OUT/rejects/, the funnel to OUT/stats.json and the resolved config to OUT/run.json.
            Rerunning the same command resumes: finished units are skipped."""
        ),
    )
    run.add_argument("-i", "--input", nargs="+", required=True, action="extend", metavar="INPUT",
                     help="WARC files, directories, globs, Common Crawl warc.paths(.gz) lists or fsspec URLs")
    run.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (local)")
    run.add_argument("-c", "--config", default="commoncrawl", metavar="TOML",
                     help="pipeline config: a path or a bundled name (default: commoncrawl)")
    run.add_argument("--runner", choices=("ray", "local"), help="ray (default: embedded or a cluster) or local")
    run.add_argument("--ray-address", metavar="ADDRESS",
                     help="join a running Ray cluster: auto or HOST:PORT (default: start an embedded Ray)")
    run.add_argument("--workers", type=int, metavar="N", help="parallel tasks (default: all cores)")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                     help="override one config value, e.g. --set extract.require_image=false (repeatable)")
    run.add_argument("--overwrite", action="store_true", help="delete a previous run in OUT and start again")
    run.set_defaults(handler=_run)

    validate = commands.add_parser("validate", help="check every Parquet file of a run against the data contract")
    validate.add_argument("output", metavar="OUT")
    validate.set_defaults(handler=_validate)

    show = commands.add_parser("show", help="print documents in reading order, images as [image: url WxH]")
    show.add_argument("output", metavar="OUT")
    show.add_argument("-n", "--limit", type=int, default=3, help="documents to print (default 3)")
    show.add_argument("--rejects", action="store_true", help="show rejected documents instead of kept ones")
    show.add_argument("--id", dest="document_id", help="show the document with this id")
    show.add_argument("--width", type=int, default=100, help="wrap text at this many columns")
    show.set_defaults(handler=_show)

    classifier.add_parser(commands)
    add_browse_parser(commands)
    add_train_parser(commands)
    add_dedup_parser(commands)
    return parser


def _run(args) -> int:
    from omnicorpus.pipeline import run

    from omnicorpus.config import config_from_args

    config = config_from_args(args)
    result = run(config, args.input, args.output, overwrite=args.overwrite, config_source=str(args.config))
    if result.skipped:
        print(f"{result.output} is already complete (delete it or pass --overwrite to run again)")
    print(format_funnel(result.stats))
    print(f"\n{len(result.shards)} shard(s) in {Path(result.output) / 'shards'}; "
          f"rejects in {Path(result.output) / 'rejects'}; stats in {Path(result.output) / 'stats.json'}")
    return 0


def format_funnel(stats: dict) -> str:
    records = stats["records"]
    lines = [f"records read: {records['total']}  " + ", ".join(f"{k} {v}" for k, v in records["outcome"].items())]
    width = max([len("stage"), *map(len, stats["stages"])]) + 2
    lines.append(f"{'stage':<{width}}{'input':>9}{'kept':>9}  dropped")
    for name, stage in stats["stages"].items():
        dropped = ", ".join(f"{reason} {count}" for reason, count in stage["dropped"].items()) or "-"
        lines.append(f"{name:<{width}}{stage['input']:>9}{stage['kept']:>9}  {dropped}")
        removed = stage.get("removed_elements") or {}
        if removed:
            lines.append(f"{'':<{width}}{'':>18}  removed elements: "
                         + ", ".join(f"{reason} {count}" for reason, count in removed.items()))
    funnel = stats["funnel"]
    lines.append(f"documents: {funnel['input']} in, {funnel['kept']} kept, "
                 f"{sum(funnel['dropped'].values())} dropped")
    if stats.get("image_status"):
        lines.append("images: " + ", ".join(f"{k} {v}" for k, v in stats["image_status"].items()))
    return "\n".join(lines)


def _validate(args) -> int:
    from omnicorpus.validate import validate_output

    report = validate_output(args.output)
    for line in report.lines:
        print(line)
    if report.problems:
        for problem in report.problems:
            print(f"FAIL {problem}")
        return 1
    print("OK: every file meets the data contract")
    return 0


def _show(args) -> int:
    from omnicorpus.show import show_documents

    show_documents(args.output, limit=args.limit, rejects=args.rejects, document_id=args.document_id,
                   width=args.width, stream=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
