"""map_groups as split and reduce tasks (runner/groups.py): the same groups as the local executor's reference."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from omnicorpus.runner import groups
from omnicorpus.runner.local import LocalExecutor

SCHEMA = pa.schema([("partition", pa.int32()), ("name", pa.string()), ("value", pa.int64())])


def summarise(table: pa.Table) -> pa.Table:
    """A group function: one row per group (its key, row count, value sum); groups of one row give nothing."""
    if table.num_rows < 2:
        return pa.table({"name": pa.array([], pa.string()), "rows": pa.array([], pa.int64()),
                         "total": pa.array([], pa.int64())})
    return pa.table({"name": [table.column("name")[0].as_py()], "rows": [table.num_rows],
                     "total": [pc.sum(table.column("value")).as_py()]})


def by_partition(table: pa.Table) -> pa.Table:
    return pa.table({"partition": [table.column("partition")[0].as_py()], "rows": [table.num_rows],
                     "names": [sorted(str(name) for name in table.column("name").to_pylist())]})


def write_inputs(folder, rows_per_file=(7, 0, 40, 13)):
    paths, counter = [], 0
    for index, rows in enumerate(rows_per_file):
        names = [None if (counter + row) % 11 == 0 else f"n{(counter + row) % 9}" for row in range(rows)]
        table = pa.table({"partition": [(counter + row) % 5 for row in range(rows)], "name": names,
                          "value": list(range(counter, counter + rows))}, schema=SCHEMA)
        counter += rows
        path = folder / f"in-{index}.parquet"
        pq.write_table(table, path)
        paths.append(str(path))
    return paths


def rows_of(paths, sort_key):
    if not paths:
        return []
    return sorted(pa.concat_tables([pq.read_table(path) for path in paths]).to_pylist(), key=sort_key)


def split_and_reduce(paths, key, function, folder, buckets, columns=None):
    """The two rounds as the Ray executor runs them, as plain calls."""
    split_paths = [str(folder / "_exchange" / f"split-{index}.parquet") for index in range(len(paths))]
    splits = [groups.split_file(path, key, buckets, columns, split) for path, split in zip(paths, split_paths)]
    plan = groups.plan_reduces(splits, split_paths)
    outputs = [groups.reduce_bucket(parts, key, function, groups.output_name(str(folder), bucket))
               for bucket, parts in plan.items()]
    return [path for path in outputs if path]


@pytest.mark.parametrize("buckets", [1, 3, 8])
def test_split_and_reduce_give_the_reference_groups(tmp_path, buckets):
    paths = write_inputs(tmp_path)
    reference = LocalExecutor().map_groups(paths, "name", summarise, str(tmp_path / "local"))
    split = split_and_reduce(paths, "name", summarise, tmp_path / "split", buckets)
    key = lambda row: (row["name"] is None, row["name"] or "")  # noqa: E731
    assert rows_of(split, key) == rows_of(reference, key)
    assert any(row["name"] is None for row in rows_of(split, key))  # null keys form one group, as locally
    by_partition_reference = LocalExecutor().map_groups(paths, "partition", by_partition, str(tmp_path / "lp"))
    by_partition_split = split_and_reduce(paths, "partition", by_partition, tmp_path / "sp", buckets,
                                          columns=["partition", "name"])
    key = lambda row: row["partition"]  # noqa: E731
    assert rows_of(by_partition_split, key) == rows_of(by_partition_reference, key)
    assert len(rows_of(by_partition_split, key)) == 5


def test_a_partition_column_gives_one_reduce_per_partition(tmp_path):
    paths = write_inputs(tmp_path)
    split_paths = [str(tmp_path / f"split-{index}.parquet") for index in range(len(paths))]
    splits = [groups.split_file(path, "partition", 5, None, split) for path, split in zip(paths, split_paths)]
    plan = groups.plan_reduces(splits, split_paths)
    assert list(plan) == [0, 1, 2, 3, 4]
    for bucket, parts in plan.items():
        rows = pa.concat_tables([pq.ParquetFile(path).read_row_groups(row_groups) for path, row_groups in parts])
        assert set(rows.column("partition").to_pylist()) == {bucket}


def test_a_large_bucket_is_split_over_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(groups, "ROW_GROUP_ROWS", 4)
    paths = write_inputs(tmp_path, rows_per_file=(30,))
    row_groups = groups.split_file(paths[0], "partition", 2, None, str(tmp_path / "split.parquet"))
    assert row_groups == {0: [0, 1, 2, 3, 4], 1: [5, 6, 7]}  # 18 and 12 rows
    assert pq.read_metadata(tmp_path / "split.parquet").num_row_groups == 8
    split = split_and_reduce(paths, "partition", by_partition, tmp_path / "out", 2)
    assert sorted(row["rows"] for row in rows_of(split, lambda row: row["partition"])) == [6, 6, 6, 6, 6]


def test_a_key_that_cannot_be_bucketed_is_refused_with_its_type(tmp_path):
    path = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"score": [0.5, 1.5]}), path)
    with pytest.raises(TypeError, match="cannot bucket a key of type double"):
        groups.split_file(str(path), "score", 2, None, str(tmp_path / "split.parquet"))


def test_buckets_are_stable_and_in_range():
    names = pa.array(["a", "b", None, "a", "é"])
    assert groups.buckets_of(names, 7).tolist() == groups.buckets_of(names, 7).tolist()
    assert groups.buckets_of(names, 7)[0] == groups.buckets_of(names, 7)[3]
    assert groups.buckets_of(pa.array([-3, 4, None], pa.int64()), 3).tolist() == [0, 1, 0]
    assert groups.buckets_of(pa.array([2**64 - 1], pa.uint64()), 10).tolist() == [5]
    assert groups.buckets_of(pa.array([None, None], pa.string()), 4).tolist() == [0, 0]


@pytest.mark.ray
def test_the_ray_executor_groups_as_the_local_one(tmp_path):
    from omnicorpus.runner.ray import RayExecutor

    paths = write_inputs(tmp_path)
    executor = RayExecutor(workers=2, object_store_mb=100)
    try:
        distributed = executor.map_groups(paths, "name", summarise, str(tmp_path / "ray"), num_partitions=3)
        by_partition_ray = executor.map_groups(paths, "partition", by_partition, str(tmp_path / "ray-p"))
    finally:
        executor.close()
    key = lambda row: (row["name"] is None, row["name"] or "")  # noqa: E731
    assert rows_of(distributed, key) == rows_of(LocalExecutor().map_groups(paths, "name", summarise,
                                                                           str(tmp_path / "local")), key)
    key = lambda row: row["partition"]  # noqa: E731
    assert rows_of(by_partition_ray, key) == rows_of(LocalExecutor().map_groups(paths, "partition", by_partition,
                                                                                str(tmp_path / "lp")), key)
    assert not (tmp_path / "ray" / "_exchange").exists()
