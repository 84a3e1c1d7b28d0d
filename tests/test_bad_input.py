"""Bad input is a reject, never a crash: each kind alone and among good records, on real files. Every good
record comes through, and every bad one is counted with its file, the line of the file, and what to do."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from jobs import cli
from jobs.config import InputConfig
from jobs.ingest import read_articles
from jobs.parallel import in_process
from jobs.records import IngestResult
from tests.conftest import DEFAULT_CONFIG, SEEDS, read, write

DEEP = '{"article_id": "deep", "outlet": "AP", "text": ' + "[" * 100_000 + "]" * 100_000 + "}"


def good_line(article_id: str) -> str:
    return json.dumps({"article_id": article_id, "outlet": "AP", "text": f"Story {article_id}."})


def ingest(path: Path, map_data: Callable[..., Any] = in_process) -> IngestResult:
    return read_articles(InputConfig(path=path), map_data)


def found(result: IngestResult) -> tuple[list[str], list[tuple[str, str]]]:
    """The ids of the articles, and the (file, where) of the rejects."""
    return [a.article_id for a in result.articles], [(Path(r.source).name, r.record) for r in result.rejects]


def reason(result: IngestResult, name: str) -> str:
    (match,) = [r.reason for r in result.rejects if Path(r.source).name == name]
    return match


@pytest.mark.parametrize("mixed", [False, True], ids=["alone", "mixed"])
def test_a_deeply_nested_json_line_is_a_reject(tmp_path: Path, mixed: bool) -> None:
    before, after = ([good_line("a"), "", good_line("b")], [good_line("c")]) if mixed else ([], [])
    write(tmp_path / "in" / "data.jsonl", "\n".join([*before, DEEP, *after]) + "\n")

    result = ingest(tmp_path / "in")

    line = 4 if mixed else 1
    assert found(result) == (["a", "b", "c"] if mixed else [], [("data.jsonl", f"line {line}")])
    assert "nested too deeply" in result.rejects[0].reason and "flatten" in result.rejects[0].reason


def test_an_integer_too_long_to_read_is_a_reject(tmp_path: Path) -> None:
    huge = '{"article_id": ' + "9" * 5000 + ', "outlet": "AP", "text": "x"}'
    write(tmp_path / "data.jsonl", f"{good_line('a')}\n{huge}\n")
    result = ingest(tmp_path / "data.jsonl")
    assert found(result) == (["a"], [("data.jsonl", "line 2")])
    assert "not readable JSON" in result.rejects[0].reason


def test_values_no_table_could_store_are_rejects(tmp_path: Path) -> None:
    lines = [
        good_line("a"),
        '{"article_id": "lone", "outlet": "AP", "text": "A lone \\ud800 surrogate."}',
        json.dumps(
            {"article_id": "late", "outlet": "AP", "text": "x", "published_at": "9999-12-31T23:00-14:00"}
        ),
        good_line("b"),
    ]
    write(tmp_path / "data.jsonl", "\n".join(lines) + "\n")

    result = ingest(tmp_path / "data.jsonl")

    assert found(result) == (
        ["a", "b"],
        [("data.jsonl", "line 2 (article_id=lone)"), ("data.jsonl", "line 3 (article_id=late)")],
    )
    assert "unpaired surrogate (\\ud800) at character 7" in result.rejects[0].reason
    assert "out of range in UTC" in result.rejects[1].reason


def test_a_file_name_that_is_not_utf8_is_a_reject(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", "A good story.")
    Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.txt")).write_text("A story under a Latin-1 name.")

    result = ingest(tmp_path)

    assert found(result) == (["good"], [("caf\\xe9.txt", "")])
    assert result.rejects[0].reason == "the file's name is not valid UTF-8: rename the file"


@pytest.mark.parametrize("kind", ["txt", "jsonl"])
def test_broken_symlinks_are_rejects(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "in"
    content = "A good story." if kind == "txt" else good_line("good") + "\n"
    write(folder / f"good.{kind}", content)
    (folder / f"dangling.{kind}").symlink_to(folder / f"gone.{kind}")
    (folder / f"loop.{kind}").symlink_to(folder / f"loop.{kind}")

    result = ingest(folder)

    assert found(result) == (["good"], [(f"dangling.{kind}", ""), (f"loop.{kind}", "")])
    assert f"a symbolic link to {folder / f'gone.{kind}'}, which does not exist" in reason(
        result, f"dangling.{kind}"
    )
    assert "a symbolic link that loops" in reason(result, f"loop.{kind}")


@pytest.mark.parametrize("kind", ["txt", "jsonl"])
def test_symlinks_out_of_the_input_folder_are_rejected(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "in"
    content = "A story." if kind == "txt" else good_line("{}") + "\n"
    outside = write(tmp_path / "secret" / f"x.{kind}", content.replace("{}", "secret"))
    write(folder / f"good.{kind}", content.replace("{}", "good"))
    write(folder / "sub" / f"other.{kind}", content.replace("{}", "other"))
    write(folder / "_shared" / f"linked.{kind}", content.replace("{}", "linked"))  # not read by itself
    (folder / f"out.{kind}").symlink_to(outside)
    (folder / f"relative.{kind}").symlink_to(Path("..") / "secret" / f"x.{kind}")
    (folder / f"in.{kind}").symlink_to(Path("_shared") / f"linked.{kind}")  # inside: read like any file

    result = ingest(folder)

    articles, rejects = found(result)
    assert "secret" not in articles and "x" not in articles
    assert rejects == [(f"out.{kind}", ""), (f"relative.{kind}", "")]
    assert f"a symbolic link to {outside}, outside the input folder {folder}" in reason(result, f"out.{kind}")
    assert f"outside the input folder {folder}" in reason(result, f"relative.{kind}")
    # A link inside the folder is read (a text file's id comes from the link's own path).
    assert articles == (["good", "in", "sub/other"] if kind == "txt" else ["good", "linked", "other"])


def test_a_symlinked_folder_out_of_the_input_folder_is_rejected_not_read(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    write(folder / "good.txt", "A good story.")
    write(folder / "_shared" / "linked.txt", "A story in a folder of the input, read where it is.")
    write(tmp_path / "elsewhere" / "secret.txt", "A story outside the input folder.")
    (folder / "away").symlink_to(tmp_path / "elsewhere")
    (folder / "here").symlink_to(folder / "_shared")  # inside: not followed, and nothing to say

    result = ingest(folder)

    assert found(result) == (["good"], [("away", "")])
    assert reason(result, "away").startswith(
        f"a symbolic link to the folder {tmp_path / 'elsewhere'}, outside"
    )


def test_a_symlink_given_as_the_input_itself_is_read(tmp_path: Path) -> None:
    target = write(tmp_path / "elsewhere" / "data.jsonl", good_line("a") + "\n")
    (tmp_path / "data.jsonl").symlink_to(target)
    assert found(ingest(tmp_path / "data.jsonl")) == (["a"], [])


def test_a_file_that_vanishes_during_ingest_is_a_reject(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for name in ("a", "b", "c"):
        write(folder / f"{name}.jsonl", good_line(name) + "\n")

    def vanish_then_read(fn: Callable[[list[Any]], list[Any]], files: Sequence[Any]) -> list[Any]:
        (folder / "b.jsonl").unlink()  # listed, then gone before it is read
        return in_process(fn, files)

    result = ingest(folder, vanish_then_read)

    assert found(result) == (["a", "c"], [("b.jsonl", "")])
    assert reason(result, "b.jsonl").startswith("the file disappeared while the input was read: rerun")


def test_a_fifo_is_rejected_not_waited_on(tmp_path: Path) -> None:
    write(tmp_path / "good.txt", "A good story.")
    os.mkfifo(tmp_path / "pipe.txt")
    result = ingest(tmp_path)
    assert found(result) == (["good"], [("pipe.txt", "")])
    assert "not a regular file" in reason(result, "pipe.txt")


def test_an_unterminated_csv_quote_does_not_swallow_the_next_records(tmp_path: Path) -> None:
    path = write(
        tmp_path / "news.csv",
        "article_id,outlet,text\n"
        '1,BBC,"A quoted story,\nover two lines."\n'  # lines 2-3: a good multi-line field
        '2,BBC,"Unterminated story.\n'  # line 4: its quote never closes
        "3,CNN,Good story.\n"
        '4,AP,"Quoted, story."\n'
        '5,AP,"Unterminated at the end.\n',  # line 7
    )

    result = ingest(path)

    assert found(result) == (["1", "3", "4"], [("news.csv", "line 4"), ("news.csv", "line 7")])
    assert [a.source for a in result.articles] == [f"{path}:2", f"{path}:5", f"{path}:6"]
    assert all("a quote opened on this line does not close" in r.reason for r in result.rejects)


def test_csv_rejects_name_the_line_of_the_file_not_the_record(tmp_path: Path) -> None:
    path = write(
        tmp_path / "news.csv",
        "article_id,outlet,text\n"
        '1,BBC,"Three\nline\nstory."\n'  # record 1, lines 2-4
        "2,BBC,too,many\n"  # record 2, line 5
        "\n"
        "3,BBC,\n",  # record 3, line 7
    )

    result = ingest(path)

    assert found(result) == (["1"], [("news.csv", "line 5"), ("news.csv", "line 7 (article_id=3)")])


def test_a_run_on_every_kind_of_bad_input_keeps_every_good_record(tmp_path: Path, export_dir: Path) -> None:
    """The whole job on the seeds plus bad files: it exits 0, with every seed article and every reject."""
    folder = tmp_path / "in"
    shutil.copytree(SEEDS, folder)
    write(tmp_path / "secret.txt", "Text from outside the input folder must not be read.")
    (folder / "outside.txt").symlink_to(tmp_path / "secret.txt")
    (folder / "dangling.txt").symlink_to(folder / "gone.txt")
    (folder / "loop.txt").symlink_to(folder / "loop.txt")
    (folder / "elsewhere").symlink_to(tmp_path)
    os.mkfifo(folder / "pipe.txt")
    write(folder / "latin1.txt", "Caf\xe9".encode("latin-1"))
    out = tmp_path / "out"

    settings = ["embed.progress=false", f"embed.export_path={export_dir}"]
    code = cli.main(
        [
            *("run", "--config", str(DEFAULT_CONFIG), "--input", str(folder), "--output", str(out)),
            *("--run-date", "2025-11-22", "--log-level", "WARNING"),
            *(arg for setting in settings for arg in ("--set", setting)),
        ]
    )

    assert code == 0
    rejects = {Path(r["source"]).name: r for r in read(out, "rejects").to_pylist()}
    assert sorted(rejects) == [
        "dangling.txt",
        "elsewhere",
        "latin1.txt",
        "loop.txt",
        "outside.txt",
        "pipe.txt",
    ]
    articles = read(out, "articles").to_pylist()
    assert sorted(a["article_id"] for a in articles) == sorted(p.stem for p in SEEDS.glob("*.txt"))
    (run,) = read(out, "runs").to_pylist()
    assert (run["n_articles"], run["n_rejects"], run["n_input_files"]) == (5, 6, 10)
