"""The README, the Dockerfile and CI say what the code does."""

import os
import re
from pathlib import Path

import duckdb
import pytest

from embeddings.encoder import Encoder
from jobs import tables
from jobs.pipeline import RunResult
from tests.conftest import ONE_RUN_QUERIES, README, SCHEDULED_QUERIES, run_day

ROOT = Path(__file__).resolve().parents[1]


def run_queries(folder: Path, queries: list[str]) -> list[list[tuple]]:
    """Each query's rows, run with DuckDB in ``folder`` (the queries read output/... from there)."""
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        return [duckdb.connect().sql(query).fetchall() for query in queries]
    finally:
        os.chdir(cwd)


def test_readme_table_reference_is_generated_from_the_schemas() -> None:
    block = re.search(r"<!-- tables:start -->\n(.*?)<!-- tables:end -->", README, re.S)
    assert block is not None
    assert block.group(1) == tables.markdown_reference(), "run: python scripts/update_readme_tables.py"


@pytest.mark.parametrize("query", ONE_RUN_QUERIES)
def test_readme_queries_run_on_the_seeds_output(seeds_run: RunResult, query: str) -> None:
    # The queries read output/... as a user in that folder would.
    (rows,) = run_queries(seeds_run.output.parent, [query])
    assert rows, query


def test_scheduled_runs_queries_run_on_two_days_of_output(tmp_path: Path, encoder: Encoder) -> None:
    """Today's new facts, stories that grew today and who reported first, on a real two-day output."""
    wire = (
        "The central bank of Norway raised its main interest rate on Thursday, citing persistent inflation."
    )
    snow = "Heavy snowfall closed the main mountain pass between Italy and Switzerland for most of the week."
    out = tmp_path / "output"
    run_day(
        tmp_path,
        out,
        "2025-01-01",
        [("w", "wire", "2025-01-01", wire), ("x", "alpha", "2025-01-01", wire)],
        encoder,
    )
    run_day(
        tmp_path,
        out,
        "2025-01-02",
        [
            ("b", "beta", "2025-01-02", wire),
            ("s", "alpha", "2025-01-02", snow),
            ("t", "gamma", "2025-01-02", snow),
        ],
        encoder,
    )
    assert len(SCHEDULED_QUERIES) == 3
    new, grown, first = run_queries(tmp_path, SCHEDULED_QUERIES)
    assert [(row[1], row[2]) for row in new] == [(2, ["alpha", "gamma"])]
    assert [(row[1], row[2], row[3]) for row in grown] == [("grown", 1, ["beta"])]
    # Equal publication times: the smaller article id was first (w before x, s before t).
    assert sorted((row[0], row[1], row[2]) for row in first) == [("alpha", 1, ["s"]), ("wire", 1, ["w"])]


def test_the_readme_shows_what_make_run_finds_on_the_seeds(seeds_run: RunResult) -> None:
    """The sample output under the README's first query is that query's result on the seeds, row for row."""
    query, shown = re.search(r"```sql\n(.*?)```\n\n```\n(.*?)```", README, re.S).groups()
    (found,) = run_queries(seeds_run.output.parent, [query])
    rows = [
        tuple(cell.strip() for cell in line.strip("│").split("│"))
        for line in shown.splitlines()
        if line.startswith("│") and not line.startswith("│ cluster")
    ]
    assert rows == [tuple(str(cell).strip() for cell in row) for row in found]


def test_ci_docker_and_make_install_through_one_script() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "`make run`" in README and "`make test`" in README
    assert "sh scripts/install.sh" in (ROOT / "Makefile").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    # The image's stage installs the onnx backend's runtime only; the export stage before it has torch.
    export_stage, image_stage = dockerfile.split("\nFROM ")[1:]
    assert "RUN sh scripts/install.sh /opt/build\n" in export_stage and "export-model" in export_stage
    assert "RUN sh scripts/install.sh /opt/venv --runtime-only" in image_stage
    assert "COPY --from=export /opt/cache /opt/cache" in image_stage
    assert 'ENTRYPOINT ["newsdedup"]' in image_stage and "\nUSER " in image_stage
    for copied in re.findall(r"^COPY (\S+)", dockerfile, re.M):
        assert copied == "--from=export" or any(ROOT.glob(copied)), copied
