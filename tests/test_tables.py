import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from jobs import tables

DAY = dt.date(2025, 11, 22)


def rejects(run_id: str) -> pa.Table:
    return tables.to_table(
        "rejects", {"run_id": [run_id], "source": ["a.csv"], "record": ["row 2"], "reason": ["x"]}
    )


def runs_stub(run_id: str) -> pa.Table:
    """A runs table whose every column is null-free and typed as declared."""
    values = {}
    for field in tables.RUNS:
        if pa.types.is_string(field.type):
            values[field.name] = [run_id]
        elif pa.types.is_timestamp(field.type):
            values[field.name] = [dt.datetime(2025, 11, 22, tzinfo=dt.UTC)]
        elif pa.types.is_struct(field.type):
            values[field.name] = [{f.name: "1" for f in field.type}]
        else:
            values[field.name] = [1]
    return tables.to_table("runs", values)


def stage(root: Path, run_id: str) -> tables.StagedRun:
    staged = tables.StagedRun(root, run_id, DAY)
    staged.write_table("rejects", rejects(run_id))
    staged.write_table("runs", runs_stub(run_id))
    return staged


def test_to_table_rejects_wrong_columns() -> None:
    with pytest.raises(ValueError, match="do not match the schema"):
        tables.to_table("rejects", {"run_id": ["r"], "source": ["a"]})


def test_commit_puts_files_in_hive_partitions_and_readers_see_run_date(tmp_path: Path) -> None:
    files = stage(tmp_path, "r1").commit()
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "rejects/run_date=2025-11-22/r1.parquet",
        "runs/run_date=2025-11-22/r1.parquet",  # the runs file is moved last: it marks the run committed
    ]
    assert not (tmp_path / tables.STAGING).exists()
    partitioning = ds.partitioning(pa.schema([tables.PARTITION]), flavor="hive")
    read = ds.dataset(tmp_path / "rejects", partitioning=partitioning).to_table()
    assert read.schema.equals(tables.dataset_schema("rejects").remove_metadata(), check_metadata=False)
    assert read.column("run_date").to_pylist() == [DAY]


def test_failed_commit_leaves_earlier_output_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage(tmp_path, "r1").commit()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    staged = stage(tmp_path, "r2")
    real_replace = tables.os.replace

    def fail_on_runs(src: Path, dst: Path) -> None:
        if "runs" in Path(dst).parts:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(tables.os, "replace", fail_on_runs)
    with pytest.raises(OSError, match="disk full"):
        staged.commit()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_replace_date_keeps_only_the_new_run_of_that_day(tmp_path: Path) -> None:
    first = stage(tmp_path, "r1")
    first.stage_path(Path(tables.INDEX) / "run_date=2025-11-22" / "r1.faiss").write_bytes(b"index")
    first.commit()
    other_day = tables.StagedRun(tmp_path, "r0", DAY.replace(day=21))
    other_day.write_table("rejects", rejects("r0"))
    other_day.commit()
    stage(tmp_path, "r2").commit(replace_date=True)  # r2 saves no index: r1's must still go
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")) == [
        "rejects/run_date=2025-11-21/r0.parquet",
        "rejects/run_date=2025-11-22/r2.parquet",
        "runs/run_date=2025-11-22/r2.parquet",
    ]


def test_abort_removes_staging(tmp_path: Path) -> None:
    stage(tmp_path, "r1").abort()
    assert list(tmp_path.iterdir()) == []


def test_replace_date_removes_the_old_runs_row_before_its_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage(tmp_path, "r1").commit()
    removed: list[str] = []
    real_unlink = Path.unlink

    def record(path: Path, missing_ok: bool = False) -> None:
        removed.append(path.relative_to(tmp_path).parts[0])
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", record)
    stage(tmp_path, "r2").commit(replace_date=True)
    assert removed == ["runs", "rejects"]  # a reader never sees r1's runs row without its tables
