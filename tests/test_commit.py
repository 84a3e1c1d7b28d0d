"""The commit protocol on real files: staging, the runs file last, replace_date, the output lock, and the
repair of what killed runs leave (the kills themselves, in subprocesses, are in test_faults.py)."""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from jobs import cli, commit, tables
from jobs.config import OutputConfig

DAY = dt.date(2025, 11, 22)
TIMEOUT = OutputConfig().lock_timeout


def rejects(run_id: str) -> pa.Table:
    return tables.to_table(
        "rejects", {"run_id": [run_id], "source": ["a.csv"], "record": ["line 2"], "reason": ["x"]}
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


def stage(root: Path, run_id: str, day: dt.date = DAY) -> commit.StagedRun:
    staged = commit.StagedRun(root, run_id, day, lock_timeout=TIMEOUT)
    staged.write_table("rejects", rejects(run_id))
    staged.write_table("runs", runs_stub(run_id))
    return staged


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def only(run_id: str) -> list[str]:
    """The files of a folder holding the stub run ``run_id`` alone, once nothing is staged or pending."""
    return [
        "_lock",
        f"rejects/run_date=2025-11-22/{run_id}.parquet",
        f"runs/run_date=2025-11-22/{run_id}.parquet",
    ]


def test_commit_puts_files_in_hive_partitions_and_readers_see_run_date(tmp_path: Path) -> None:
    files = stage(tmp_path, "r1").commit()
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "rejects/run_date=2025-11-22/r1.parquet",
        "runs/run_date=2025-11-22/r1.parquet",  # the runs file is moved last: it marks the run committed
    ]
    assert not (tmp_path / commit.STAGING).exists()
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
    real_replace = os.replace

    def fail_on_runs(src: Path, dst: Path) -> None:
        if "runs" in Path(dst).parts:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_runs)
    with pytest.raises(OSError, match="disk full"):
        staged.commit()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_replace_date_keeps_only_the_new_run_of_that_day(tmp_path: Path) -> None:
    first = stage(tmp_path, "r1")
    first.stage_path(Path(tables.INDEX) / "run_date=2025-11-22" / "r1.faiss").write_bytes(b"index")
    first.commit()
    other_day = commit.StagedRun(tmp_path, "r0", DAY.replace(day=21), lock_timeout=TIMEOUT)
    other_day.write_table("rejects", rejects("r0"))
    other_day.write_table("runs", runs_stub("r0"))
    other_day.commit()
    stage(tmp_path, "r2").commit(replace_date=True)  # r2 saves no index: r1's must still go
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")) == [
        "rejects/run_date=2025-11-21/r0.parquet",
        "rejects/run_date=2025-11-22/r2.parquet",
        "runs/run_date=2025-11-21/r0.parquet",
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
    real_unlink = os.unlink

    def record(path: Path, *args: object, **kwargs: object) -> None:
        parts = Path(path).relative_to(tmp_path).parts if Path(path).is_absolute() else ("_",)
        if not parts[0].startswith("_"):  # the journal and the staging lock are not tables
            removed.append(parts[0])
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", record)
    staged = stage(tmp_path, "r2")
    staged.commit(replace_date=True)
    assert removed == ["runs", "rejects"]  # a reader never sees r1's runs row without its tables


def test_commit_needs_the_runs_table(tmp_path: Path) -> None:
    staged = commit.StagedRun(tmp_path, "r1", DAY, lock_timeout=TIMEOUT)
    staged.write_table("rejects", rejects("r1"))
    with pytest.raises(ValueError, match="runs table"):
        staged.commit()
    assert files(tmp_path) == []


def killed_commit(root: Path, run_id: str, moved: int, *, replace: list[str] = ()) -> None:
    """What a run killed during its commit leaves: its journal, and its first ``moved`` files in place."""
    staged = stage(root, run_id)
    moves = sorted(staged._files, key=lambda p: p.parts[0] == "runs")
    journal = commit._write_journal(root, run_id, moves, list(replace))
    for relative in moves[:moved]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged.staging / relative, root / relative)
    os.close(staged._lock_fd)  # the process dies: the kernel releases its staging lock
    staged._lock_fd = None
    assert journal.exists()


def test_repair_rolls_back_a_commit_killed_before_its_runs_file(tmp_path: Path) -> None:
    stage(tmp_path, "r1").commit()
    killed_commit(tmp_path, "r2", moved=1)
    assert "rejects/run_date=2025-11-22/r2.parquet" in files(tmp_path)

    done = commit.repair(tmp_path, lock_timeout=TIMEOUT, holder="test")

    assert done.rolled_back == {"r2": 1} and done.staging_removed == ["r2"]
    assert files(tmp_path) == only("r1")


def test_repair_finishes_a_replace_date_commit_killed_after_its_runs_file(tmp_path: Path) -> None:
    stage(tmp_path, "r1").commit()
    old = ["runs/run_date=2025-11-22/r1.parquet", "rejects/run_date=2025-11-22/r1.parquet"]
    killed_commit(tmp_path, "r2", moved=2, replace=old)
    os.unlink(tmp_path / old[0])  # killed after deleting r1's runs file

    done = commit.repair(tmp_path, lock_timeout=TIMEOUT, holder="test")

    assert done.rolled_forward == {"r2": 1} and not done.rolled_back
    assert files(tmp_path) == only("r2")


def test_repair_removes_files_of_runs_that_never_committed(tmp_path: Path) -> None:
    stage(tmp_path, "r1").commit()
    # What a kill left before this protocol: a run's tables without its runs file, and a dead staging folder.
    for name in ("rejects", "paragraphs"):
        (tmp_path / name / "run_date=2025-11-21").mkdir(parents=True)
        (tmp_path / name / "run_date=2025-11-21" / "r0.parquet").write_bytes(b"x")
    (tmp_path / tables.INDEX / "run_date=2025-11-21").mkdir(parents=True)
    (tmp_path / tables.INDEX / "run_date=2025-11-21" / "r0.ids.parquet").write_bytes(b"x")
    (tmp_path / commit.STAGING / "r0" / "runs").mkdir(parents=True)

    done = commit.repair(tmp_path, lock_timeout=TIMEOUT, holder="test")

    assert sorted(done.orphans_removed) == [
        "_index/run_date=2025-11-21/r0.ids.parquet",
        "paragraphs/run_date=2025-11-21/r0.parquet",
        "rejects/run_date=2025-11-21/r0.parquet",
    ]
    assert done.staging_removed == ["r0"]
    assert files(tmp_path) == only("r1")
    assert not commit.repair(tmp_path, lock_timeout=TIMEOUT, holder="test")  # nothing left to do


def test_repair_leaves_the_staging_of_a_live_run_alone(tmp_path: Path) -> None:
    live = stage(tmp_path, "r1")  # its lock is held by this process, as a running job holds its own

    done = commit.repair(tmp_path, lock_timeout=TIMEOUT, holder="test")

    assert done.staging_in_use == ["r1"] and not done
    live.commit()
    assert commit.inspect(tmp_path).runs_per_day == {"2025-11-22": 1}


def test_inspect_reports_a_committed_run_missing_a_table(tmp_path: Path) -> None:
    stage(tmp_path, "r1").commit()
    (tmp_path / "rejects" / "run_date=2025-11-22" / "r1.parquet").unlink()
    (problem,) = commit.inspect(tmp_path).problems
    assert problem.startswith("run r1 (2025-11-22) lacks its articles, paragraphs") and "rerun" in problem


HOLD = """
import sys, time
from pathlib import Path
from jobs import commit
with commit.output_lock(Path(sys.argv[1]), timeout=5, holder="run r9 (committing)"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock(root: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(root), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def test_a_commit_waits_for_the_lock_and_times_out_naming_its_holder(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path, 30)
    try:
        staged = stage(tmp_path, "r1")
        staged.lock_timeout = 0.5
        with pytest.raises(
            commit.OutputError, match=r"locked by run r9 \(committing\), pid \d+ .*0\.5 s"
        ) as caught:
            staged.commit()
        assert "output.lock_timeout" in str(caught.value)
        assert commit.committed_runs(tmp_path) == {} and not (tmp_path / commit.STAGING).exists()
    finally:
        holder.kill()
        holder.wait()
    stage(tmp_path, "r2").commit()  # the kernel released the killed holder's lock
    assert commit.committed_runs(tmp_path) == {"r2": "run_date=2025-11-22"}


def test_a_commit_goes_ahead_once_the_holder_is_done(tmp_path: Path) -> None:
    holder = hold_lock(tmp_path, 0.5)
    started = time.monotonic()
    stage(tmp_path, "r1").commit()
    assert time.monotonic() - started > 0.3  # it waited for the holder
    assert holder.wait() == 0
    assert commit.committed_runs(tmp_path) == {"r1": "run_date=2025-11-22"}
    assert list((tmp_path / commit.JOURNAL).iterdir()) == []
    assert (tmp_path / commit.LOCK).read_text() == ""  # released: it names no holder


def test_the_repair_command_reports_what_it_did_and_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    whole = commit.StagedRun(tmp_path, "r1", DAY, lock_timeout=TIMEOUT)
    for name, schema in tables.SCHEMAS.items():
        whole.write_table(name, runs_stub("r1") if name == "runs" else schema.empty_table())
    whole.commit()
    killed_commit(tmp_path, "r2", moved=1)

    assert cli.main(["repair", "--output", str(tmp_path)]) == 0

    assert capsys.readouterr().out.splitlines() == [
        "repaired: rolled back the incomplete commit of run r2 (1 files removed)",
        "repaired: removed the staging folder of dead run r2",
        f"{tmp_path}: 1 committed run(s) over 1 day(s) (2025-11-22: 1)",
        "every committed run is complete",
    ]
    (tmp_path / "pairs" / "run_date=2025-11-22" / "r1.parquet").unlink()
    assert cli.main(["repair", "--output", str(tmp_path)]) == cli.EXIT_FAILED
    assert capsys.readouterr().out.splitlines()[-1] == (
        "problem: run r1 (2025-11-22) lacks its pairs file(s): rerun that day"
    )
    assert cli.main(["repair", "--output", str(tmp_path / "nowhere")]) == cli.EXIT_USAGE
    holder = hold_lock(tmp_path, 30)
    try:
        code = cli.main(["repair", "--output", str(tmp_path), "--set", "output.lock_timeout=0.2"])
    finally:
        holder.kill()
        holder.wait()
    assert code == cli.EXIT_FAILED
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith(
        f"newsdedup: failed: output folder {tmp_path} is locked by run r9 (committing), pid"
    )
