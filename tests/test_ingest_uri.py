"""input.path as a URI: file:// URIs run the pyarrow-filesystem code end to end (no network needed)."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.config import InputConfig, JobConfig, load_config
from jobs.ingest import read_articles
from jobs.pipeline import RunResult
from jobs.records import IngestResult, InputError
from tests.conftest import SEEDS, rows, run_on, write


def uri(path: Path | str) -> str:
    return f"file://{path}"


def read(location: Path | str, **options: Any) -> IngestResult:
    return read_articles(InputConfig(path=location, **options))


def pickled(fn: Callable[[list[Any]], list[Any]], items: Sequence[Any]) -> list[Any]:
    """A ``map_data`` that, like Ray's, hands the reading function and the files over pickled."""
    return pickle.loads(pickle.dumps(fn))(pickle.loads(pickle.dumps(list(items))))


def assert_same_as_local(local: Path, **options: Any) -> IngestResult:
    """Reading ``local`` by its file:// URI finds what reading it by path finds, each file named by its URI."""
    by_path = read(local, **options)
    by_uri = read_articles(InputConfig(path=uri(local), **options), pickled)

    def fields(result: IngestResult) -> list[tuple]:
        return [(a.article_id, a.outlet, a.text, a.title, a.url, a.published_at) for a in result.articles]

    assert fields(by_uri) == fields(by_path)
    assert [a.source for a in by_uri.articles] == [uri(a.source) for a in by_path.articles]
    assert [(r.source, r.record, r.reason) for r in by_uri.rejects] == [
        (uri(r.source), r.record, r.reason.replace(str(local), uri(local))) for r in by_path.rejects
    ]
    assert by_uri.files == by_path.files
    return by_uri


def test_jsonl(tmp_path: Path) -> None:
    lines = [
        json.dumps({"article_id": 1, "outlet": "AP", "text": "Story.", "published_at": "2025-11-21T13:00Z"}),
        "not json",
        json.dumps({"article_id": "2", "outlet": "AP", "text": "Other.", "title": " Title "}),
    ]
    path = write(tmp_path / "data.jsonl", "\n".join(lines) + "\n")

    result = assert_same_as_local(path)

    assert [a.source for a in result.articles] == [f"file://{path}:1", f"file://{path}:3"]
    (reject,) = result.rejects
    assert (reject.source, reject.record) == (f"file://{path}", "line 2")


def test_csv_folder(tmp_path: Path) -> None:
    write(tmp_path / "in" / "a.csv", "article_id,outlet,text\n1,BBC,First.\n2,BBC\n")
    write(tmp_path / "in" / "sub" / "b.csv", "article_id,outlet,text\n3,CNN,Third.\n1,CNN,Again.\n")
    write(tmp_path / "in" / "_old" / "c.csv", "article_id,outlet,text\n4,CNN,Skipped.\n")

    result = assert_same_as_local(tmp_path / "in")

    assert [a.article_id for a in result.articles] == ["1", "3"]
    assert [(r.source, r.record) for r in result.rejects] == [
        (uri(tmp_path / "in" / "a.csv"), "line 3"),
        (uri(tmp_path / "in" / "sub" / "b.csv"), "line 3 (article_id=1)"),
    ]
    assert f"first seen at {uri(tmp_path / 'in' / 'a.csv')}:2" in result.rejects[1].reason


def test_parquet_folder(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    table = pa.table(
        {
            "article_id": ["p1", "p2"],
            "outlet": ["DW", None],
            "text": ["Story one.", "Story two."],
            "published_at": pa.array([1_763_730_000_000_000, None], pa.timestamp("us")),
        }
    )
    pq.write_table(table, folder / "a.parquet")
    write(folder / "b.parquet", "not parquet")

    result = assert_same_as_local(folder)

    assert [a.source for a in result.articles] == [f"{uri(folder / 'a.parquet')}:1"]
    assert [r.source for r in result.rejects] == [uri(folder / "a.parquet"), uri(folder / "b.parquet")]
    assert result.rejects[1].reason.startswith("not a readable Parquet file")


def test_text_folder_with_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "one.txt", "Story one.")
    write(folder / "two.txt", "Story two.")
    write(folder / "cnn" / "three.txt", "Story three.")
    write(folder / "bad.txt", b"caf\xe9")
    write(folder / ".hidden" / "four.txt", "Skipped.")
    write(
        folder / "manifest.csv",
        "file,article_id,outlet,title,published_at\n"
        "one.txt,id-1,Reuters, Big news ,2025-11-21T13:00:00Z\n"
        "two.txt,id-2,AP,,yesterday\n"
        "gone.txt,id-9,AP,,\n",
    )

    result = assert_same_as_local(folder)

    assert [(a.article_id, a.outlet, a.title) for a in result.articles] == [
        ("cnn/three", "cnn", None),
        ("id-1", "Reuters", "Big news"),
    ]
    manifest = uri(folder / "manifest.csv")
    assert [(r.source, r.record) for r in result.rejects] == [
        (manifest, "line 4"),
        (uri(folder / "bad.txt"), ""),
        (manifest, "line 3 (article_id=id-2)"),
    ]
    assert f"relative to {uri(folder)}" in result.rejects[0].reason


def test_single_text_file_uses_the_manifest_beside_it(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "Story a.")
    write(tmp_path / "manifest.csv", "file,article_id,outlet\na.txt,id-a,AFP\nb.txt,id-b,AFP\n")

    result = assert_same_as_local(tmp_path / "a.txt")

    assert [(a.article_id, a.outlet, a.source) for a in result.articles] == [
        ("id-a", "AFP", uri(tmp_path / "a.txt"))
    ]


def test_unknown_scheme_is_an_input_error() -> None:
    with pytest.raises(InputError) as caught:
        read("nosuchfs://bucket/news/")
    message = str(caught.value)
    assert message.startswith("cannot open nosuchfs://bucket/news/: ")
    assert "check the URI (s3://, gs://, hdfs://, file:// or a local path) and credentials" in message


def test_missing_uri_folder_and_empty_uri_folder_are_input_errors(tmp_path: Path) -> None:
    missing = uri(tmp_path / "nowhere")
    with pytest.raises(InputError, match=f"input path {missing} does not exist: set input.path"):
        read(missing)

    write(tmp_path / "notes.md", "not an input")
    with pytest.raises(InputError, match=f"no input files in {uri(tmp_path)}: expected"):
        read(uri(tmp_path))


def test_config_keeps_uris_as_text_and_local_paths_as_paths() -> None:
    config = load_config(None, ["input.path=s3://bucket/news/"])
    assert config.input.path == "s3://bucket/news/"
    assert '"path":"s3://bucket/news/"' in config.canonical_json()
    assert load_config(None, values={"input.path": "gs://b/x.jsonl"}).input.path == "gs://b/x.jsonl"
    assert load_config(None, values={"input.path": "seeds"}).input.path == Path("seeds")
    assert JobConfig().input.path == Path("seeds")


def test_the_job_on_a_file_uri_finds_what_it_finds_on_the_path(
    seeds_run: RunResult, encoder, tmp_path: Path
) -> None:
    seeds = shutil.copytree(SEEDS, tmp_path / "seeds")

    # run_on only formats its input path into --set input.path=..., so a URI goes through as it is.
    result = run_on(uri(seeds), tmp_path / "out", encoder)

    for name in ("clusters", "pairs", "paragraphs", "rejects"):
        assert rows(result.output, name) == rows(seeds_run.output, name), name
    articles = rows(result.output, "articles")
    assert [{k: v for k, v in a.items() if k != "source"} for a in articles] == [
        {k: v for k, v in a.items() if k != "source"} for a in rows(seeds_run.output, "articles")
    ]
    assert {a["source"] for a in articles} == {uri(path) for path in seeds.glob("*.txt")}
    assert rows(result.output, "runs")[0]["input_path"] == uri(seeds)
