"""`omnicorpus browse OUT [OUT2 ...]`: the auditor's browser, a local web page over one or more runs.

This module only registers the command; the server (and DuckDB) load when the command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def add_parser(commands) -> argparse.ArgumentParser:
    browse = commands.add_parser(
        "browse",
        help="serve a local web page to browse, query and label kept and rejected documents",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(
            """\
            Serve a web page over the output of `omnicorpus run`: the funnel and drop reasons as charts,
            language, domain, image and text-length distributions, the run's config; seeded random samples
            filtered by language, domain, URL, text, signals, drop reason and image count (kept and rejected
            side by side); each document in reading order with its images, removed elements and provenance;
            good/bad labels stored in SQLite and exported for `omnicorpus classifier train`, with the
            false-positive rate of each drop reason. Queries run on the Parquet files with DuckDB; the shards
            are only read. Several OUT folders open side by side and can be compared.

            With --export, write the labelled set (.jsonl or .parquet) and print the false-positive table
            instead of serving."""
        ),
    )
    browse.add_argument("outputs", nargs="+", metavar="OUT", help="output folder(s) of omnicorpus run")
    browse.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: only this machine can connect)")
    browse.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)")
    browse.add_argument("--labels", metavar="PATH",
                        help="one SQLite file for the labels of all opened runs (default: OUT/labels.sqlite)")
    browse.add_argument("--export", metavar="FILE",
                        help="write the labelled set to FILE (.jsonl or .parquet), print the false-positive table, "
                             "and exit")
    browse.set_defaults(handler=run_browse)
    return browse


def run_browse(args) -> int:
    from omnicorpus.browse.data import open_run
    from omnicorpus.browse.labels import LabelError, false_positive_csv, false_positive_table, write_export
    from omnicorpus.browse.server import LabelBook, make_server

    if args.export:
        runs = [open_run(index, folder) for index, folder in enumerate(args.outputs)]
        labels = [label for label, _ in LabelBook(runs, args.labels).all(runs)]
        try:
            count = write_export(labels, args.export)
        except LabelError as error:
            print(f"omnicorpus: error: {error}", file=sys.stderr)
            return 2
        print(f"{count} labelled document(s) written to {args.export}")
        print(false_positive_csv(false_positive_table(labels)), end="")
        return 0
    try:
        server = make_server(args.outputs, args.host, args.port, args.labels)
    except OSError as error:
        print(f"omnicorpus: error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    if server.allowed_hosts is None:
        log.warning("listening on %s: anyone who can reach this address can read the documents and write labels",
                    args.host)
    print(f"omnicorpus browse: serving {len(args.outputs)} run(s) at {server.url}  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
