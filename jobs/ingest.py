"""Read news articles from a folder of text files, JSONL, CSV or Parquet into validated records.

The input is a local path or a URI (``s3://``, ``gs://``, ``hdfs://``, ``file://``) read through the pyarrow
filesystem it names; sources and rejects name a file by its local path or by its URI.

A bad record never stops the run and is never dropped silently: it becomes a ``Reject`` saying what is
wrong and what to do. Only input that cannot be read at all (a missing path, no input files, a required
column that is not there) raises ``InputError``, before anything is written.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import functools
import io
import json
import os
import re
import sys
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jobs.config import ColumnsConfig, ConfigError, InputConfig
from jobs.parallel import MapData, in_process

_KINDS = {".txt": "text", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_REQUIRED = ("article_id", "outlet", "text")
_FIELDS = (*_REQUIRED, "title", "url", "published_at")
_MANIFEST_FIELDS = ("article_id", "outlet", "title", "url", "published_at")
_DEFAULT_MANIFEST = InputConfig.model_fields["manifest"].default
# csv with errors="surrogateescape" turns each undecodable byte into one of these.
_SURROGATE = re.compile("[\udc80-\udcff]")


class InputError(ConfigError):
    """The input cannot be read at all (missing path, no input files, a required column missing).

    The run stops before writing anything.
    """


@dataclass(frozen=True)
class Article:
    article_id: str
    outlet: str
    text: str
    title: str | None
    url: str | None
    published_at: dt.datetime | None  # timezone-aware UTC; naive input times are taken as UTC
    # "seeds/000_x.txt", "data.jsonl:3" (line), "data.csv:5" (row, header is 1), "data.parquet:1",
    # "s3://bucket/data.jsonl:3" (a file read through a URI)
    source: str


@dataclass(frozen=True)
class Reject:
    source: str  # the file's path, or its URI
    record: str  # "line 3", "row 5" or "" for a whole file, plus " (article_id=X)" when the id is known
    reason: str  # what is wrong and what to do


@dataclass(frozen=True)
class IngestResult:
    articles: list[Article]
    rejects: list[Reject]
    files: int  # input files read, the manifest not counted


@dataclass(frozen=True)
class _Record:
    """One record before validation, with where to point a reject."""

    file: str
    locator: str
    source: str
    values: dict[str, Any]  # field name (not column name) -> raw value; absent when the column is
    meta: tuple[str, str] | None = None  # (manifest, "row N") a text file's other fields came from


@dataclass(frozen=True)
class _Location:
    """A file or folder of the input: a local path, or a path in a pyarrow filesystem named by a URI.

    It pickles (pyarrow filesystems do), so the readers it is handed to can run in other processes.
    """

    path: str  # the local path, or the path inside ``filesystem``
    # None: the local disk, through pathlib and Python's io so that local paths are read and named as they
    # always were (pyarrow's LocalFileSystem would refuse a relative path such as "news:2025/a.txt" as a URI).
    filesystem: pafs.FileSystem | None = None
    uri: str | None = None  # what sources and rejects call a location read through a URI

    def __str__(self) -> str:
        return self.path if self.uri is None else self.uri

    @property
    def _pure(self) -> PurePath:
        return Path(self.path) if self.filesystem is None else PurePosixPath(self.path)

    @property
    def suffix(self) -> str:
        return self._pure.suffix

    @property
    def parent(self) -> _Location:
        uri = None if self.uri is None else self.uri.removesuffix("/").rpartition("/")[0]
        return _Location(str(self._pure.parent), self.filesystem, uri)

    @property
    def key(self) -> tuple[str, str]:
        """What tells two locations apart: the filesystem and the path, symlinks resolved on the local disk."""
        if self.filesystem is None:
            return "local", str(Path(self.path).resolve())
        return self.filesystem.type_name, self.path

    def joinpath(self, relative: str) -> _Location:
        """The location ``relative`` (a POSIX path) names under this folder."""
        uri = None if self.uri is None else f"{self.uri.removesuffix('/')}/{relative}"
        return _Location(str(self._pure / relative), self.filesystem, uri)

    def relative_to(self, folder: _Location) -> str:
        """This location's path under ``folder``, as a POSIX path (what a manifest's ``file`` column holds)."""
        return self._pure.relative_to(folder._pure).as_posix()

    def file_type(self) -> pafs.FileType:
        """File, Directory, NotFound, or Unknown (something else that exists)."""
        if self.filesystem is not None:
            try:
                return self.filesystem.get_file_info(self.path).type
            except OSError as exc:
                raise _cannot_open(self, exc) from None
        path = Path(self.path)
        if path.is_file():
            return pafs.FileType.File
        if path.is_dir():
            return pafs.FileType.Directory
        return pafs.FileType.Unknown if path.exists() else pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self.file_type() == pafs.FileType.File

    def open(self) -> io.BufferedReader:
        """The file's bytes, read front to back: object stores serve that without a request per seek."""
        if self.filesystem is None:
            return open(self.path, "rb")
        # compression=None: a file's bytes are what it holds, as on the local disk (pyarrow would gunzip .gz).
        return io.BufferedReader(self.filesystem.open_input_stream(self.path, compression=None))

    def parquet(self) -> pq.ParquetFile:
        return pq.ParquetFile(self.path, filesystem=self.filesystem)


def _locate(path: Path | str) -> _Location:
    """Where ``path`` is; a string is a URI (InputConfig keeps only URIs as strings)."""
    if isinstance(path, Path):
        return _Location(str(path))
    try:
        filesystem, inner = pafs.FileSystem.from_uri(path)
    except (pa.ArrowException, OSError) as exc:
        raise _cannot_open(path, exc) from None
    # The query (region=..., endpoint_override=...) configures the filesystem; names of files leave it out.
    return _Location(inner, filesystem, path.partition("?")[0])


def _cannot_open(uri: _Location | str, exc: Exception) -> InputError:
    # pyarrow's message can run to pages (HDFS lists every libjvm it looked for): its first line says enough.
    reason = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
    return InputError(
        f"cannot open {uri}: {reason}: check the URI (s3://, gs://, hdfs://, file:// or a local path) "
        "and credentials"
    )


class _FieldError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def read_articles(config: InputConfig, map_data: MapData = in_process) -> IngestResult:
    """Read all input articles (files in sorted order, records in file order), rejecting invalid ones.

    ``map_data(fn, files)`` runs the reading of the files (an executor's data-parallel map; by default in
    this process); checking ids across files happens here, in file order, whatever ran the reading.
    """
    root = _locate(config.path)
    root_type = root.file_type()
    folder = root if root_type == pafs.FileType.Directory else root.parent
    manifest = _manifest_path(folder, config.manifest)
    kind, files = _input_files(config, root, root_type, manifest)
    if kind == "text":
        # Reading a single file, the rows for other files are none of its business: they go unchecked.
        check_all = root_type == pafs.FileType.Directory
        manifest_rejects, rows = _manifest_rows(config, folder, manifest, files, check_all)
        read = functools.partial(_read_text_files, config=config, folder=folder, manifest=manifest, rows=rows)
    else:
        manifest_rejects, read = [], functools.partial(_read_files, kind=kind, columns=config.columns)
    records = [*manifest_rejects, *map_data(read, files)]
    articles: list[Article] = []
    rejects: list[Reject] = []
    first_seen: dict[str, str] = {}
    for item in records:
        result = _build(item, config.columns, first_seen) if isinstance(item, _Record) else item
        if isinstance(result, Article):
            articles.append(result)
        else:
            rejects.append(result)
    return IngestResult(articles=articles, rejects=rejects, files=len(files))


def _input_files(
    config: InputConfig, path: _Location, path_type: pafs.FileType, manifest: _Location
) -> tuple[str, list[_Location]]:
    """The format to read and the files to read with it, sorted; the manifest is not one of them."""
    if path_type == pafs.FileType.NotFound:
        raise InputError(f"input path {path} does not exist: set input.path or pass --input")
    if path_type == pafs.FileType.File:
        kind = _KINDS.get(path.suffix.lower()) if config.format == "auto" else config.format
        if kind is None:
            raise InputError(
                f"cannot tell the format of {path} from its extension: name it .txt, .jsonl, .ndjson, .csv "
                "or .parquet, or set input.format"
            )
        return kind, [path]
    manifest_key = manifest.key
    by_kind: dict[str, list[_Location]] = {}
    for file in _walk(path):
        kind = _KINDS.get(file.suffix.lower())
        if kind is not None and not (kind == "csv" and file.key == manifest_key):
            by_kind.setdefault(kind, []).append(file)
    if config.format != "auto":
        if config.format not in by_kind:
            extensions = " or ".join(ext for ext, name in _KINDS.items() if name == config.format)
            raise InputError(
                f"no {extensions} files in {path} (input.format is {config.format}): "
                "point input.path at them or set input.format to auto"
            )
        return config.format, by_kind[config.format]
    if not by_kind:
        raise InputError(
            f"no input files in {path}: expected .txt files (with an optional manifest.csv), .jsonl, .csv "
            "or .parquet"
        )
    if len(by_kind) > 1:
        found = ", ".join(f"{len(paths)} {name}" for name, paths in sorted(by_kind.items()))
        raise InputError(
            f"{path} holds more than one kind of data file ({found}): set input.format to the one to read"
        )
    return next(iter(by_kind.items()))


def _walk(root: _Location) -> list[_Location]:
    """All files under root, sorted, skipping hidden and underscore-prefixed files and folders."""
    if root.filesystem is None:
        # os.walk, as ever on the local disk: unlike a FileSelector, it does not descend into symlinked folders.
        files = []
        for folder, subfolders, names in os.walk(root.path):
            subfolders[:] = [name for name in subfolders if not name.startswith((".", "_"))]
            files.extend(Path(folder, name) for name in names if not name.startswith((".", "_")))
        return [_Location(str(file)) for file in sorted(files)]
    try:
        infos = root.filesystem.get_file_info(pafs.FileSelector(root.path, recursive=True))
    except OSError as exc:
        raise _cannot_open(root, exc) from None
    # Sorted as paths (by folder, then name), as the local files are.
    relatives = sorted(PurePosixPath(info.path).relative_to(root.path) for info in infos if info.is_file)
    return [
        root.joinpath(relative.as_posix())
        for relative in relatives
        if not any(part.startswith((".", "_")) for part in relative.parts)
    ]


def _manifest_path(folder: _Location, name: str) -> _Location:
    """Where the manifest is, if it exists: ``name`` in the input folder, never the working directory.

    Only a name holding a path separator (as every absolute path and URI does) is a path of its own.
    """
    if any(sep in name for sep in (os.sep, os.altsep) if sep):
        return _locate(name if InputConfig.is_uri(name) else Path(name))
    return folder.joinpath(name)


def _read_files(paths: list[_Location], kind: str, columns: ColumnsConfig) -> list[_Record | Reject]:
    """The records (and rejects) of JSONL, CSV or Parquet files, in file order."""
    return [item for path in paths for item in _READERS[kind](path, columns)]


ManifestRows = dict[str, tuple[str, dict[str, str] | None]]


def _manifest_rows(
    config: InputConfig, folder: _Location, manifest: _Location, files: list[_Location], check_all: bool
) -> tuple[list[Reject], ManifestRows]:
    """Rejects for bad manifest rows, and {file name: ("row N", row)} for the .txt files being read.

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


def _read_text_files(
    files: list[_Location], config: InputConfig, folder: _Location, manifest: _Location, rows: ManifestRows
) -> list[_Record | Reject]:
    """One article per .txt file; ids, outlets and the rest from the manifest, else from the file's path."""
    return [_read_text_file(file, config, folder, manifest, rows) for file in files]


def _read_text_file(
    file: _Location, config: InputConfig, folder: _Location, manifest: _Location, rows: ManifestRows
) -> _Record | Reject:
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
    return _Record(file=str(file), locator="", source=str(file), values=values, meta=meta)


def _read_manifest(
    manifest: _Location, folder: _Location, names: set[str], check_all: bool
) -> Generator[Reject, None, ManifestRows]:
    """Yield rejects for bad manifest rows; return {file name: ("row N", row)} for the files being read.

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
        locator = f"row {where}"
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


def _read_jsonl(path: _Location, columns: ColumnsConfig) -> list[_Record | Reject]:
    """One JSON object per line; blank lines skipped."""
    items: list[_Record | Reject] = []
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
            if not isinstance(obj, dict):
                kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
                    type(obj), "a number"
                )
                reason = f"the line holds {kind}, not a JSON object: write one JSON object per line"
                items.append(Reject(str(path), locator, reason))
                continue
            keys.update(obj)
            items.append(_Record(str(path), locator, f"{path}:{number}", _pick(obj, columns)))
    if any(isinstance(item, _Record) for item in items):
        _require_columns(path, sorted(keys), columns, "key")
    return items


def _read_csv(path: _Location, columns: ColumnsConfig) -> Iterator[_Record | Reject]:
    """One record per row under a header row."""
    for where, row in _csv_rows(path, lambda header: _require_columns(path, header, columns, "column")):
        if isinstance(where, Reject):
            yield where
        else:
            yield _Record(str(path), f"row {where}", f"{path}:{where}", _pick(row, columns))


def _csv_rows(
    path: _Location, check_header: Callable[[list[str]], None]
) -> Iterator[tuple[int | Reject, dict[str, str]]]:
    """(row number, {column: value}) for each data row, the header being row 1.

    A bad row comes as (reject, its values matched to columns by position as far as they go); an empty file
    as (reject, {}).
    """
    csv.field_size_limit(sys.maxsize)
    # surrogateescape keeps a bad byte from failing the whole file; such rows are rejected below.
    with io.TextIOWrapper(path.open(), encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        if not header:
            yield Reject(str(path), "", "empty file: a CSV needs a header row naming its columns"), {}
            return
        check_header(header)
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            values = dict(zip(header, row, strict=False))
            bad = next((i for i, value in enumerate(row) if _SURROGATE.search(value)), None)
            if bad is not None:
                reason = f"not valid UTF-8 in field {bad + 1}: re-encode the file as UTF-8"
                yield Reject(str(path), f"row {number}", reason), values
            elif len(row) != len(header):
                reason = (
                    f"the row has {len(row)} fields but the header has {len(header)}: quote fields that "
                    "contain commas, quotes or line breaks"
                )
                yield Reject(str(path), f"row {number}", reason), values
            else:
                yield number, values


def _read_parquet(path: _Location, columns: ColumnsConfig) -> Iterator[_Record | Reject]:
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
                yield _Record(str(path), f"row {number}", f"{path}:{number}", _pick(row, columns))


def _python_rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    # Without pandas, to_pylist cannot turn nanosecond timestamps into datetimes; microseconds suffice here.
    arrays = [
        array.cast(pa.timestamp("us", array.type.tz), safe=False)
        if pa.types.is_timestamp(array.type) and array.type.unit == "ns"
        else array
        for array in batch.columns
    ]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names).to_pylist()


_READERS: dict[str, Callable[[_Location, ColumnsConfig], Iterable[_Record | Reject]]] = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "parquet": _read_parquet,
}


def _require_columns(path: _Location, present: Sequence[str], columns: ColumnsConfig, what: str) -> None:
    for field in _REQUIRED:
        name = getattr(columns, field)
        if name not in present:
            raise InputError(
                f"{path}: {what} {name!r} (input.columns.{field}) not found; {what}s are {list(present)}: "
                f"set input.columns.{field} to the right name"
            )


def _pick(row: dict[str, Any], columns: ColumnsConfig) -> dict[str, Any]:
    """The row's values by field name, for the fields whose column is present."""
    return {field: row[getattr(columns, field)] for field in _FIELDS if getattr(columns, field) in row}


def _build(record: _Record, columns: ColumnsConfig, first_seen: dict[str, str]) -> Article | Reject:
    """Validate one record into an Article, or say why it is rejected."""
    values = record.values
    article_id = None
    try:
        article_id = _article_id(values.get("article_id"), columns.article_id)
        article = Article(
            article_id=article_id,
            outlet=_required_str(values.get("outlet"), "outlet", columns.outlet),
            text=_text(values.get("text"), columns.text),
            title=_optional_str(values.get("title"), "title", columns.title),
            url=_optional_str(values.get("url"), "url", columns.url),
            published_at=_published_at(values.get("published_at")),
            source=record.source,
        )
    except _FieldError as exc:
        file, locator = record.file, record.locator
        if record.meta is not None and exc.field != "text":
            file, locator = record.meta
        return Reject(file, _with_id(locator, article_id), exc.reason)
    first = first_seen.setdefault(article_id, record.source)
    if first != record.source:
        reason = f"duplicate article_id {article_id!r} (first seen at {first}): make ids unique"
        return Reject(record.file, _with_id(record.locator, article_id), reason)
    return article


def _with_id(locator: str, article_id: str | None) -> str:
    return f"{locator} (article_id={article_id})".lstrip() if article_id else locator


def _article_id(value: Any, column: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    elif isinstance(value, float) and value.is_integer():
        value = str(int(value))
    return _required_str(value, "article_id", column)


def _required_str(value: Any, field: str, column: str) -> str:
    if value is None:
        raise _FieldError(field, f"missing {field} (column {column!r}): every record needs one")
    stripped = _optional_str(value, field, column)
    if stripped is None:
        raise _FieldError(field, f"empty {field}: every record needs one")
    return stripped


def _optional_str(value: Any, field: str, column: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _FieldError(
            field, f"{field} (column {column!r}) is not a string but {type(value).__name__}: store it as text"
        )
    return value.strip() or None


def _text(value: Any, column: str) -> str:
    """The article text, checked but not stripped: paragraph splitting needs its layout."""
    _required_str(value, "text", column)
    return value


def _published_at(value: Any) -> dt.datetime | None:
    """A timezone-aware UTC datetime; naive times and dates are taken as UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = dt.datetime.fromisoformat(value.strip())
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise _FieldError(
        "published_at", f"published_at {value!r} is not a date: use ISO 8601, e.g. 2025-11-21T13:00:00Z"
    )
