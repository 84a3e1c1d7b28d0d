"""Reading input files into records: a text folder's .txt files (with the manifest's fields), JSONL, CSV
and Parquet. A record or file that cannot be read (unparseable, nested too deeply, a symlink that loops,
dangles or leaves the input folder, a file that vanished or cannot be read) becomes a reject naming the file
and its line; a required column that is missing, or a manifest that cannot be read, raises InputError."""

from __future__ import annotations

import csv
import errno
import functools
import io
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa

from jobs.config import ColumnsConfig, InputConfig
from jobs.locations import Location, locate
from jobs.records import UNPAIRED, InputError, Record, Reject

_REQUIRED = ("article_id", "outlet", "text")
_FIELDS = (*_REQUIRED, "title", "url", "published_at")
_MANIFEST_FIELDS = ("article_id", "outlet", "title", "url", "published_at")
_DEFAULT_MANIFEST = InputConfig.model_fields["manifest"].default
# csv with errors="surrogateescape" turns each undecodable byte into one of these.
_SURROGATE = re.compile("[\udc80-\udcff]")


def manifest_path(folder: Location, name: str) -> Location:
    """Where the manifest is, if it exists: ``name`` in the input folder, never the working directory.

    Only a name holding a path separator (as every absolute path and URI does) is a path of its own.
    """
    if any(sep in name for sep in (os.sep, os.altsep) if sep):
        return locate(name if InputConfig.is_uri(name) else Path(name))
    return folder.joinpath(name)


def read_files(
    paths: list[Location], kind: str, columns: ColumnsConfig, folder: Location | None
) -> list[Record | Reject]:
    """The records (and rejects) of JSONL, CSV or Parquet files, in file order.

    ``folder``: the input folder the files were found in (symlinks must stay inside it); None for a file given
    as the input itself.
    """
    return [
        item for path in paths for item in _guarded(path, folder, lambda p: list(_READERS[kind](p, columns)))
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

    for where, row in _csv_rows(manifest, check_header):
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


def _read_jsonl(path: Location, columns: ColumnsConfig) -> list[Record | Reject]:
    """One JSON object per line; blank lines skipped."""
    items: list[Record | Reject] = []
    keys: set[str] = set()
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            locator = f"line {number}"
            try:
                obj = json.loads(line.decode("utf-8-sig"))
            except UnicodeDecodeError as exc:
                reason = f"not valid UTF-8 at byte {exc.start} of the line: re-encode the file as UTF-8"
                items.append(Reject(str(path), locator, reason))
                continue
            except json.JSONDecodeError as exc:
                reason = f"not valid JSON ({exc.msg} at column {exc.colno}): write one JSON object per line"
                items.append(Reject(str(path), locator, reason))
                continue
            except RecursionError:
                reason = (
                    "JSON nested too deeply to read (arrays or objects about 1,000 levels deep): flatten it"
                )
                items.append(Reject(str(path), locator, reason))
                continue
            except ValueError as exc:  # e.g. an integer of more than 4,300 digits
                items.append(Reject(str(path), locator, f"not readable JSON ({exc}): fix the line"))
                continue
            if not isinstance(obj, dict):
                kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
                    type(obj), "a number"
                )
                reason = f"the line holds {kind}, not a JSON object: write one JSON object per line"
                items.append(Reject(str(path), locator, reason))
                continue
            keys.update(obj)
            items.append(Record(str(path), locator, f"{path}:{number}", _pick(obj, columns)))
    if any(isinstance(item, Record) for item in items):
        _require_columns(path, sorted(keys), columns, "key")
    return items


def _read_csv(path: Location, columns: ColumnsConfig) -> Iterator[Record | Reject]:
    """One record per row under a header row, named by the line of the file it starts on."""
    for where, row in _csv_rows(path, lambda header: _require_columns(path, header, columns, "column")):
        if isinstance(where, Reject):
            yield where
        else:
            yield Record(str(path), f"line {where}", f"{path}:{where}", _pick(row, columns))


def _csv_rows(
    path: Location, check_header: Callable[[list[str]], None]
) -> Iterator[tuple[int | Reject, dict[str, str]]]:
    """(line, {column: value}) for each data row, ``line`` being the line of the file the row starts on (the
    header is on line 1; a quoted field may span lines).

    A bad row comes as (reject, its values matched to columns by position as far as they go); an empty file
    as (reject, {}). A quote that never closes would swallow the rows after it: a row that runs into the next
    lines and then ends the file, or has the wrong number of fields, is rejected alone, and reading starts
    again on the line after its first.
    """
    csv.field_size_limit(sys.maxsize)
    # surrogateescape keeps a bad byte from failing the whole file; such rows are rejected below.
    with io.TextIOWrapper(path.open(), encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        lines = _Lines(list(handle))
    reader = csv.reader(lines)
    header = [name.strip() for name in next(reader, [])]
    if not header:
        yield Reject(str(path), "", "empty file: a CSV needs a header row naming its columns"), {}
        return
    check_header(header)
    while True:
        start = lines.position
        lines.ran_out = False
        try:
            row = next(reader, None)
        except csv.Error as exc:
            reason = f"not readable as CSV ({exc}): fix the line"
            yield Reject(str(path), f"line {start + 1}", reason), {}
            lines.position = start + 1
            continue
        if row is None:
            return
        number = start + 1
        if not row:
            continue
        values = dict(zip(header, row, strict=False))
        bad = next((i for i, value in enumerate(row) if _SURROGATE.search(value)), None)
        if lines.ran_out or (lines.position - start > 1 and len(row) != len(header)):
            reason = (
                "a quote opened on this line does not close where it should and runs on into the lines after "
                'it: close it, and double every quote inside a quoted field ("")'
            )
            yield Reject(str(path), f"line {number}", reason), values
            lines.position = start + 1  # the lines it swallowed are read again as rows of their own
        elif bad is not None:
            reason = f"not valid UTF-8 in field {bad + 1}: re-encode the file as UTF-8"
            yield Reject(str(path), f"line {number}", reason), values
        elif len(row) != len(header):
            reason = (
                f"the row has {len(row)} fields but the header has {len(header)}: quote fields that "
                "contain commas, quotes or line breaks"
            )
            yield Reject(str(path), f"line {number}", reason), values
        else:
            yield number, values


class _Lines:
    """A CSV file's lines, handed to csv.reader one at a time from ``position``, which can be moved back; it
    notes when the reader asked for a line past the end (the file ended inside a quoted field)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.position = 0
        self.ran_out = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.position >= len(self.lines):
            self.ran_out = True
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def _read_parquet(path: Location, columns: ColumnsConfig) -> Iterator[Record | Reject]:
    """One record per row; typed values (ints, timestamps, dates) are kept as Python values."""
    try:
        parquet = path.parquet()
    except (pa.ArrowException, OSError) as exc:
        yield Reject(str(path), "", f"not a readable Parquet file ({exc}): rewrite it with a Parquet writer")
        return
    with parquet:
        names = parquet.schema_arrow.names
        _require_columns(path, names, columns, "column")
        wanted = [
            name for name in dict.fromkeys(getattr(columns, field) for field in _FIELDS) if name in names
        ]
        number = 0
        for batch in parquet.iter_batches(columns=wanted):
            for row in _python_rows(batch):
                number += 1
                yield Record(str(path), f"row {number}", f"{path}:{number}", _pick(row, columns))


def _python_rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    # Without pandas, to_pylist cannot turn nanosecond timestamps into datetimes; microseconds suffice here.
    arrays = [
        array.cast(pa.timestamp("us", array.type.tz), safe=False)
        if pa.types.is_timestamp(array.type) and array.type.unit == "ns"
        else array
        for array in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names).to_pylist()


_READERS: dict[str, Callable[[Location, ColumnsConfig], Iterable[Record | Reject]]] = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "parquet": _read_parquet,
}


def _require_columns(path: Location, present: Sequence[str], columns: ColumnsConfig, what: str) -> None:
    """Raise InputError naming every required column ``path`` lacks, at once."""
    missing = [field for field in _REQUIRED if getattr(columns, field) not in present]
    if missing:
        names = ", ".join(f"{getattr(columns, f)!r} (input.columns.{f})" for f in missing)
        keys = " and ".join(f"input.columns.{f}" for f in missing)
        raise InputError(
            f"{path}: {what}{'s' if len(missing) > 1 else ''} {names} not found; {what}s are {list(present)}: "
            f"set {keys} to the right name{'s' if len(missing) > 1 else ''}"
        )


def _pick(row: dict[str, Any], columns: ColumnsConfig) -> dict[str, Any]:
    """The row's values by field name, for the fields whose column is present."""
    return {field: row[getattr(columns, field)] for field in _FIELDS if getattr(columns, field) in row}
