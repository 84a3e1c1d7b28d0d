"""Committing a run's files into the output folder all at once, one run at a time, and repairing what a
killed run left behind.

Layout (jobs/tables.py): ``<output>/<table>/run_date=YYYY-MM-DD/<run_id>.parquet``, plus the run's FAISS index
under ``_index/``. A run is committed once its ``runs`` file is in place; every reader that goes through the
``runs`` table (the README's queries) sees a run completely or not at all.

The protocol, for a run that may be killed (SIGKILL, OOM, a node drain) at any instant:

1. The run writes every file to ``_staging/<run_id>/`` (each fsync'd) while it holds an exclusive ``flock``
   on ``_staging/<run_id>.lock``: the kernel drops that lock when the process dies, so a staging folder whose
   lock can be taken belongs to a dead run.
2. It takes the exclusive lock on ``<output>/_lock`` (waiting at most ``output.lock_timeout`` seconds, and
   naming the run that holds it): commits and repairs of one output folder never overlap.
3. It writes the journal ``_journal/<run_id>.json`` (fsync'd, then renamed into place): every file it will
   move, ``runs`` last, and with ``replace_date`` every file of the day's earlier runs it will delete.
4. It moves its files into place with atomic renames, the ``runs`` file last: the commit point.
5. With ``replace_date`` it then deletes the replaced runs' files, their ``runs`` files first.
6. It removes the journal, releases the lock, and removes its staging folder.

Recovery (:func:`repair`, at the start of every run and by ``newsdedup repair``), under the same lock: a
journal whose ``runs`` file is not in place is rolled back (its moved files removed), one whose ``runs`` file
is in place is rolled forward (its deletes finished); staging folders of dead runs are removed; and files
of runs that have no ``runs`` file and no journal (left by a version without this protocol) are removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.tables import HISTORY, INDEX, REPORT, SCHEMAS, partition_path

log = logging.getLogger(__name__)

STAGING = "_staging"
JOURNAL = "_journal"
LOCK = "_lock"
# What a run may leave in a partition folder: its tables, its index (<run_id>.faiss, .ids.parquet), its
# history store (<run_id>.parquet, .links.parquet) and its report (<run_id>.html, written after the commit):
# a replaced run's go with it, an uncommitted run's are orphans.
FOLDERS = (*SCHEMAS, INDEX, HISTORY, REPORT)


class OutputError(OSError):
    """The output folder cannot be written, locked or repaired; the message names the path and what to do."""


def _full(exc: BaseException) -> bool:
    # faiss reports a failed write as RuntimeError, with the system's words at the end: "(No space left on device)".
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(exc)


def advice(exc: BaseException) -> str:
    """What to do about a failed write, by its errno."""
    code = getattr(exc, "errno", None)
    if code == errno.EDQUOT:
        return "the disk quota is used up: free space, or set output.path to a folder with room"
    if _full(exc):
        return "the disk is full: free space (or files) on it, or set output.path to a folder on another disk"
    if code == errno.EROFS:
        return "the file system is read-only: remount it read-write, or set output.path elsewhere"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied: fix the folder's permissions (or attributes), or run as its owner"
    if code == errno.EIO:
        return "an I/O error: check the disk (dmesg), then run `newsdedup repair`"
    return "check the disk and the folder's permissions"


def _room(path: Path) -> str:
    """What is left on the disk holding ``path``: space, and inodes when they are what ran out."""
    folder = next((p for p in (path, *path.parents) if p.exists()), None)
    with contextlib.suppress(OSError, TypeError):
        stat = os.statvfs(folder)
        inodes = ", no inodes" if stat.f_files and not stat.f_favail else ""
        return f"; {stat.f_bavail * stat.f_frsize / 2**20:.1f} MiB{inodes} free there"
    return ""


def output_error(exc: BaseException, doing: str, path: Path, outcome: str) -> OutputError:
    """An OutputError saying what failed on which path, why, what to do, and what became of the output."""
    code = getattr(exc, "errno", None)
    # The system's words: pyarrow's ("Error writing bytes to file. Detail: [errno 28] ...") say less.
    reason = os.strerror(code) if isinstance(code, int) else str(exc)
    if isinstance(exc, RuntimeError) and (words := re.search(r"\(([^()]+)\)\s*$", reason)):
        # faiss: "Error in ... write error in <path>: 65491 != 1536000 (No space left on device)"
        reason = words.group(1)
    room = _room(path) if _full(exc) else ""
    error = OutputError(f"cannot {doing} {path}: {reason}{room}: {advice(exc)}; {outcome}")
    error.errno = code
    return error


@contextlib.contextmanager
def output_lock(root: Path, *, timeout: float, holder: str) -> Iterator[None]:
    """Hold the exclusive lock on the output folder ``root``; ``holder`` says who holds it (for others' messages).

    ``flock`` belongs to an open file description, so a process must not take this lock while it holds it.
    """
    path = root / LOCK
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise output_error(exc, "lock", path, "nothing was changed") from exc
    try:
        _acquire(fd, path, timeout)
        since = f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
        stamp = f"{holder}, pid {os.getpid()} on {socket.gethostname()}, since {since}"
        with contextlib.suppress(OSError):  # who holds the lock is for messages only
            os.ftruncate(fd, 0)
            os.pwrite(fd, stamp.encode() + b"\n", 0)
        yield
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:  # e.g. ENOLCK: a file system without locks
            raise output_error(exc, "lock", path, "nothing was changed") from exc
        other = _holder(path)
        if time.monotonic() >= deadline:
            raise OutputError(
                f"output folder {path.parent} is locked by {other}; gave up after {timeout:g} s "
                "(output.lock_timeout): wait for that run to finish, or raise output.lock_timeout; "
                "nothing of this run was committed"
            )
        if pause == 0.01:
            log.info("waiting for the lock on %s, held by %s", path.parent, other)
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError):
        text = path.read_text(errors="replace").strip()
        if text:
            return text
    return "another process"


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to the disk (a rename is durable once its folder is)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folders(root: Path, paths: list[Path]) -> None:
    """fsync the folders holding ``paths`` (``root/<table>/<partition>/<file>``), up to ``root``: a
    partition or table folder may be new."""
    for folder in sorted({p for path in paths for p in (path.parent, path.parent.parent)} | {root}):
        _fsync(folder)


def run_id_of(path: Path) -> str:
    """The run a table or index file belongs to: its name up to the first dot (run ids hold none)."""
    return path.name.partition(".")[0]


class StagedRun:
    """Files of one run staged under ``<root>/_staging/<run_id>`` until :meth:`commit` moves them into place.

    While it lives, the run holds the lock on ``_staging/<run_id>.lock``, which tells :func:`repair` that its
    staging folder is in use.
    """

    def __init__(self, root: Path, run_id: str, run_date: dt.date, *, lock_timeout: float) -> None:
        self.root = root
        self.run_id = run_id
        self.run_date = run_date
        self.lock_timeout = lock_timeout
        self.staging = root / STAGING / run_id
        self._lock_path = root / STAGING / f"{run_id}.lock"
        self._files: list[Path] = []  # final paths relative to root
        self._lock_fd: int | None = None
        try:
            self.staging.parent.mkdir(parents=True, exist_ok=True)
            self._lock_fd = _hold(self._lock_path)
            self.staging.mkdir()
        except OSError as exc:
            self.abort()
            raise output_error(exc, "create", self.staging, "nothing was written") from exc

    def stage_path(self, relative: Path) -> Path:
        """A staging path for a file that :meth:`commit` will move to ``root / relative``."""
        self._files.append(relative)
        path = self.staging / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise output_error(exc, "create", path.parent, "nothing of this run was committed") from exc
        return path

    def write_file(self, relative: Path, write: Callable[[Path], None]) -> None:
        """Stage ``root / relative`` by ``write(staging path)``; a failure names the path and what to do."""
        path = self.stage_path(relative)
        try:
            write(path)
            _fsync(path)
        except (OSError, RuntimeError) as exc:  # faiss reports a failed write as RuntimeError
            raise output_error(
                exc, "write", path, "nothing of this run was committed and earlier output is untouched"
            ) from exc

    def write_table(self, name: str, table: pa.Table) -> None:
        if not table.schema.equals(SCHEMAS[name]):
            raise ValueError(f"table {name} does not match its declared schema")
        relative = partition_path(Path(), name, self.run_date, self.run_id)
        self.write_file(relative, lambda path: pq.write_table(table, path, compression="zstd"))

    def commit(self, *, replace_date: bool = False) -> list[Path]:
        """Move the staged files into place, ``runs`` last; with ``replace_date`` then delete the day's
        earlier runs. Returns the files in place.

        On an error before the ``runs`` file is in place, the files already moved are removed again; a kill
        is rolled back (or forward) by the next :func:`repair`.
        """
        moves = sorted(self._files, key=lambda p: p.parts[0] == "runs")
        try:
            if not moves or moves[-1].parts[0] != "runs":
                raise ValueError("a run commits with its runs table")
            with output_lock(self.root, timeout=self.lock_timeout, holder=f"run {self.run_id} (committing)"):
                removes = self._replaced() if replace_date else []
                journal = _write_journal(self.root, self.run_id, moves, removes)
                self._move(moves, journal)
                _delete(self.root, removes, journal)
        finally:
            self.abort()
        log.info(
            "committed run %s: %d files under %s%s",
            self.run_id,
            len(moves),
            self.root,
            f", replacing {len({run_id_of(Path(p)) for p in removes})} earlier run(s)" if removes else "",
        )
        return [self.root / p for p in moves]

    def abort(self) -> None:
        """Remove the staging folder and release the run's lock (the staging of a committed run is empty)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                self._lock_path.unlink()
            os.close(self._lock_fd)
            self._lock_fd = None
        with contextlib.suppress(OSError):  # not empty: another run is staging
            self._lock_path.parent.rmdir()

    def _replaced(self) -> list[str]:
        """Files of the day's other runs, ``runs`` files first: a reader never sees a runs row without its tables."""
        partition = f"run_date={self.run_date.isoformat()}"
        found = []
        for table in FOLDERS:
            folder = self.root / table / partition
            for path in sorted(folder.iterdir()) if folder.is_dir() else ():
                if not path.name.startswith((".", "_")) and run_id_of(path) != self.run_id:
                    found.append(path.relative_to(self.root).as_posix())
        return found

    def _move(self, moves: list[Path], journal: Path) -> None:
        moved: list[Path] = []
        target = self.root
        try:
            for relative in moves:
                if relative == moves[-1]:  # the files before the runs file are on the disk before it is
                    _fsync_folders(self.root, moved)
                target = self.root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self.staging / relative, target)
                moved.append(target)
            _fsync_folders(self.root, moved[-1:])
        except BaseException as exc:
            try:
                _roll_back(self.root, [p.as_posix() for p in moves], journal)
            except OSError:
                log.exception(
                    "rollback of run %s failed: the next run or `newsdedup repair` will", self.run_id
                )
            if isinstance(exc, OSError):
                raise output_error(
                    exc,
                    "move into place",
                    target,
                    "the run was not committed and earlier output is untouched",
                ) from exc
            raise


def _hold(path: Path) -> int:
    """Open and lock ``path``, making sure it is still the file at that path (repair may have just removed it)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                return fd
        os.close(fd)


def _write_journal(root: Path, run_id: str, moves: list[Path], removes: list[str]) -> Path:
    folder = root / JOURNAL
    path = folder / f"{run_id}.json"
    partial = folder / f"{run_id}.json.tmp"
    entry = {"run_id": run_id, "moves": [p.as_posix() for p in moves], "removes": removes}
    try:
        folder.mkdir(exist_ok=True)
        with partial.open("w", encoding="utf-8") as handle:
            json.dump(entry, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
        _fsync(folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise output_error(
            exc, "write", path, "the run was not committed and earlier output is untouched"
        ) from exc
    return path


def _roll_back(root: Path, moves: list[str], journal: Path) -> int:
    """Remove what a commit moved into place (its ``runs`` file first), then its journal."""
    removed = 0
    for relative in reversed(moves):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(root / relative)
            removed += 1
    os.unlink(journal)
    return removed


def _delete(root: Path, removes: list[str], journal: Path) -> None:
    """Finish a committed run: delete the files it replaced, in order, then its journal."""
    try:
        for relative in removes:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(root / relative)
        _fsync_folders(root, [root / p for p in removes])
        os.unlink(journal)
    except OSError as exc:
        # The run is committed; what is left to delete is in its journal for the next repair.
        log.warning("run committed, but %s: the next run or `newsdedup repair` finishes it", exc)


@dataclass
class Repair:
    """What :func:`repair` did."""

    rolled_back: dict[str, int] = field(default_factory=dict)  # run id -> files removed
    rolled_forward: dict[str, int] = field(default_factory=dict)  # run id -> replaced files deleted
    staging_removed: list[str] = field(default_factory=list)  # run ids
    orphans_removed: list[str] = field(default_factory=list)  # paths relative to the output folder
    staging_in_use: list[str] = field(default_factory=list)  # run ids of live runs, left alone

    def __bool__(self) -> bool:
        return bool(self.rolled_back or self.rolled_forward or self.staging_removed or self.orphans_removed)

    def lines(self) -> list[str]:
        """One line per thing repaired."""
        return [
            *(
                f"rolled back the incomplete commit of run {r} ({n} files removed)"
                for r, n in self.rolled_back.items()
            ),
            *(
                f"finished the commit of run {r} ({n} replaced files deleted)"
                for r, n in self.rolled_forward.items()
            ),
            *(f"removed the staging folder of dead run {r}" for r in self.staging_removed),
            *(f"removed {p}: its run never committed" for p in self.orphans_removed),
        ]


def repair(root: Path, *, lock_timeout: float, holder: str) -> Repair:
    """Under the output lock, settle what killed runs left in ``root`` (see the module docstring)."""
    with output_lock(root, timeout=lock_timeout, holder=holder):
        try:
            done = _repair(root)
        except OSError as exc:
            raise output_error(
                exc, "repair", Path(exc.filename or root), "run `newsdedup repair` again once it is fixed"
            ) from exc
    for line in done.lines():
        log.warning("repaired %s: %s", root, line)
    return done


def _repair(root: Path) -> Repair:
    done = Repair()
    journals = root / JOURNAL
    for path in sorted(journals.glob("*.json.tmp")):  # killed before its first move: nothing to undo
        path.unlink()
    for path in sorted(journals.glob("*.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            moves, removes = entry["moves"], entry["removes"]
        except (ValueError, KeyError) as exc:  # written whole and renamed into place: only a damaged disk
            raise OutputError(
                f"journal {path} is unreadable ({exc}): check the disk; the files it lists are named after "
                "its run id (the file name), so remove them and the journal by hand"
            ) from None
        run_id = path.name.removesuffix(".json")
        if (root / moves[-1]).exists():
            done.rolled_forward[run_id] = sum((root / p).exists() for p in removes)
            _delete(root, removes, path)
        else:
            done.rolled_back[run_id] = _roll_back(root, moves, path)
    _remove_dead_staging(root, done)
    committed = committed_runs(root)
    for path in _run_files(root):
        if run_id_of(path) not in committed:
            path.unlink()
            done.orphans_removed.append(path.relative_to(root).as_posix())
    return done


def _remove_dead_staging(root: Path, done: Repair) -> None:
    """Remove the staging folders whose run is dead: no lock file, or one nobody holds."""
    staging = root / STAGING
    if not staging.is_dir():
        return
    for run_id in sorted({name.removesuffix(".lock") for name in os.listdir(staging)}):
        lock = staging / f"{run_id}.lock"
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            fd = None  # a live run makes its lock file before its folder: this run is dead
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    done.staging_in_use.append(run_id)
                    continue
            shutil.rmtree(staging / run_id, ignore_errors=True)
            if fd is not None:
                lock.unlink(missing_ok=True)
            done.staging_removed.append(run_id)
        finally:
            if fd is not None:
                os.close(fd)
    with contextlib.suppress(OSError):
        staging.rmdir()


def committed_runs(root: Path) -> dict[str, str]:
    """Run id -> run_date partition of every committed run (one whose ``runs`` file is in place)."""
    return {run_id_of(path): path.parent.name for path in _run_files(root, ("runs",))}


def _run_files(root: Path, folders: tuple[str, ...] = FOLDERS) -> list[Path]:
    """Every table and index file under ``root``: ``<folder>/run_date=*/<run_id>...``."""
    return sorted(
        path
        for folder in folders
        for path in (root / folder).glob("run_date=*/*")
        if not path.name.startswith((".", "_")) and path.is_file()
    )


@dataclass
class State:
    """What an output folder holds: committed runs per day, and what is wrong with them."""

    runs_per_day: dict[str, int]
    problems: list[str]


def inspect(root: Path) -> State:
    """The committed runs of ``root`` per day, and each committed run that lacks one of its tables."""
    committed = committed_runs(root)
    per_day: dict[str, int] = {}
    problems = []
    for run_id, partition in sorted(committed.items()):
        day = partition.removeprefix("run_date=")
        per_day[day] = per_day.get(day, 0) + 1
        missing = [name for name in SCHEMAS if not (root / name / partition / f"{run_id}.parquet").is_file()]
        if missing:
            problems.append(f"run {run_id} ({day}) lacks its {', '.join(missing)} file(s): rerun that day")
    problems += [f"{p} is pending: run `newsdedup repair`" for p in sorted((root / JOURNAL).glob("*.json"))]
    return State(dict(sorted(per_day.items())), problems)
