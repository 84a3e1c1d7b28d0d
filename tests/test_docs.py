"""The README, the Dockerfile and CI say what the code does."""

import os
import re
from pathlib import Path

import duckdb
import pytest

from jobs import tables
from jobs.pipeline import RunResult

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_table_reference_is_generated_from_the_schemas() -> None:
    block = re.search(r"<!-- tables:start -->\n(.*?)<!-- tables:end -->", README, re.S)
    assert block is not None
    assert block.group(1) == tables.markdown_reference(), "run: python scripts/update_readme_tables.py"


@pytest.mark.parametrize("query", re.findall(r"```sql\n(.*?)```", README, re.S))
def test_readme_queries_run_on_the_seeds_output(seeds_run: RunResult, query: str) -> None:
    cwd = Path.cwd()
    os.chdir(seeds_run.output.parent)  # the queries read output/... as a user in that folder would
    try:
        rows = duckdb.connect().sql(query).fetchall()
    finally:
        os.chdir(cwd)
    assert rows, query


def test_the_readme_shows_what_make_run_finds_on_the_seeds(seeds_run: RunResult) -> None:
    """The sample output under the README's first query is that query's result on the seeds, row for row."""
    query, shown = re.search(r"```sql\n(.*?)```\n\n```\n(.*?)```", README, re.S).groups()
    cwd = Path.cwd()
    os.chdir(seeds_run.output.parent)
    try:
        found = duckdb.connect().sql(query).fetchall()
    finally:
        os.chdir(cwd)
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
