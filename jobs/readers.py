"""Reading input files into records: a text folder's .txt files (with the manifest's fields), and the data
files of jobs/formats.py. A file that cannot be read safely or at all (a symlink that loops, dangles or leaves
the input folder, a file that vanished or cannot be read) becomes a reject naming the file; a manifest that
cannot be read raises InputError."""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable, Generator
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from jobs.config import InputConfig
from jobs.formats import READERS, csv_rows
from jobs.locations import Location, locate
from jobs.records import UNPAIRED, InputError, Record, Reject

_MANIFEST_FIELDS = ("article_id", "outlet", "title", "url", "published_at")
_DEFAULT_MANIFEST = InputConfig.model_fields["manifest"].default


def manifest_path(folder: Location, name: str) -> Location:
    """Where the manifest is, if it exists: ``name`` in the input folder, never the working directory.

    Only a name holding a path separator (as every absolute path and URI does) is a path of its own.
    """
    if any(sep in name for sep in (os.sep, os.altsep) if sep):
        return locate(name if InputConfig.is_uri(name) else Path(name))
    return folder.joinpath(name)


def read_files(
    paths: list[Location], kind: str, config: InputConfig, folder: Location | None
) -> list[Record | Reject]:
    """The records (and rejects) of JSON, JSONL, CSV or Parquet files, in file order.

    ``folder``: the input folder the files were found in (symlinks must stay inside it); None for a file given
    as the input itself.
    """
    return [
        item for path in paths for item in _guarded(path, folder, lambda p: list(READERS[kind](p, config)))
    ]


def _guarded(
    path: Location, folder: Location | None, read: Callable[[Location], list[Record | Reject]]
) -> list[Record | Reject]:
    """``read(path)``, or one reject for the whole file when it cannot be read safely or at all."""
    if UNPAIRED.search(str(path)):  # a name with bytes that are not UTF-8: nothing could store it as it is
        shown = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        return [Reject(shown, "", "the file's name is not valid UTF-8: rename the file")]
    problem = _local_problem(path, folder)
    if problem is not None:
        return [Reject(str(path), "", problem)]
    try:
        return read(path)
    except (OSError, pa.ArrowException) as exc:
        if isinstance(exc, FileNotFoundError):
            return [Reject(str(path), "", _VANISHED)]
        if isinstance(exc, pa.ArrowException) and not isinstance(exc, OSError):
            return [
                Reject(
                    str(path), "", f"not a readable Parquet file ({exc}): rewrite it with a Parquet writer"
                )
            ]
        reason = getattr(exc, "strerror", None) or str(exc)
        return [
            Reject(
                str(path), "", f"cannot be read ({reason}): check the file and its permissions, then rerun"
            )
        ]


_VANISHED = "the file disappeared while the input was read: rerun once the input folder is complete"


def _local_problem(path: Location, folder: Location | None) -> str | None:
    """Why a file on the local disk must not be read: a symlink that loops, dangles or leads out of the input
    folder, a file gone since the folder was listed, or not a regular file (a FIFO would block the run)."""
    if path.filesystem is not None:
        return None
    try:
        info = os.stat(path.path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symbolic link that loops: fix or remove the link"
        if exc.errno == errno.ENOENT and os.path.islink(path.path):
            return (
                f"a symbolic link to {os.readlink(path.path)}, which does not exist: fix or remove the link"
            )
        if exc.errno == errno.ENOENT:
            return _VANISHED
        return f"cannot be read ({exc.strerror}): check the file and its permissions, then rerun"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file (a FIFO, socket or device): remove it from the input folder"
    if folder is not None and os.path.islink(path.path):
        target, inside = Path(os.path.realpath(path.path)), Path(os.path.realpath(folder.path))
        if not target.is_relative_to(inside):
            return (
                f"a symbolic link to {target}, outside the input folder {folder}: copy the file into the folder, "
                "or point input.path at the folder that holds it"
            )
    return None


ManifestRows = dict[str, tuple[str, dict[str, str] | None]]


def manifest_rows(
    config: InputConfig, folder: Location, manifest: Location, files: list[Location], check_all: bool
) -> tuple[list[Reject], ManifestRows]:
    """Rejects for bad manifest rows, and {file name: ("line N", row)} for the .txt files being read.

    ``check_all``: also reject rows for files not being read (rows naming no file, or one that is not there).
    """
    if not manifest.is_file():
        if config.manifest not in ("", _DEFAULT_MANIFEST):
            raise InputError(f"manifest {manifest} not found: fix input.manifest")
        return [], {}
    names = {file.relative_to(folder) for file in files}
    check = _read_manifest(manifest, folder, names, check_all)
    rejects: list[Reject] = []
    while True:
        try:
            rejects.append(next(check))
        except StopIteration as done:
            return rejects, done.value
        except OSError as exc:  # the manifest names every article: without it the run cannot go on
            raise InputError(
                f"cannot read the manifest {manifest} ({exc.strerror or exc}): fix it or its permissions"
            ) from None


def read_text_files(
    files: list[Location],
    config: InputConfig,
    folder: Location,
    manifest: Location,
    rows: ManifestRows,
    inside: Location | None,
) -> list[Record | Reject]:
    """One article per .txt file; ids, outlets and the rest from the manifest, else from the file's path.

    ``inside``: the input folder symlinks must stay in; None for a file given as the input itself.
    """
    read = functools.partial(_read_text_file, config=config, folder=folder, manifest=manifest, rows=rows)
    return [item for file in files for item in _guarded(file, inside, lambda f: [read(f)])]


def _read_text_file(
    file: Location, config: InputConfig, folder: Location, manifest: Location, rows: ManifestRows
) -> Record | Reject:
    name = file.relative_to(folder)
    locator, row = rows.get(name, ("", {}))
    if row is None:
        return Reject(str(file), "", f"its manifest row ({manifest} {locator}) was rejected: fix that row")
    try:
        with file.open() as stream:
            text = stream.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Reject(str(file), "", f"not valid UTF-8 at byte {exc.start}: re-encode the file as UTF-8")
    values: dict[str, Any] = {}
    for field in _MANIFEST_FIELDS:
        value = row.get(getattr(config.columns, field), "").strip()
        if value:
            values[field] = value
    path = PurePosixPath(name)
    values.setdefault("article_id", path.with_suffix("").as_posix())
    if not (config.outlet_from_url and values.get("url")):  # else the URL's host names it (build_article)
        values.setdefault("outlet", path.parts[0] if len(path.parts) > 1 else path.stem)
    values["text"] = text
    meta = (str(manifest), locator) if locator else None
    return Record(file=str(file), locator="", source=str(file), values=values, meta=meta)


def _read_manifest(
    manifest: Location, folder: Location, names: set[str], check_all: bool
) -> Generator[Reject, None, ManifestRows]:
    """Yield rejects for bad manifest rows; return {file name: ("line N", row)} for the files being read.

    A file's first row is its row; the row is None when that row was rejected as unreadable.
    """
    rows: ManifestRows = {}

    def check_header(header: list[str]) -> None:
        if "file" not in header:
            raise InputError(
                f"{manifest}: no 'file' column; columns are {header}: the manifest needs a 'file' column "
                f"giving each .txt file's path relative to {folder}"
            )

    for where, row in csv_rows(manifest, check_header):
        name = PurePosixPath(row.get("file", "").strip()).as_posix()
        if isinstance(where, Reject):
            yield where
            # Its file is rejected too, if its file cell can be told; later rows for the file are duplicates.
            if name in names:
                rows.setdefault(name, (where.record, None))
            continue
        locator = f"line {where}"
        if name in names and name not in rows:
            rows[name] = (locator, row)
            continue
        if name in rows:
            reason = f"file {name} is listed again (first in {rows[name][0]}): list it once"
        elif not check_all:
            continue
        elif not row["file"].strip():
            reason = f"no file given: fill in a .txt path relative to {folder}"
        elif folder.joinpath(name).is_file():
            reason = (
                f"file {name} listed in the manifest is not read: only .txt files are, and none under a name "
                "starting with '.' or '_'"
            )
        else:
            reason = (
                f"file {name} listed in the manifest does not exist: fix the path (relative to {folder}) "
                "or remove the row"
            )
        yield Reject(str(manifest), locator, reason)
    return rows
