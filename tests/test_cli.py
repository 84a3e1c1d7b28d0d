"""The console script as a scheduler calls it: exit codes and one-line reasons."""

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from jobs import cli
from tests.conftest import seeds_command

NEWSDEDUP = Path(sys.executable).with_name("newsdedup")


def newsdedup(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(NEWSDEDUP), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_console_script_runs_the_default_config_with_overrides(tmp_path: Path) -> None:
    extra = [
        "--run-date",
        "2025-11-23",
        "--set",
        "match.candidate_similarity=0.56",
        "--set",
        "embed.progress=false",
    ]
    done = newsdedup(*seeds_command(tmp_path / "out", *extra), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("run ") and "5 articles" in done.stdout
    runs = pq.read_table(tmp_path / "out" / "runs").to_pylist()
    assert len(runs) == 1 and '"candidate_similarity":0.56' in runs[0]["config_json"]
    assert (tmp_path / "out" / "runs" / "run_date=2025-11-23").is_dir()
    assert any((tmp_path / "out" / "_index" / "run_date=2025-11-23").glob("*.faiss"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "match.candidate_similarity=2"], "match.candidate_similarity"),
        (["--set", "mtch.candidate_similarity=0.8"], "mtch: unknown key"),
        (["--input", "does/not/exist"], "input path does/not/exist does not exist"),
        (["--set", "embed.model=not-a-packaged-model"], "not available offline"),
        (["--run-date", "yesterday"], "YYYY-MM-DD"),
        (["--set", "embed.max_seq_length=1000"], "reads at most 512 tokens"),
        (["--output", "/dev/null"], "is a file, not a folder"),
        (["--output", "/dev/null/out"], "/dev/null is a file, not a folder"),
    ],
)
def test_user_errors_exit_2_with_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    code = cli.main(seeds_command(tmp_path / "out", *args))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_USAGE
    assert err[-1].startswith("newsdedup: error: ") and message in err[-1]
    assert not (tmp_path / "out").exists()


def test_all_records_rejected_exits_3_after_writing_the_rejects(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_text('{"article_id": "a", "outlet": "x", "text": "  "}\n{"article_id": "b", "outlet": "x"}\n')
    done = newsdedup("run", "--input", str(data), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == cli.EXIT_EMPTY
    assert "no article passed ingest (2 rejects)" in done.stderr.strip().splitlines()[-1]
    assert pq.read_table(tmp_path / "out" / "rejects").num_rows == 2
