"""Faults for the tests, injected from outside the code under test: a wrapper that runs ``newsdedup`` in a
subprocess with ``os.replace``, ``os.rename``, ``os.unlink`` and ``os.remove`` counted on the output folder
(the steps of a commit or a repair), and SIGKILLs the process before the n-th step, raises ENOSPC there, or
sleeps at every step; and the checks of what a reader may see afterwards."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from jobs import commit, tables

ROOT = Path(__file__).resolve().parents[1]

# python -c WRAPPER OUTPUT ACTION N ARGS...: ACTION is kill (SIGKILL before step N), enospc (OSError ENOSPC at
# step N), sleep (N ms before every step) or count (none); then jobs.cli.main(ARGS). The number of steps
# taken is written to OUTPUT/../steps.
WRAPPER = r"""
import errno, os, signal, sys, time
output, action, n, args = os.path.realpath(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4:]
steps = 0

def where(path, dir_fd):
    path = os.fsdecode(path)
    if dir_fd is not None:
        path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    return os.path.realpath(os.path.abspath(path))

def counted(real):
    def step(path, *rest, **kwargs):
        global steps
        inside = where(path, kwargs.get("dir_fd", kwargs.get("src_dir_fd")))
        if inside.startswith(output + os.sep) and not inside.startswith(os.path.join(output, "_cache")):
            steps += 1
            if action == "kill" and steps == n:
                os.kill(os.getpid(), signal.SIGKILL)
            if action == "enospc" and steps == n:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if action == "sleep":
                time.sleep(n / 1000)
        return real(path, *rest, **kwargs)
    return step

for name in ("replace", "rename", "unlink", "remove"):
    setattr(os, name, counted(getattr(os, name)))
from jobs.cli import main
try:
    code = main(args)
finally:
    with open(os.path.join(os.path.dirname(output), "steps"), "w") as f:
        f.write(str(steps))
sys.exit(code)
"""


def newsdedup(output: Path, action: str, n: int, *args: str) -> subprocess.Popen:
    """Start ``newsdedup ARGS`` in a subprocess with the fault ``action`` at step ``n`` on ``output``."""
    return subprocess.Popen(
        [sys.executable, "-c", WRAPPER, str(output), action, str(n), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def steps_taken(output: Path) -> int:
    return int((output.parent / "steps").read_text())


def table_files(output: Path) -> dict[str, set[tuple[str, str]]]:
    """Table -> its (run_date partition, run id) files, as a glob over ``<table>/*/*.parquet`` lists them."""
    return {
        name: {(p.parent.name, commit.run_id_of(p)) for p in (output / name).glob("*/*.parquet")}
        for name in tables.SCHEMAS
    }


def incomplete_committed_runs(output: Path) -> list[str]:
    """Runs a reader going through the runs table would see without all of their tables (should be none).

    Listing is not a snapshot: a run may be replaced between listing its runs file and its tables, and its
    runs file goes first, so a run counts as incomplete only if its runs file is still there afterwards.
    """
    runs = table_files(output)["runs"]
    files = table_files(output)
    missing = [run for run in sorted(runs) if any(run not in files[name] for name in tables.SCHEMAS)]
    return [f"{day}/{run}" for day, run in missing if (output / "runs" / day / f"{run}.parquet").exists()]


def assert_settled(output: Path) -> set[str]:
    """After a repair: every file belongs to a committed, complete run, and nothing is staged or pending.

    Returns the committed run ids.
    """
    assert incomplete_committed_runs(output) == []
    files = table_files(output)
    committed = {run for _, run in files["runs"]}
    for name, found in files.items():
        assert {run for _, run in found} <= committed, f"{name} holds files of uncommitted runs"
    index = {commit.run_id_of(p) for p in (output / tables.INDEX).glob("*/*")}
    assert index <= committed, "the index holds files of uncommitted runs"
    reports = {commit.run_id_of(p) for p in (output / tables.REPORT).glob("*/*.html")}
    assert reports <= committed, "the report folder holds pages of uncommitted runs"
    assert not (output / commit.STAGING).exists(), list((output / commit.STAGING).iterdir())
    assert list((output / commit.JOURNAL).glob("*")) == []
    return committed


def wait(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    """Its exit code (negative: killed by that signal) and its stderr."""
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err
