"""Shared fixtures: one real model for the whole session, and one real run of the job on seeds/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from embeddings.encoder import Encoder
from jobs.config import load_config
from jobs.pipeline import RunResult, load_encoder, run_job

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where this session's ONNX exports go (each made once), not the user's cache."""
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="session")
def encoder(export_dir: Path) -> Encoder:
    """The default config's encoder (backend, model, adapter), loaded once."""
    embed = load_config(DEFAULT_CONFIG).embed.model_copy(
        update={"export_path": export_dir, "progress": False}
    )
    return load_encoder(embed, threads=2)


def run_on(input_path: Path, output: Path, encoder: Encoder | None, *overrides: str) -> RunResult:
    """Run the real job with the default config on ``input_path``, writing to ``output``."""
    config = load_config(
        DEFAULT_CONFIG,
        [
            f"input.path={input_path}",
            f"output.path={output}",
            "run_date=2025-11-22",
            "embed.progress=false",
            *overrides,
        ],
    )
    return run_job(config, encoder=encoder)


@pytest.fixture(scope="session")
def seeds_run(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> RunResult:
    """The default config on a copy of seeds/ (the copy keeps the repo's seeds/ read-only)."""
    work = tmp_path_factory.mktemp("seeds_run")
    shutil.copytree(SEEDS, work / "seeds")
    return run_on(work / "seeds", work / "output", encoder)
