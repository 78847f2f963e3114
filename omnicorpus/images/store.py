"""A local image store the user points at (`images.store`): image bytes by URL, consulted before fetching.

Two layouts, told apart by what the folder holds:

- **Parquet**: any `*.parquet` files (searched recursively) with a string column `url` and a binary column
  `data`. The fetch results a run leaves in `OUT/_work/images/fetch/` have this layout, so one run's
  downloads can serve the next run as its store.
- **Files named by URL hash**: each file is named by the hex sha256 of the image URL (UTF-8), with or
  without an extension (`3f9a….jpg`), anywhere under the folder. This is how OmniCorpus stored its downloads
  (`img_url_sha`, anchors §1.5).

Lookups are by exact URL string, as the extractor wrote it into `images`.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Iterable, Protocol

import pyarrow.parquet as pq

_SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")


class ImageStore(Protocol):
    def contains(self, urls: Iterable[str]) -> set[str]:
        """The URLs of `urls` whose bytes the store holds."""

    def get(self, urls: Iterable[str]) -> dict[str, bytes]:
        """URL → bytes for the URLs of `urls` the store holds."""


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def open_store(path: str) -> ImageStore | None:
    """The store at `path`, or None for "". A missing folder is an error, never an empty store."""
    if not path:
        return None
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"images.store {path!r} is not a folder")
    parquet_files = sorted(str(p) for p in root.rglob("*.parquet"))
    if parquet_files:
        return ParquetStore(parquet_files)
    return HashedFileStore(root)


class ParquetStore:
    """Parquet files with `url` and `data` columns; the first file holding a URL wins."""

    def __init__(self, paths: list[str]):
        self.paths = paths
        for path in paths:
            names = pq.read_schema(path).names
            if "url" not in names or "data" not in names:
                raise ValueError(f"image store file {path} has columns {names}; it needs url and data")
        self._urls: set[str] | None = None

    def contains(self, urls: Iterable[str]) -> set[str]:
        if self._urls is None:
            self._urls = set()
            for path in self.paths:
                self._urls.update(u for u in pq.read_table(path, columns=["url"]).column("url").to_pylist() if u)
        return self._urls.intersection(urls)

    def get(self, urls: Iterable[str]) -> dict[str, bytes]:
        wanted = sorted(set(urls))
        found: dict[str, bytes] = {}
        if not wanted:
            return found
        for path in self.paths:
            table = pq.read_table(path, columns=["url", "data"], filters=[("url", "in", wanted)])
            for url, data in zip(table.column("url").to_pylist(), table.column("data").to_pylist()):
                if data is not None:
                    found.setdefault(url, data)
        return found


class HashedFileStore:
    """Files named `<sha256(url)>[.ext]` under a folder (sub-folders allowed)."""

    def __init__(self, root: Path):
        self.root = root
        self._index: dict[str, str] | None = None

    @property
    def index(self) -> dict[str, str]:
        """sha256 hex → file path, built once by walking the folder."""
        if self._index is None:
            self._index = {}
            for folder, _, files in os.walk(self.root):
                for name in sorted(files):
                    stem = name.split(".", 1)[0].lower()
                    if _SHA256_NAME.match(stem):
                        self._index.setdefault(stem, os.path.join(folder, name))
        return self._index

    def contains(self, urls: Iterable[str]) -> set[str]:
        return {url for url in urls if url_key(url) in self.index}

    def get(self, urls: Iterable[str]) -> dict[str, bytes]:
        found = {}
        for url in urls:
            path = self.index.get(url_key(url))
            if path is not None:
                with open(path, "rb") as handle:
                    found[url] = handle.read()
        return found
