"""Every table reads as it is documented, offline, with the tools analysts use: pandas, polars and Spark (DuckDB
runs the README's queries in test_docs.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pandas as pd
import polars as pl
import pytest

from jobs import tables
from jobs.pipeline import RunResult
from tests.conftest import read


@pytest.mark.parametrize("name", tables.SCHEMAS)
def test_pandas_reads_every_table(seeds_run: RunResult, name: str) -> None:
    frame = pd.read_parquet(seeds_run.output / name)
    assert list(frame.columns) == tables.dataset_schema(name).names
    assert len(frame) == read(seeds_run.output, name).num_rows
    assert {str(day) for day in frame["run_date"]} <= {seeds_run.run_date.isoformat()}


@pytest.mark.parametrize("name", tables.SCHEMAS)
def test_polars_reads_every_table(seeds_run: RunResult, name: str) -> None:
    frame = pl.read_parquet(seeds_run.output / name / "*" / "*.parquet", hive_partitioning=True)
    assert frame.columns == tables.dataset_schema(name).names
    assert frame.height == read(seeds_run.output, name).num_rows
    assert frame.schema["run_date"] == pl.Date
    assert set(frame["run_date"].to_list()) <= {seeds_run.run_date}


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    if shutil.which("java") is None:  # .ci/run installs a JRE where it can
        pytest.skip("Spark needs Java: apt-get install openjdk-17-jre-headless")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("newsdedup-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_reads_every_table(seeds_run: RunResult, spark: Any) -> None:
    for name in tables.SCHEMAS:
        frame = spark.read.parquet(str(seeds_run.output / name))
        assert frame.columns == tables.dataset_schema(name).names, name
        assert frame.count() == read(seeds_run.output, name).num_rows, name
        assert dict(frame.dtypes)["run_date"] == "date", name
    clusters = spark.read.parquet(str(seeds_run.output / "clusters"))
    assert dict(clusters.dtypes)["outlets"] == "array<string>"
    assert dict(clusters.dtypes)["first_published_at"] == "timestamp"


def test_the_readmes_python_reads_run_date_as_a_date(seeds_run: RunResult) -> None:
    """The README's pandas and polars lines give run_date as a date."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    run_date = ds.partitioning(pa.schema([("run_date", pa.date32())]), flavor="hive")
    frame = ds.dataset(seeds_run.output / "clusters", partitioning=run_date).to_table().to_pandas()
    assert set(frame["run_date"]) == {seeds_run.run_date}
    polars = pl.read_parquet(seeds_run.output / "clusters" / "*" / "*.parquet", hive_partitioning=True)
    assert polars.schema["run_date"] == pl.Date
