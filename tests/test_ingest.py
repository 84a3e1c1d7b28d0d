"""Tests for jobs.ingest: real files in tmp_path, read back through read_articles."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.config import ColumnsConfig, InputConfig
from jobs.ingest import read_articles
from jobs.records import Article, IngestResult, InputError, Reject
from tests.conftest import write

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
UTC = dt.UTC


def read(path: Path, **options: Any) -> IngestResult:
    return read_articles(InputConfig(path=path, **options))


def by_id(result: IngestResult) -> dict[str, Article]:
    return {article.article_id: article for article in result.articles}


def test_text_folder_without_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "b.txt", "Second story.\nWith two lines.\n")
    write(folder / "a.txt", "\ufeffFirst story.")
    write(folder / ".hidden.txt", "skipped")
    write(folder / "_draft.txt", "skipped")
    write(folder / "_private" / "c.txt", "skipped")

    result = read(folder)

    assert result.rejects == []
    assert result.files == 2
    assert result.articles == [
        Article("a", "a", "First story.", None, None, None, str(folder / "a.txt")),
        Article("b", "b", "Second story.\nWith two lines.\n", None, None, None, str(folder / "b.txt")),
    ]


def test_text_outlet_from_subfolder(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "cnn" / "story-1.txt", "CNN reports.")
    write(folder / "bbc" / "story-1.txt", "BBC reports.")

    result = read(folder, format="text")

    assert [(a.article_id, a.outlet, a.text) for a in result.articles] == [
        ("bbc/story-1", "bbc", "BBC reports."),
        ("cnn/story-1", "cnn", "CNN reports."),
    ]
    assert result.articles[0].source == str(folder / "bbc" / "story-1.txt")


def test_text_with_manifest(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for name in ("one", "two", "three", "four"):
        write(folder / f"{name}.txt", f"Story {name}.")
    write(
        folder / "manifest.csv",
        "file,article_id,outlet,title,url,published_at\n"
        "one.txt,id-1,Reuters, Big news ,https://x.test/1,2025-11-21T13:00:00Z\n"
        "two.txt,,,,,2025-11-21\n"
        "missing.txt,id-9,AP,,,\n"
        "three.txt,id-3,AFP,,,yesterday\n",
    )

    result = read(folder)

    articles = by_id(result)
    assert sorted(articles) == ["four", "id-1", "two"]
    one = articles["id-1"]
    assert (one.outlet, one.title, one.url, one.text) == (
        "Reuters",
        "Big news",
        "https://x.test/1",
        "Story one.",
    )
    assert one.published_at == dt.datetime(2025, 11, 21, 13, tzinfo=UTC)
    # Empty manifest values fall back to the defaults taken from the file name.
    assert (articles["two"].outlet, articles["two"].title) == ("two", None)
    assert articles["two"].published_at == dt.datetime(2025, 11, 21, tzinfo=UTC)
    assert articles["four"].outlet == "four"
    assert result.files == 4

    manifest = str(folder / "manifest.csv")
    missing, bad_date = result.rejects
    assert (missing.source, missing.record) == (manifest, "line 4")
    assert "missing.txt" in missing.reason and "does not exist" in missing.reason
    assert (bad_date.source, bad_date.record) == (manifest, "line 5 (article_id=id-3)")
    assert "published_at 'yesterday' is not a date" in bad_date.reason and "ISO 8601" in bad_date.reason


def test_manifest_is_looked_up_in_the_input_folder_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "in"
    write(folder / "a.txt", "Story.")
    write(tmp_path / "manifest.csv", "file,article_id,outlet\na.txt,stray-id,Stray\nb.txt,,\n")
    monkeypatch.chdir(tmp_path)

    result = read(folder)

    assert result.rejects == []
    assert [(a.article_id, a.outlet) for a in result.articles] == [("a", "a")]
    # A name with a path separator is a path of its own, here relative to the working directory.
    given = read(folder, manifest="./manifest.csv")
    assert [a.article_id for a in given.articles] == ["stray-id"]
    assert [(r.source, r.record) for r in given.rejects] == [("manifest.csv", "line 3")]
    with pytest.raises(InputError, match=re.escape(f"manifest {folder / 'meta.csv'} not found: fix input.")):
        read(folder, manifest="meta.csv")


def test_rejected_manifest_row_rejects_its_article(tmp_path: Path) -> None:
    for name in ("a", "b", "c", "d"):
        write(tmp_path / f"{name}.txt", f"Story {name}.")
    write(
        tmp_path / "manifest.csv",
        b"file,article_id,outlet,title\n"
        b"a.txt,id-a,AP,caf\xe9\n"
        b"b.txt,id-b,AP,too,many\n"
        b"c.txt,id-c,AFP,\n"
        b"d.txt,id-d,AFP\n"
        b"c.txt,id-c2,AFP,caf\xe9\n",
    )

    result = read(tmp_path)

    manifest = str(tmp_path / "manifest.csv")
    assert [(a.article_id, a.outlet) for a in result.articles] == [("id-c", "AFP")]
    assert [(r.source, r.record) for r in result.rejects] == [
        (manifest, "line 2"),
        (manifest, "line 3"),
        (manifest, "line 5"),
        (manifest, "line 6"),
        (str(tmp_path / "a.txt"), ""),
        (str(tmp_path / "b.txt"), ""),
        (str(tmp_path / "d.txt"), ""),
    ]
    assert [r.reason for r in result.rejects[4:]] == [
        f"its manifest row ({manifest} line {number}) was rejected: fix that row" for number in (2, 3, 5)
    ]


def test_manifest_without_file_column_is_an_input_error(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "Story.")
    write(tmp_path / "manifest.csv", "path,outlet\na.txt,AP\n")

    with pytest.raises(InputError, match="no 'file' column"):
        read(tmp_path)


def test_custom_manifest_name_must_exist(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "Story.")

    with pytest.raises(InputError, match=r"meta\.csv not found.*input\.manifest"):
        read(tmp_path, manifest="meta.csv")


def test_text_file_that_is_not_utf8_is_rejected(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", "Fine.")
    bad = write(tmp_path / "bad.txt", b"caf\xe9 au lait")

    result = read(tmp_path)

    assert [a.article_id for a in result.articles] == ["good"]
    assert result.rejects == [
        Reject(str(bad), "", "not valid UTF-8 at byte 3: re-encode the file as UTF-8"),
    ]
    assert result.files == 2


def test_blank_text_file_is_rejected(tmp_path: Path) -> None:
    write(tmp_path / "blank.txt", " \n\n ")

    (reject,) = read(tmp_path).rejects

    assert reject.record == "(article_id=blank)"
    assert reject.reason.startswith("empty text")


def test_empty_folder_is_an_input_error(tmp_path: Path) -> None:
    write(tmp_path / "notes.md", "not an input")

    with pytest.raises(InputError, match="no input files in"):
        read(tmp_path)


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"does not exist: set input\.path or pass --input"):
        read(tmp_path / "nowhere")


def test_jsonl_bad_lines_become_rejects(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {"article_id": 7, "outlet": "AP", "text": "Story.", "published_at": "2025-11-21T15:00:00+02:00"}
        ),
        "",
        '{"article_id": "x", "outlet": ',
        "[1, 2]",
        json.dumps({"article_id": "no-text", "outlet": "AP"}),
        json.dumps({"article_id": "blank", "outlet": "AP", "text": "   "}),
        json.dumps({"article_id": "", "outlet": "AP", "text": "Story."}),
        json.dumps({"article_id": "num", "outlet": 5, "text": "Story."}),
    ]
    data = "\n".join(lines).encode() + b'\n{"article_id": "\xff"}\n'
    path = write(tmp_path / "data.jsonl", data)

    result = read(path)

    (article,) = result.articles
    assert (article.article_id, article.outlet, article.source) == ("7", "AP", f"{path}:1")
    assert article.published_at == dt.datetime(2025, 11, 21, 13, tzinfo=UTC)
    records = [(r.record, r.reason) for r in result.rejects]
    assert all(r.source == str(path) for r in result.rejects)
    assert [record for record, _ in records] == [
        "line 3",
        "line 4",
        "line 5 (article_id=no-text)",
        "line 6 (article_id=blank)",
        "line 7",
        "line 8 (article_id=num)",
        "line 9",
    ]
    reasons = [reason for _, reason in records]
    assert reasons[0].startswith("not valid JSON")
    assert "not a JSON object" in reasons[1] and "an array" in reasons[1]
    assert reasons[2].startswith("missing text (column 'text')")
    assert reasons[3].startswith("empty text")
    assert reasons[4].startswith("empty article_id")
    assert "outlet (column 'outlet') is not a string but int" in reasons[5]
    assert reasons[6].startswith("not valid UTF-8")


def test_jsonl_key_missing_from_every_record_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path / "data.ndjson", json.dumps({"id": "1", "outlet": "AP", "text": "Story."}) + "\n")

    with pytest.raises(InputError, match=r"'article_id' \(input\.columns\.article_id\) not found") as caught:
        read(tmp_path)
    assert str(path) in str(caught.value) and "'id'" in str(caught.value)

    assert [a.article_id for a in read(path, columns=ColumnsConfig(article_id="id")).articles] == ["1"]


def test_csv_with_column_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path / "news.csv",
        'id,source,body,headline\n1,BBC,"Line one.\nLine two, with a comma.",Top story\n2,CNN,Only text,\n',
    )
    columns = ColumnsConfig(article_id="id", outlet="source", text="body", title="headline")

    result = read(tmp_path, columns=columns)

    assert result.rejects == []
    assert result.articles == [
        Article("1", "BBC", "Line one.\nLine two, with a comma.", "Top story", None, None, f"{path}:2"),
        # Sources name the line a record starts on: the first one's text spans lines 2 and 3.
        Article("2", "CNN", "Only text", None, None, None, f"{path}:4"),
    ]


def test_csv_missing_required_column_is_an_input_error(tmp_path: Path) -> None:
    write(tmp_path / "news.csv", "article_id,outlet,body\n1,BBC,Story.\n")

    with pytest.raises(InputError) as caught:
        read(tmp_path)

    message = str(caught.value)
    assert "column 'text' (input.columns.text) not found" in message
    assert "['article_id', 'outlet', 'body']" in message
    assert "set input.columns.text" in message


def test_csv_bad_rows_become_rejects(tmp_path: Path) -> None:
    path = write(
        tmp_path / "news.csv",
        b"article_id,outlet,text,published_at\n"
        b"1,BBC,Fine story.,2025-11-21 09:30\n"
        b"2,BBC,caf\xe9 story.,\n"
        b"3,BBC,too,many,fields\n"
        b"\n"
        b"4,BBC,Dated story.,21/11/2025\n"
        b"5,BBC,Last story.,\n",
    )

    result = read(path)

    assert [(a.article_id, a.source) for a in result.articles] == [("1", f"{path}:2"), ("5", f"{path}:7")]
    assert result.articles[0].published_at == dt.datetime(2025, 11, 21, 9, 30, tzinfo=UTC)
    rejects = result.rejects
    assert [r.record for r in rejects] == ["line 3", "line 4", "line 6 (article_id=4)"]
    assert rejects[0].reason == "not valid UTF-8 in field 3: re-encode the file as UTF-8"
    assert "5 fields but the header has 4" in rejects[1].reason
    assert rejects[2].reason == (
        "published_at '21/11/2025' is not a date: use ISO 8601, e.g. 2025-11-21T13:00:00Z"
    )


def test_parquet_with_typed_timestamps(tmp_path: Path) -> None:
    folder = tmp_path / "pq"
    folder.mkdir()
    naive = pa.table(
        {
            "article_id": pa.array([10, 11, 12], pa.int64()),
            "outlet": ["AP", "AP", None],
            "text": ["Story ten.", "Story eleven.", "Story twelve."],
            # Nanoseconds, as pandas writes them: 2025-11-21T13:00:00.123456789.
            "published_at": pa.array([1_763_730_000_123_456_789, None, 0], pa.timestamp("ns")),
        }
    )
    pq.write_table(naive, folder / "a.parquet")
    berlin = dt.datetime(2025, 11, 21, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    aware = pa.table(
        {
            "article_id": ["b1"],
            "outlet": ["DW"],
            "text": ["Story b1."],
            "published_at": pa.array([berlin], pa.timestamp("us", tz="Europe/Berlin")),
            "url": [" https://dw.test/b1 "],
        }
    )
    pq.write_table(aware, folder / "b.parquet")

    result = read(folder)

    assert result.files == 2
    articles = by_id(result)
    assert list(articles) == ["10", "11", "b1"]
    assert articles["10"].published_at == dt.datetime(2025, 11, 21, 13, 0, 0, 123456, tzinfo=UTC)
    assert articles["10"].source == f"{folder / 'a.parquet'}:1"
    assert articles["11"].published_at is None
    assert articles["b1"].published_at == dt.datetime(2025, 11, 21, 13, tzinfo=UTC)
    assert articles["b1"].url == "https://dw.test/b1"
    (reject,) = result.rejects
    assert (reject.record, reject.reason) == (
        "row 3 (article_id=12)",
        "missing outlet (column 'outlet'): every record needs one",
    )


def test_parquet_date_column_and_missing_column(tmp_path: Path) -> None:
    dated = tmp_path / "dated.parquet"
    pq.write_table(
        pa.table({"article_id": ["d"], "outlet": ["AP"], "text": ["T."], "day": [dt.date(2025, 1, 2)]}), dated
    )

    (article,) = read(dated, columns=ColumnsConfig(published_at="day")).articles
    assert article.published_at == dt.datetime(2025, 1, 2, tzinfo=UTC)

    with pytest.raises(InputError, match=r"column 'body' \(input\.columns\.text\) not found"):
        read(dated, columns=ColumnsConfig(text="body"))


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", "article_id,outlet,text\nsame,AP,First.\nonly-a,AP,A.\n")
    second = write(tmp_path / "b.csv", "article_id,outlet,text\nsame,BBC,Second.\n")

    result = read(tmp_path)

    assert [(a.article_id, a.outlet) for a in result.articles] == [("same", "AP"), ("only-a", "AP")]
    assert result.rejects == [
        Reject(
            str(second),
            "line 2 (article_id=same)",
            f"duplicate article_id 'same' (first seen at {first}:2): make ids unique",
        )
    ]


def test_auto_detect_ignores_manifest_and_rejects_mixed_kinds(tmp_path: Path) -> None:
    write(tmp_path / "manifest.csv", "file\n")
    write(
        tmp_path / "sub" / "data.jsonl", json.dumps({"article_id": "j", "outlet": "AP", "text": "T."}) + "\n"
    )

    assert [a.source for a in read(tmp_path).articles] == [f"{tmp_path / 'sub' / 'data.jsonl'}:1"]

    write(tmp_path / "other.csv", "article_id,outlet,text\n")
    with pytest.raises(InputError, match=r"more than one kind.*1 csv, 1 jsonl.*set input\.format"):
        read(tmp_path)
    assert read(tmp_path, format="jsonl").files == 1


def test_auto_detect_rejects_text_mixed_with_other_data(tmp_path: Path) -> None:
    write(tmp_path / "data.jsonl", json.dumps({"article_id": "j", "outlet": "AP", "text": "T."}) + "\n")
    write(tmp_path / "README.txt", "About this data.")

    with pytest.raises(InputError, match=r"more than one kind.*1 jsonl, 1 text.*set input\.format"):
        read(tmp_path)
    assert [a.article_id for a in read(tmp_path, format="jsonl").articles] == ["j"]
    assert [a.article_id for a in read(tmp_path, format="text").articles] == ["README"]


def test_sample_corpus() -> None:
    result = read(SEEDS)

    assert result.rejects == []
    assert len(result.articles) == 5
    assert all(article.text.strip() for article in result.articles)
    assert [a.source for a in result.articles] == sorted(str(p) for p in SEEDS.glob("*.txt"))


def test_every_missing_column_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path / "news.csv", "id,body\n1,Story.\n")
    with pytest.raises(InputError) as caught:
        read(tmp_path)
    message = str(caught.value)
    for field in ("article_id", "outlet", "text"):
        assert f"'{field}' (input.columns.{field})" in message
    assert "set input.columns.article_id and input.columns.outlet and input.columns.text" in message


def test_json_files_hold_an_array_of_records_or_one_record(tmp_path: Path) -> None:
    records = [
        {"article_id": "a", "outlet": "BBC", "text": "One."},
        ["not", "an", "object"],
        {"article_id": "b", "outlet": "CNN", "text": "Two."},
    ]
    array = write(tmp_path / "in" / "array.json", json.dumps(records))
    single = write(
        tmp_path / "in" / "single.json", json.dumps({"article_id": "c", "outlet": "AP", "text": "Three."})
    )
    write(tmp_path / "in" / "broken.json", '{"article_id": "d",')
    result = read(tmp_path / "in")
    assert [(a.article_id, a.source) for a in result.articles] == [
        ("a", f"{array}:1"),
        ("b", f"{array}:3"),
        ("c", str(single)),
    ]
    assert [(r.source.rsplit("/", 1)[1], r.record) for r in result.rejects] == [
        ("array.json", "item 2"),
        ("broken.json", ""),
    ]
    assert "an array, not a JSON object" in result.rejects[0].reason
    assert "not valid JSON" in result.rejects[1].reason


def test_csv_without_a_header_names_columns_by_position(tmp_path: Path) -> None:
    # AG News's own layout: class, title, description; no header row.
    path = write(
        tmp_path / "news.csv",
        '"3","Oil rises","Oil rose on Monday."\n"2","Cup final","The final, won 2-1."\n',
    )
    columns = ColumnsConfig(article_id="1", outlet="1", title="2", text="3")
    result = read(path, header=False, columns=columns)
    assert [(a.article_id, a.title, a.text, a.source) for a in result.articles] == [
        ("3", "Oil rises", "Oil rose on Monday.", f"{path}:1"),
        ("2", "Cup final", "The final, won 2-1.", f"{path}:2"),
    ]


def test_the_outlet_comes_from_the_url_when_missing_or_empty(tmp_path: Path) -> None:
    lines = [
        {"article_id": "1", "url": "https://www.reuters.com/world/x", "text": "A."},
        {"article_id": "2", "outlet": "", "url": "https://apnews.com/article/y", "text": "B."},
        {"article_id": "3", "outlet": "BBC", "url": "https://www.bbc.co.uk/z", "text": "C."},
        {"article_id": "4", "text": "D."},
    ]
    path = write(tmp_path / "news.jsonl", "".join(json.dumps(line) + "\n" for line in lines))
    result = read(path)
    assert [(a.article_id, a.outlet) for a in result.articles] == [
        ("1", "reuters.com"),
        ("2", "apnews.com"),
        ("3", "BBC"),
    ]
    assert [r.record for r in result.rejects] == ["line 4 (article_id=4)"]
    off = read(path, outlet_from_url=False)
    assert [a.article_id for a in off.articles] == ["3"] and len(off.rejects) == 3
    # A CSV without an outlet column but with a URL column is read, its outlets taken from the URLs.
    csv_path = write(tmp_path / "csv" / "news.csv", "article_id,url,text\n1,https://www.ft.com/a,Story.\n")
    assert [a.outlet for a in read(csv_path).articles] == ["ft.com"]
