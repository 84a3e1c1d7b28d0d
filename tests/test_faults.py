"""The job killed at every step of its commit, two runs committing into one folder at once, and a full disk:
each a real ``newsdedup run`` in a subprocess, its faults injected from outside (tests/faults.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest

from embeddings.encoder import Encoder
from jobs import cli, commit
from jobs.pipeline import RunResult
from tests.conftest import DEFAULT_CONFIG, ONE_RUN_QUERIES, SEEDS, rows, run_on
from tests.faults import assert_settled, incomplete_committed_runs, newsdedup, steps_taken, wait

DATE = "2025-11-22"  # run_on's run date


class Setup:
    """A warm embedding cache and ONNX export shared by every run, and a folder with one committed run."""

    def __init__(self, work: Path, export_dir: Path, encoder: Encoder) -> None:
        self.work = work
        self.seeds = work / "seeds"
        shutil.copytree(SEEDS, self.seeds)
        self.settings = [f"embed.cache_path={work / 'cache'}", f"embed.export_path={export_dir}"]
        self.encoder = encoder
        self.base = self.run(work / "base" / "output", "output.mode=replace_date")

    def run(self, output: Path, *overrides: str) -> RunResult:
        """The job in this process, on the seeds."""
        return run_on(self.seeds, output, self.encoder, *self.settings, *overrides)

    def args(self, output: Path, *overrides: str) -> list[str]:
        """``newsdedup run`` on the seeds into ``output``."""
        sets = [arg for setting in [*self.settings, *overrides] for arg in ("--set", setting)]
        return [
            "run",
            *("--config", str(DEFAULT_CONFIG), "--input", str(self.seeds), "--output", str(output)),
            *("--run-date", DATE, "--set", "embed.progress=false", *sets),
        ]

    def copy_of_base(self, name: str) -> Path:
        """A folder holding the base run, named output (the README's queries read output/...)."""
        output = self.work / name / "output"
        shutil.copytree(self.base.output, output)
        return output


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, export_dir: Path, encoder: Encoder) -> Setup:
    return Setup(tmp_path_factory.mktemp("faults"), export_dir, encoder)


def readme_queries_answer(output: Path) -> None:
    cwd = Path.cwd()
    os.chdir(output.parent)
    try:
        for query in ONE_RUN_QUERIES:
            assert duckdb.connect().sql(query).fetchall(), query
    finally:
        os.chdir(cwd)


def test_a_kill_at_any_step_of_the_commit_leaves_only_complete_runs(setup: Setup) -> None:
    # Count the steps (file moves, journal writes, deletes) of a replace_date run over an earlier run.
    counted = setup.copy_of_base("count")
    code, err = wait(newsdedup(counted, "count", 0, *setup.args(counted, "output.mode=replace_date")))
    assert code == 0, err
    steps = steps_taken(counted)
    # The journal, 11 files moved (7 tables, the index and its ids, the history store and its links), the 12
    # replaced deleted (its report too), the journal removed, the staging lock removed; then, the run
    # committed, its report put in place.
    assert steps == 27

    def killed_at(n: int) -> tuple[int, Path, int, str]:
        output = setup.copy_of_base(f"kill{n}")
        return (
            n,
            output,
            *wait(newsdedup(output, "kill", n, *setup.args(output, "output.mode=replace_date"))),
        )

    with ThreadPoolExecutor(2) as pool:
        trials = list(pool.map(killed_at, range(1, steps + 1)))
    clusters = rows(setup.base.output, "clusters")
    for n, output, code, err in trials:
        assert code == -9, (n, err)
        # Killed inside the commit (after its journal was written, before it was removed), it left work to repair.
        assert len(list((output / commit.JOURNAL).glob("*.json"))) == (2 <= n <= steps - 2), n
        # Readers who go through the runs table (the README's queries) see complete runs only.
        assert incomplete_committed_runs(output) == [], n
        readme_queries_answer(output)
        # The next run repairs, and replaces the day's run with the same clusters; nothing else is left.
        again = setup.run(output, "output.mode=replace_date")
        assert assert_settled(output) == {again.run_id}, n
        assert rows(output, "clusters") == clusters, n


def test_concurrent_runs_lose_nothing(setup: Setup) -> None:
    """Two runs at once, each commit slowed to seconds so that one waits for the other's lock, while a
    reader keeps checking that every run it sees through the runs table is complete."""
    for mode, survivors in (("replace_date", 1), ("append", 3)):
        output = setup.copy_of_base(f"concurrent-{mode}")
        runs = [newsdedup(output, "sleep", 200, *setup.args(output, f"output.mode={mode}")) for _ in range(2)]
        seen_incomplete = []
        while any(run.poll() is None for run in runs):
            seen_incomplete += incomplete_committed_runs(output)
            time.sleep(0.01)
        results = [wait(run) for run in runs]
        assert [code for code, _ in results] == [0, 0], results
        assert any("waiting for the lock" in err for _, err in results), "the commits did not overlap"
        assert seen_incomplete == []
        committed = assert_settled(output)
        assert len(committed) == survivors, mode
        if mode == "append":
            assert setup.base.run_id in committed
        readme_queries_answer(output)


@pytest.mark.parametrize("step", [1, 2, 9], ids=["journal", "first move", "runs move"])
def test_a_full_disk_during_the_commit_names_the_path_and_what_to_do(setup: Setup, step: int) -> None:
    output = setup.copy_of_base(f"enospc{step}")
    before = {p: p.read_bytes() for p in output.rglob("*.parquet")}
    code, err = wait(newsdedup(output, "enospc", step, *setup.args(output)))
    message = err.strip().splitlines()[-1]
    assert code == cli.EXIT_FAILED
    assert message.startswith("newsdedup: failed: cannot ") and str(output) in message, message
    assert "No space left on device" in message and "the disk is full: free space" in message
    assert "earlier output is untouched" in message
    assert {p: p.read_bytes() for p in output.rglob("*.parquet")} == before
    assert_settled(output)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of 200 inodes: a disk to really fill (needs root and mount rights; skipped without them)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    options = "size=4m,nr_inodes=200"
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def fill(disk: Path, what: str) -> list[Path]:
    """Use up the disk's space (but 40 KiB: not enough for a run's files) or its inodes; returns the fillers."""
    if what == "space":
        filler = disk / "filler"
        stat = os.statvfs(disk)
        filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 40 * 1024))
        return [filler]
    fillers = []
    with contextlib.suppress(OSError):
        while True:
            fillers.append(disk / f"filler{len(fillers)}")
            fillers[-1].touch()
    return fillers[:-1]


@pytest.mark.parametrize(
    ("what", "said"), [("space", "MiB free there"), ("inodes", "MiB, no inodes free there")]
)
def test_a_really_full_disk_fails_the_run_with_the_path_and_keeps_earlier_output(
    setup: Setup, small_disk: Path, capsys: pytest.CaptureFixture, what: str, said: str
) -> None:
    output = small_disk / "output"
    assert cli.main(setup.args(output)) == 0
    before = {p: p.read_bytes() for p in output.rglob("*") if p.is_file() and commit.LOCK not in p.parts}
    fillers = fill(small_disk, what)
    capsys.readouterr()

    assert cli.main(setup.args(output)) == cli.EXIT_FAILED

    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith(
        f"newsdedup: failed: cannot write {output / commit.STAGING}"
    ) or message.startswith(f"newsdedup: failed: cannot create {output / commit.STAGING}"), message
    assert "No space left on device; " in message and f"{said}: the disk is full" in message, message
    after = {p: p.read_bytes() for p in output.rglob("*") if p.is_file() and commit.LOCK not in p.parts}
    assert after == before
    for filler in fillers:
        filler.unlink()
    assert cli.main(setup.args(output)) == 0  # with room again, the next run goes through
    assert len(assert_settled(output)) == 2


def test_a_repair_killed_at_any_step_is_finished_by_the_next(setup: Setup) -> None:
    # A replace_date commit killed among its deletes leaves a journal to roll forward and a dead staging folder.
    damaged = setup.copy_of_base("damaged")
    code, _ = wait(newsdedup(damaged, "kill", 15, *setup.args(damaged, "output.mode=replace_date")))
    assert code == -9 and list((damaged / commit.JOURNAL).glob("*.json"))
    counted = setup.work / "repair-count" / "output"
    shutil.copytree(damaged, counted)
    assert wait(newsdedup(counted, "count", 0, "repair", "--output", str(counted)))[0] == 0
    steps = steps_taken(counted)
    # The 12 deletes (the 2 done already are tried again), the journal, the dead run's staging lock.
    assert steps == 14
    expected = assert_settled(counted)
    assert len(expected) == 1 and setup.base.run_id not in expected  # the killed run had committed
    for n in range(1, steps + 1):
        output = setup.work / f"repair-kill{n}" / "output"
        shutil.copytree(damaged, output)
        assert wait(newsdedup(output, "kill", n, "repair", "--output", str(output)))[0] == -9
        assert incomplete_committed_runs(output) == [], n
        code, err = wait(newsdedup(output, "count", 0, "repair", "--output", str(output)))
        assert code == 0, err
        assert assert_settled(output) == expected, n


def test_an_embedding_cache_on_a_full_disk_is_named_with_what_to_do(
    setup: Setup, small_disk: Path, capsys: pytest.CaptureFixture
) -> None:
    output = small_disk / "output"
    output.mkdir()
    fill(small_disk, "space")
    capsys.readouterr()

    # The cache in its default place, <output>/_cache, where nothing is cached yet: SQLite finds the disk full.
    assert cli.main([*setup.args(output), "--set", "embed.cache_path=null"]) == cli.EXIT_FAILED

    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == (
        f"newsdedup: failed: cannot use the embedding cache in {output / '_cache' / 'embeddings'}: database or "
        "disk is full: free space on its disk, set embed.cache_path to a folder on another disk, or set "
        "embed.cache: false; nothing was committed"
    )
    assert commit.committed_runs(output) == {}
