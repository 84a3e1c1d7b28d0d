"""The data formats of the input: JSON (an array of records, or one object per file), JSONL, CSV (with or
without a header row) and Parquet, each read into records that name the file and the line (or item, or row)
they come from. A record that cannot be read becomes a reject saying what to do; a required column that is
missing raises InputError naming every one at once."""

from __future__ import annotations

import csv
import functools
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pyarrow as pa

from jobs.config import ColumnsConfig, InputConfig
from jobs.locations import Location
from jobs.records import InputError, Record, Reject

_FIELDS = ("article_id", "outlet", "text", "title", "url", "published_at")
# csv with errors="surrogateescape" turns each undecodable byte into one of these.
_SURROGATE = re.compile("[\udc80-\udcff]")


def _decode(raw: bytes, what: str) -> tuple[Any, str | None]:
    """The JSON value in ``raw`` (one line, or a whole file: ``what``), or None and why it cannot be read."""
    try:
        return json.loads(raw.decode("utf-8-sig")), None
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 at byte {exc.start} of the {what}: re-encode the file as UTF-8"
    except json.JSONDecodeError as exc:
        return (
            None,
            f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno} of the {what}): fix it",
        )
    except RecursionError:
        return None, "JSON nested too deeply to read (arrays or objects about 1,000 levels deep): flatten it"
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        return None, f"not readable JSON ({exc}): fix the {what}"


def _not_an_object(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _records(
    path: Location, config: InputConfig, objects: Iterable[tuple[str, str, Any]], hint: str
) -> list[Record | Reject]:
    """Records of the JSON ``objects`` ((locator, source suffix, value) each); a value that is not an object
    is a reject saying ``hint``; the keys of all objects must hold the required columns."""
    items: list[Record | Reject] = []
    keys: set[str] = set()
    for locator, where, obj in objects:
        if not isinstance(obj, dict):
            items.append(Reject(str(path), locator, f"{_not_an_object(obj)}, not a JSON object: {hint}"))
            continue
        keys.update(obj)
        items.append(Record(str(path), locator, f"{path}{where}", _pick(obj, config.columns)))
    if any(isinstance(item, Record) for item in items):
        _require_columns(path, sorted(keys), config, "key")
    return items


def _read_jsonl(path: Location, config: InputConfig) -> list[Record | Reject]:
    """One JSON object per line; blank lines skipped."""
    rejects: list[Record | Reject] = []
    objects = []
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            obj, problem = _decode(line, "line")
            if problem is not None:
                rejects.append(Reject(str(path), f"line {number}", problem))
            else:
                objects.append((f"line {number}", f":{number}", obj))
    items = _records(path, config, objects, "write one JSON object per line")
    # Back in file order: rejects and records interleaved as their lines are.
    return sorted(
        [*rejects, *items],
        key=lambda item: int((item.locator if isinstance(item, Record) else item.record).split()[1]),
    )


def _read_json(path: Location, config: InputConfig) -> list[Record | Reject]:
    """A JSON file holding an array of records (each named by its item number) or one record."""
    with path.open() as stream:
        value, problem = _decode(stream.read(), "file")
    if problem is not None:
        return [Reject(str(path), "", problem)]
    if isinstance(value, list):
        objects = [(f"item {n}", f":{n}", obj) for n, obj in enumerate(value, start=1)]
        return _records(path, config, objects, "make each item of the array an object")
    return _records(path, config, [("", "", value)], "hold one object, or an array of objects")


def _read_csv(path: Location, config: InputConfig) -> Iterator[Record | Reject]:
    """One record per row, named by the line of the file it starts on; with ``input.header`` false there is no
    header row and the columns are named by position, "1", "2", ..."""
    check = functools.partial(_require_columns, path, config=config, what="column")
    for where, row in csv_rows(path, lambda header: check(header), header=config.header):
        if isinstance(where, Reject):
            yield where
        else:
            yield Record(str(path), f"line {where}", f"{path}:{where}", _pick(row, config.columns))


def csv_rows(
    path: Location, check_header: Callable[[list[str]], None], *, header: bool = True
) -> Iterator[tuple[int | Reject, dict[str, str]]]:
    """(line, {column: value}) for each data row, ``line`` being the line of the file the row starts on (the
    header is on line 1; a quoted field may span lines). Without a ``header`` row the columns are named by
    position, "1", "2", ..., as many as the first row has.

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
    names = [name.strip() for name in next(reader, [])]
    if not names:
        what = "a header row naming its columns" if header else "rows"
        yield Reject(str(path), "", f"empty file: a CSV needs {what}"), {}
        return
    if not header:
        names = [str(i) for i in range(1, len(names) + 1)]
        lines.position = 0  # the first row is data: read it again as a row
    check_header(names)
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
        values = dict(zip(names, row, strict=False))
        bad = next((i for i, value in enumerate(row) if _SURROGATE.search(value)), None)
        if lines.ran_out or (lines.position - start > 1 and len(row) != len(names)):
            reason = (
                "a quote opened on this line does not close where it should and runs on into the lines after "
                'it: close it, and double every quote inside a quoted field ("")'
            )
            yield Reject(str(path), f"line {number}", reason), values
            lines.position = start + 1  # the lines it swallowed are read again as rows of their own
        elif bad is not None:
            reason = f"not valid UTF-8 in field {bad + 1}: re-encode the file as UTF-8"
            yield Reject(str(path), f"line {number}", reason), values
        elif len(row) != len(names):
            reason = (
                f"the row has {len(row)} fields but the {'header' if header else 'first row'} has {len(names)}: quote fields that "
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


def _read_parquet(path: Location, config: InputConfig) -> Iterator[Record | Reject]:
    """One record per row; typed values (ints, timestamps, dates) are kept as Python values."""
    try:
        parquet = path.parquet()
    except (pa.ArrowException, OSError) as exc:
        yield Reject(str(path), "", f"not a readable Parquet file ({exc}): rewrite it with a Parquet writer")
        return
    with parquet:
        names = parquet.schema_arrow.names
        _require_columns(path, names, config, "column")
        columns = config.columns
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


READERS: dict[str, Callable[[Location, InputConfig], Iterable[Record | Reject]]] = {
    "json": _read_json,
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "parquet": _read_parquet,
}


def _require_columns(path: Location, present: Sequence[str], config: InputConfig, what: str) -> None:
    """Raise InputError naming every required column ``path`` lacks, at once. The outlet may be left out when
    it comes from the URL (``input.outlet_from_url``) and the URL column is there."""
    columns = config.columns
    required = ["article_id", "outlet", "text"]
    if config.outlet_from_url and columns.url in present:
        required.remove("outlet")
    missing = [field for field in required if getattr(columns, field) not in present]
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
