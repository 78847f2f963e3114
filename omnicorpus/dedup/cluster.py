"""The cluster step: key rows of every unit → duplicate pairs → connected components → losers per unit.

Everything runs through the executor's `map_groups` (split and reduce tasks over Parquet files on Ray,
runner/groups.py; the in-memory reference on the local runner), grouped by a `partition` column: rows of one
key (or one node) always share a partition, and one call handles one partition with vectorised numpy. A task
therefore holds one partition, never the corpus; the number of partitions grows with the corpus
(`dedup.partition_rows`).

1. **Star edges.** Documents sharing a key (a URL, a content hash, an image set, an LSH band) form a group;
   every member is linked to the group's smallest node, the one the keep policy prefers (k - 1 edges for k
   members, not k²). Edges are written in both directions, tagged with the kind of key.
2. **Connected components** by alternating large-star and small-star rounds (Kiveris et al., "Connected
   Components in MapReduce and Beyond", SoCC 2014; O(log² n) rounds, each a map_groups by node) until
   neither changes the graph. Every component is then a star around its smallest node: the document to keep.
3. **Losers.** A join by node of the converged stars with the star edges gives each other member its
   survivor and the strongest kind of key it shares (url < content < image_set < near).
4. **Per unit.** A group-by on the unit writes `losers/<unit>.parquet` (id, kind, duplicate_of) for the mark
   step; only the unit's own losers, so a mark task's memory is bounded by its unit.

A node is bytes that sort in keep order (`keys.py`), so every choice is by comparing bytes: deterministic,
with no lookup of document fields after the keys are written.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from omnicorpus.dedup.keys import KINDS, node_ids, node_units
from omnicorpus.io.parquet import write_table

# Rounds of large-star + small-star before the step gives up; Kiveris et al. bound them by O(log² n), and a
# billion documents need far fewer than this.
MAX_ROUNDS = 60
STRUCTURE = -1  # the kind of an edge made by the component rounds, not by a shared key

EDGE_SCHEMA = pa.schema([
    ("partition", pa.int32()),
    ("node", pa.binary()),
    ("neighbour", pa.binary()),
    ("kind", pa.int8()),
    ("changed", pa.bool_()),
])
LOSER_SCHEMA = pa.schema([
    ("unit", pa.int32()),
    ("id", pa.string()),
    ("kind", pa.int8()),
    ("duplicate_of", pa.string()),
])
UNIT_LOSERS_SCHEMA = pa.schema([("id", pa.string()), ("kind", pa.string()), ("duplicate_of", pa.string())])
SUMMARY_SCHEMA = pa.schema([("unit", pa.int32()), ("losers", pa.int64())])


def node_partition(nodes: pa.Array, partitions: int) -> pa.Array:
    """The partition of each node (CRC-32 of its bytes): every row about a node lands in the same one."""
    return pa.array([zlib.crc32(node) % partitions for node in nodes.to_pylist()], pa.int32())


def _edges(dictionary: pa.Array, nodes: np.ndarray, neighbours: np.ndarray, kinds: np.ndarray,
           changed: np.ndarray, partitions: int) -> pa.Table:
    node_values = dictionary.take(pa.array(nodes, pa.int64()))
    return pa.table({
        "partition": node_partition(node_values, partitions),
        "node": node_values,
        "neighbour": dictionary.take(pa.array(neighbours, pa.int64())),
        "kind": pa.array(kinds.astype(np.int8)),
        "changed": pa.array(changed.astype(bool)),
    }, schema=EDGE_SCHEMA)


def _both_directions(nodes, neighbours, kinds, changed):
    return (np.concatenate((nodes, neighbours)), np.concatenate((neighbours, nodes)),
            np.concatenate((kinds, kinds)), np.concatenate((changed, np.zeros_like(changed))))


def _numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return column.to_numpy()  # of a ChunkedArray: one copy into numpy, no combined Arrow array first


def _codes(*columns: pa.ChunkedArray | pa.Array) -> tuple[pa.Array, list[np.ndarray]]:
    """Sorted distinct nodes of the columns, and each column as int64 positions in them (order kept).

    By ranking (a sort), not hashing: hash tables of the distinct nodes (Arrow's `unique`, then `index_in`'s
    own) cost ~300 bytes per distinct node, so a partition's memory followed how many documents it saw (from
    100 k in a 100 k-document corpus to 645 k at 1 M for the same 10^6 rows); ranked, it costs a few integers
    per row (docs/benchmarks.md, "Memory of the cluster step"). The columns stay chunked as read."""
    chunks = [chunk for column in columns
              for chunk in (column.chunks if isinstance(column, pa.ChunkedArray) else [column])]
    nodes = pa.chunked_array(chunks, type=columns[0].type)
    bounds = np.cumsum([len(column) for column in columns])[:-1]
    if not len(nodes):
        return pa.array([], nodes.type), np.split(np.zeros(0, dtype=np.int64), bounds)
    codes = _numpy(pc.rank(nodes, tiebreaker="dense")).astype(np.int64) - 1  # equal nodes share a rank
    row_of = np.empty(int(codes.max()) + 1, dtype=np.int64)
    row_of[codes] = np.arange(len(codes))  # a row holding each distinct node (equal rows: any will do)
    return nodes.take(pa.array(row_of)).combine_chunks(), np.split(codes, bounds)


def _group_starts(*sorted_columns: np.ndarray) -> np.ndarray:
    """Boolean mask: True where a row starts a new run of equal values in the (sorted) columns."""
    starts = np.ones(len(sorted_columns[0]), dtype=bool)
    if len(starts) > 1:
        starts[1:] = np.logical_or.reduce([column[1:] != column[:-1] for column in sorted_columns])
    return starts


def _distinct_pairs(nodes: np.ndarray, neighbours: np.ndarray):
    """The (node, neighbour) pairs sorted by node then neighbour, repeats and self-loops removed."""
    proper = nodes != neighbours
    nodes, neighbours = nodes[proper], neighbours[proper]
    order = np.lexsort((neighbours, nodes))
    nodes, neighbours = nodes[order], neighbours[order]
    first = _group_starts(nodes, neighbours)
    return nodes[first], neighbours[first]


class GroupFunction:
    """A picklable map_groups function with settings, named like a function (`__name__`) in logs."""

    @property
    def __name__(self) -> str:
        return type(self).__name__


def local_components(count: int, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For codes 0..count-1 linked by (sources[i], targets[i]): the smallest code of each one's component.

    Min-label propagation over the edges with pointer jumping, vectorised; for the star-shaped groups of one
    partition it settles in a few passes.
    """
    labels = np.arange(count)
    while True:
        before = labels.copy()
        np.minimum.at(labels, sources, labels[targets])
        np.minimum.at(labels, targets, labels[sources])
        while not np.array_equal(jumped := labels[labels], labels):
            labels = jumped
        if np.array_equal(labels, before):
            return labels


class StarEdges(GroupFunction):
    """map_groups function over key rows, one partition of keys per call.

    Documents sharing a key are linked; the partition's links are contracted at once into one star per local
    component, around its smallest node (the one the keep policy prefers). That changes no global component
    and leaves the rounds little to do; with a single partition the stars are already the final components.
    Each row carries the strongest kind of key its node shares in this partition.
    """

    def __init__(self, partitions: int):
        self.partitions = partitions

    def __call__(self, table: pa.Table) -> pa.Table:
        # Sorted as numpy columns, nodes as codes (which sort as the nodes do): no sorted copy of the table.
        dictionary, (nodes,) = _codes(table.column("node"))
        kind, key, key2 = (_numpy(table.column(name)) for name in ("kind", "key", "key2"))
        order = np.lexsort((nodes, key2, key, kind))
        kind, nodes = kind[order], nodes[order]
        starts = _group_starts(kind, key[order], key2[order])
        del key, key2, order
        members = np.flatnonzero(~starts)
        if not len(members):
            return EDGE_SCHEMA.empty_table()
        group_best = nodes[np.flatnonzero(starts)[np.cumsum(starts) - 1]]
        strongest = np.full(len(dictionary), len(KINDS), dtype=np.int8)
        np.minimum.at(strongest, nodes[members], kind[members])
        np.minimum.at(strongest, group_best[members], kind[members])
        labels = local_components(len(dictionary), nodes[members], group_best[members])
        linked = np.flatnonzero(strongest < len(KINDS))
        leaves = linked[labels[linked] != linked]
        roots = labels[leaves]
        return _edges(dictionary, np.concatenate((leaves, roots)), np.concatenate((roots, leaves)),
                      np.concatenate((strongest[leaves], strongest[roots])), np.zeros(2 * len(leaves), bool),
                      self.partitions)


class StarRound(GroupFunction):
    """One round of the component algorithm over edge rows grouped by node: `step` sees the distinct
    (node, neighbour) pairs of the partition as int codes, sorted by node then neighbour."""

    def __init__(self, partitions: int):
        self.partitions = partitions

    def __call__(self, table: pa.Table) -> pa.Table:
        dictionary, (nodes, neighbours) = _codes(table.column("node"), table.column("neighbour"))
        nodes, neighbours = _distinct_pairs(nodes, neighbours)
        if not len(nodes):
            return EDGE_SCHEMA.empty_table()
        starts = _group_starts(nodes)
        sources, targets, changed, both = self.step(nodes, neighbours, np.flatnonzero(starts), np.cumsum(starts) - 1)
        kinds = np.full(len(sources), STRUCTURE)
        if both:
            sources, targets, kinds, changed = _both_directions(sources, targets, kinds, changed)
        return _edges(dictionary, sources, targets, kinds, changed, self.partitions)

    def step(self, nodes, neighbours, group_start, group_of):
        """Returns (sources, targets, changed, whether to write both directions)."""
        raise NotImplementedError


class LargeStar(StarRound):
    """Over undirected edges (both directions present): for each node u with m = min(u and its neighbours),
    links every neighbour larger than u to m; `changed` where m is not u itself."""

    def step(self, nodes, neighbours, group_start, group_of):
        smallest = np.minimum(nodes, neighbours[group_start][group_of])
        larger = neighbours > nodes
        return neighbours[larger], smallest[larger], smallest[larger] < nodes[larger], False


class SmallStar(StarRound):
    """Over large-star edges (node → smaller neighbour): for each node u with m = its smallest neighbour,
    links u and every other smaller neighbour of u to m, in both directions; `changed` where u had two or
    more smaller neighbours."""

    def step(self, nodes, neighbours, group_start, group_of):
        smallest = neighbours[group_start][group_of]
        group_size = np.diff(np.append(group_start, len(nodes)))
        others = neighbours != smallest
        sources = np.concatenate((nodes[group_start], neighbours[others]))
        targets = np.concatenate((smallest[group_start], smallest[others]))
        changed = np.concatenate((group_size >= 2, np.zeros(int(others.sum()), bool)))
        return sources, targets, changed, True


class Losers(GroupFunction):
    """map_groups function joining, by node, the star edges (kinds) with the converged components (roots).

    `stars_are_final`: the star edges are the components already (one partition), no rounds ran.
    """

    def __init__(self, stars_are_final: bool = False):
        self.stars_are_final = stars_are_final

    def __call__(self, table: pa.Table) -> pa.Table:
        dictionary, (nodes, neighbours) = _codes(table.column("node"), table.column("neighbour"))
        kinds = table.column("kind").to_numpy()
        assignment = (neighbours < nodes) & (True if self.stars_are_final else kinds == STRUCTURE)
        losers, roots = _distinct_pairs(nodes[assignment], neighbours[assignment])
        if not len(losers):
            return LOSER_SCHEMA.empty_table()
        if len(np.unique(losers)) != len(losers):
            raise AssertionError("a document was assigned to two survivors: the components did not converge")
        strongest = np.full(len(dictionary), len(KINDS), dtype=np.int8)
        shared = kinds != STRUCTURE
        np.minimum.at(strongest, nodes[shared], kinds[shared])
        if (strongest[losers] == len(KINDS)).any():
            raise AssertionError("a duplicate without a shared key")
        loser_nodes = dictionary.take(pa.array(losers))
        return pa.table({
            "unit": pa.array(node_units(loser_nodes), pa.int32()),
            "id": node_ids(loser_nodes),
            "kind": pa.array(strongest[losers]),
            "duplicate_of": node_ids(dictionary.take(pa.array(roots))),
        }, schema=LOSER_SCHEMA)


class WriteUnitLosers(GroupFunction):
    """map_groups function by unit: writes `<folder>/<unit name>.parquet` (id, kind, duplicate_of), sorted."""

    def __init__(self, folder: str, unit_names: list[str], metadata: dict[bytes, bytes]):
        self.folder, self.unit_names, self.metadata = folder, unit_names, metadata

    def __call__(self, table: pa.Table) -> pa.Table:
        unit = table.column("unit")[0].as_py()
        kinds = pa.array(np.array(KINDS, dtype=object)[table.column("kind").to_numpy()], pa.string())
        rows = pa.table({"id": table.column("id"), "kind": kinds, "duplicate_of": table.column("duplicate_of")},
                        schema=UNIT_LOSERS_SCHEMA).sort_by("id")
        write_table(Path(self.folder) / f"{self.unit_names[unit]}.parquet", rows, metadata=self.metadata)
        return pa.table({"unit": [unit], "losers": [rows.num_rows]}, schema=SUMMARY_SCHEMA)


def count_true(paths: list[str], column: str = "changed") -> int:
    return sum(pc.sum(pq.read_table(path, columns=[column]).column(column)).as_py() or 0 for path in paths)


def count_rows(paths: list[str]) -> int:
    return sum(pq.ParquetFile(path).metadata.num_rows for path in paths)


def group_by_partition(executor, paths: list[str], function, output: Path, partitions: int) -> list[str]:
    """map_groups on the `partition` column, one reduce task per partition value."""
    return executor.map_groups(paths, "partition", function, str(output), num_partitions=partitions)


def connected_components(executor, edges: list[str], folder: Path, partitions: int, log=None):
    """Alternate large-star and small-star until neither changes anything; returns (final edges, rounds)."""
    current = edges
    for round_number in range(1, MAX_ROUNDS + 1):
        large = group_by_partition(executor, current, LargeStar(partitions), folder / f"large-{round_number}",
                                   partitions)
        small = group_by_partition(executor, large, SmallStar(partitions), folder / f"small-{round_number}",
                                   partitions)
        changes = count_true(large) + count_true(small)
        if log is not None:
            log(round_number, count_rows(small), changes)
        if changes == 0:
            return small, round_number
        current = small
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")
