"""Progress of long stages: in what the work is made of, as log lines when stderr is not a terminal."""

from __future__ import annotations

import logging

import pytest

from embeddings import progress as progress_module
from embeddings.encoder import Encoder
from embeddings.progress import Progress
from jobs.config import EmbedConfig
from jobs.embed import load_encoder


@pytest.fixture
def every_update(monkeypatch: pytest.MonkeyPatch) -> None:
    """Log every update at once (the job waits 2 s, then logs every 10 s)."""
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    monkeypatch.setattr(progress_module, "LOG_EVERY", 0.0)


def test_without_a_terminal_progress_is_log_lines(
    every_update: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="embeddings.progress")
    with Progress(1000, "match", "pair") as progress:
        progress.update(250)
        progress.update(750)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("match:  25% 250/1,000 pairs, 00:00 elapsed, about 00:00 left")
    assert lines[-1].startswith("match: 100%")
    assert all("\r" not in line for line in lines)


def test_short_work_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="embeddings.progress")
    with Progress(10, "write", "row") as progress:
        progress.update(10)
    assert caplog.records == []


def test_the_encoder_counts_its_progress_in_tokens(
    every_update: None, caplog: pytest.LogCaptureFixture, export_dir
) -> None:
    """Batches run shortest first: counted in texts, the first half would promise half the time left."""
    encoder: Encoder = load_encoder(EmbedConfig(export_path=export_dir, progress=True), threads=2)
    texts = ["A short text.", "A much longer text about the boats the strikes hit since September, 83 dead."]
    caplog.set_level(logging.INFO, logger="embeddings.progress")
    encoder.encode(texts)
    tokens = int(encoder.count_tokens(texts).sum())
    lines = [r.getMessage() for r in caplog.records]
    assert lines and all("token" in line for line in lines)
    assert lines[-1].startswith(f"embed: 100% {tokens}/{tokens} tokens")
