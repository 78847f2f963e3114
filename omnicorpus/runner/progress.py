"""A progress bar for long runs: tqdm on a terminal, nothing when output is piped or logged."""

from __future__ import annotations

import sys


def progress(total: int, description: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="unit", disable=None if sys.stderr.isatty() else True,
                leave=False, file=sys.stderr)
