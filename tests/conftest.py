"""Shared fixtures and helpers: one real model for the whole session, one real run of the job on seeds/,
and reading back what a run wrote."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from embeddings.encoder import Encoder
from jobs import tables
from jobs.config import EmbedConfig, IndexConfig, load_config
from jobs.embed import load_encoder
from jobs.neighbours import index_options
from jobs.pipeline import RunResult, run_job

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
DEFAULT_CONFIG = ROOT / "configs" / "default.yaml"
README = (ROOT / "README.md").read_text()


def readme_section(title: str) -> str:
    """The README's ``## title`` section, up to the next ``## `` heading."""
    return re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M).group(1)


def sql_blocks(text: str) -> list[str]:
    return re.findall(r"```sql\n(.*?)```", text, re.S)


# The README's queries over several days of scheduled runs (they answer on a two-day output), and the rest,
# which answer on the output of one run.
SCHEDULED_QUERIES = sql_blocks(readme_section("Scheduled runs"))
ONE_RUN_QUERIES = [q for q in sql_blocks(README) if q not in SCHEDULED_QUERIES]

# Pairs of sentences that report the same thing, and pairs that do not.
SAME = [
    (
        "US strikes have hit 21 boats since September, killing 83.",
        "Since September, 21 boats were struck by the US; 83 died.",
    ),
    ("Venezuela closed its airspace on Saturday.", "On Saturday Venezuela shut its airspace."),
]
DIFFERENT = [
    (
        "US strikes have hit 21 boats since September, killing 83.",
        "Maduro began his career as a bus driver in Caracas.",
    ),
    ("Venezuela closed its airspace on Saturday.", "The carrier group arrived in the Caribbean last week."),
]


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


def write_day(tmp_path: Path, run_date: str, articles: list[tuple[str, str, str, str]]) -> Path:
    """The input of the run for ``run_date``: ``articles`` as (article id, outlet, published day, text)."""
    source = tmp_path / "input" / run_date / "articles.jsonl"
    source.parent.mkdir(parents=True, exist_ok=True)
    records = [
        {"article_id": a, "outlet": o, "published_at": f"{p}T08:00:00Z", "text": t} for a, o, p, t in articles
    ]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return source


def run_day(
    tmp_path: Path,
    output: Path,
    run_date: str,
    articles: list[tuple[str, str, str, str]],
    encoder: Encoder | None,
    days: int = 10,
    *overrides: str,
) -> RunResult:
    """The scheduled run for ``run_date`` on ``articles``, with ``days`` of history."""
    source = write_day(tmp_path, run_date, articles)
    settings = (f"run_date={run_date}", f"history.days={days}", "output.mode=replace_date", *overrides)
    return run_on(source, output, encoder, *settings)


@pytest.fixture(scope="session")
def seeds_run(tmp_path_factory: pytest.TempPathFactory, encoder: Encoder) -> RunResult:
    """The default config on a copy of seeds/ (the copy keeps the repo's seeds/ read-only)."""
    work = tmp_path_factory.mktemp("seeds_run")
    shutil.copytree(SEEDS, work / "seeds")
    return run_on(work / "seeds", work / "output", encoder)


def seeds_command(output: Path, *extra: str) -> list[str]:
    """The ``newsdedup`` arguments that run the default config on seeds/ into ``output``."""
    return ["run", "--config", str(DEFAULT_CONFIG), "--input", str(SEEDS), "--output", str(output), *extra]


def write(path: Path, content: str | bytes) -> Path:
    """Write ``content`` (text as UTF-8) to ``path``, creating its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# Columns that differ between two runs of the same input and config.
VOLATILE = {"run_id", "origin_run_id", "started_at", "finished_at"}


def read(output: Path, name: str) -> pa.Table:
    """Table ``name`` of every run under ``output``, with the run_date partition column."""
    partitioning = ds.partitioning(pa.schema([tables.PARTITION]), flavor="hive")
    return ds.dataset(output / name, format="parquet", partitioning=partitioning).to_table()


def rows(output: Path, name: str) -> list[dict]:
    """Table ``name``'s rows without the columns that differ between runs."""
    table = read(output, name)
    return table.drop_columns([c for c in table.column_names if c in VOLATILE]).to_pylist()


def paragraph(output: Path, article_prefix: str, needle: str) -> dict:
    """The one paragraph of an article whose id starts with ``article_prefix`` that holds ``needle``."""
    matches = [
        p
        for p in read(output, "paragraphs").to_pylist()
        if p["article_id"].startswith(article_prefix) and needle in p["text"]
    ]
    assert len(matches) == 1, (article_prefix, needle, matches)
    return matches[0]


def configured_encoder(threads: int = 2, **embed: Any) -> Encoder:
    """The encoder ``EmbedConfig(**embed)`` configures (the config holds every default), without a progress bar."""
    return load_encoder(EmbedConfig(progress=False, **embed), threads)


def index_settings(**changes: Any) -> dict[str, Any]:
    """``build_index``'s settings as the job's index config sets them (it holds every default), changed."""
    return index_options(IndexConfig(**changes))
