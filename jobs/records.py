"""What reading the input yields: validated articles, rejects that say what is wrong and what to do, and
the error that stops a run before it writes anything."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jobs.config import ConfigError, InputConfig

# A lone UTF-16 surrogate: a JSON escape such as "\ud800", or a byte Python could not decode. No UTF-8 text
# (and so no Parquet string) can hold one.
UNPAIRED = re.compile("[\ud800-\udfff]")


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
    # "seeds/000_x.txt", "data.jsonl:3" (line), "data.csv:5" (the line the row starts on), "data.parquet:1" (row),
    # "s3://bucket/data.jsonl:3" (a file read through a URI)
    source: str


@dataclass(frozen=True)
class Reject:
    source: str  # the file's path, or its URI
    # "line 3" (JSONL, CSV), "row 5" (Parquet) or "" for a whole file, plus " (article_id=X)" when it is known
    record: str
    reason: str  # what is wrong and what to do


@dataclass(frozen=True)
class IngestResult:
    articles: list[Article]
    rejects: list[Reject]
    files: int  # input files read, the manifest not counted


@dataclass(frozen=True)
class Record:
    """One record before validation, with where to point a reject."""

    file: str
    locator: str
    source: str
    values: dict[str, Any]  # field name (not column name) -> raw value; absent when the column is
    meta: tuple[str, str] | None = None  # (manifest, "line N") a text file's other fields came from


class _FieldError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def build_article(record: Record, config: InputConfig, first_seen: dict[str, str]) -> Article | Reject:
    """Validate one record into an Article, or say why it is rejected. Without an outlet, the URL's host names
    it (``config.outlet_from_url``; "www." left out)."""
    columns = config.columns
    values = record.values
    article_id = None
    try:
        article_id = _article_id(values.get("article_id"), columns.article_id)
        url = _optional_str(values.get("url"), "url", columns.url)
        outlet = values.get("outlet")
        if (
            config.outlet_from_url
            and url
            and (outlet is None or (isinstance(outlet, str) and not outlet.strip()))
        ):
            outlet = _host(url) or outlet
        article = Article(
            article_id=article_id,
            outlet=_required_str(outlet, "outlet", columns.outlet),
            text=_text(values.get("text"), columns.text),
            title=_optional_str(values.get("title"), "title", columns.title),
            url=url,
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


def _host(url: str) -> str | None:
    """The host a URL names, lower-cased, without "www." (None for a URL without one)."""
    host = urlsplit(url if "://" in url else f"//{url}").hostname
    return host.removeprefix("www.") if host else None


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
    if (bad := UNPAIRED.search(value)) is not None:
        raise _FieldError(
            field,
            f"{field} holds an unpaired surrogate (\\u{ord(bad.group()):04x}) at character {bad.start()}, which no "
            "UTF-8 text can: fix the escape, or re-encode the file as UTF-8",
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
        try:
            return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        except OverflowError:  # e.g. 9999-12-31T23:59-14:00 is in the year 10000 in UTC
            raise _FieldError(
                "published_at", f"published_at {value.isoformat()} is out of range in UTC: fix the date"
            ) from None
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise _FieldError(
        "published_at", f"published_at {value!r} is not a date: use ISO 8601, e.g. 2025-11-21T13:00:00Z"
    )
