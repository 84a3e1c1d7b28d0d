"""scripts/compare_outputs.py, which checks that the container image writes the same tables as `make run`:
two runs of the same job agree whatever their run ids, times and paths, and a changed setting shows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from embeddings.encoder import Encoder
from jobs.pipeline import RunResult
from scripts.compare_outputs import compare
from tests.conftest import SEEDS, read, run_on


def test_the_same_job_elsewhere_writes_the_same_tables(
    seeds_run: RunResult, encoder: Encoder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(SEEDS, tmp_path / "elsewhere" / "input")
    again = run_on(tmp_path / "elsewhere" / "input", tmp_path / "elsewhere" / "output", encoder)
    assert again.run_id != seeds_run.run_id
    assert compare(seeds_run.output, again.output)
    assert f"clusters: {read(again.output, 'clusters').num_rows} rows, the same" in capsys.readouterr().out


def test_a_changed_setting_shows(
    seeds_run: RunResult, encoder: Encoder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = run_on(SEEDS, tmp_path / "output", encoder, "match.candidate_similarity=0.6")
    assert not compare(seeds_run.output, other.output)
    printed = capsys.readouterr().out
    # A stricter candidate search judges fewer pairs.
    counts = read(seeds_run.output, "pairs").num_rows, read(other.output, "pairs").num_rows
    assert counts[0] > counts[1]
    assert f"pairs: {counts[0]} rows against {counts[1]}" in printed
    assert "rejects: 0 rows, the same" in printed
