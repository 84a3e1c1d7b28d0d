"""The ray executor on a local Ray instance with 2 CPUs: the same tables as the local executor.

Every Ray run here is real: Ray Data tasks read the input and split paragraphs, an actor pool embeds with
the real model, FAISS shards are searched as Ray tasks and graph components clustered as Ray tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
import ray

from benchmarks import syndication
from benchmarks.corpora import DATA, load_stories, write_jsonl
from jobs.config import ClusterConfig, load_config
from jobs.executors import RayExecutor
from jobs.records import InputError
from tests.conftest import DEFAULT_CONFIG, ROOT, SEEDS, read, rows, run_day, run_on

TABLES = ("articles", "paragraphs", "clusters", "pairs", "rejects", "cluster_changes")
# Workers get this module's test functions by value: they cannot import the tests package.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module's in-process runs (the CLI test starts its own)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def assert_same_tables(local: Path, distributed: Path) -> None:
    for name in TABLES:
        expected = rows(local, name)
        assert expected or name == "rejects", name
        assert rows(distributed, name) == expected, name


def test_cli_executor_ray_on_the_seeds_matches_local(seeds_run, export_dir: Path, tmp_path: Path) -> None:
    """`newsdedup run --executor ray` starts a local Ray instance, runs, commits, and stops it."""
    out = tmp_path / "ray"
    seeds = seeds_run.output.parent / "seeds"  # the local run's input path, so `source` columns match
    command = [
        *(sys.executable, "-m", "jobs.cli", "run", "--executor", "ray"),
        *("--config", str(DEFAULT_CONFIG), "--input", str(seeds), "--output", str(out)),
        *("--run-date", "2025-11-22", "--set", f"embed.export_path={export_dir}"),
        *("--set", "embed.progress=false"),
    ]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_tables(seeds_run.output, out)
    (run,) = read(out, "runs").to_pylist()
    assert run["executor"] == "ray"
    resources = json.loads(run["executor_resources"])
    assert resources["cpus"] >= 1 and resources["embed_actors"] >= 1 and resources["address"] == "local"
    assert not ray.is_initialized()  # the CLI's instance lived in its own process


@pytest.fixture(scope="module")
def corpus_5k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 5,000 paragraphs of the syndication benchmark: wire stories republished by 8 outlets."""
    if not (DATA / "reuters21578").is_dir():
        pytest.skip("needs ../shared/data/reuters21578")
    stories = load_stories(DATA / "reuters21578")
    corpus = syndication.generate(stories, n_stories=180, seed=0)
    return write_jsonl(corpus.articles, tmp_path_factory.mktemp("corpus") / "articles.jsonl")


@pytest.mark.parametrize("index_kind", ["flat", "ivf"])
def test_5k_paragraphs_give_the_same_tables_on_ray(
    local_ray, corpus_5k: Path, encoder, export_dir: Path, tmp_path: Path, index_kind: str
) -> None:
    settings = (f"index.kind={index_kind}", f"embed.export_path={export_dir}")
    local = run_on(corpus_5k, tmp_path / "local", encoder, *settings)
    assert 4_500 <= local.counts["n_paragraphs"] <= 5_500
    assert local.counts["n_cross_outlet_clusters"] > 100
    # No encoder passed: the actors load the model themselves, into an empty embedding cache.
    distributed = run_on(corpus_5k, tmp_path / "ray", None, *settings, "executor=ray")
    assert distributed.counts["n_embedded"] == local.counts["n_embedded"] > 1_000
    assert_same_tables(tmp_path / "local", tmp_path / "ray")
    runs = read(tmp_path / "ray", "runs")
    assert runs["executor"].to_pylist() == ["ray"] and runs["index_kind"].to_pylist() == [index_kind]


def test_scheduled_runs_with_history_give_the_same_tables_on_ray(local_ray, encoder, tmp_path: Path) -> None:
    """The second day matched against the first (a copy joining the first day's cluster, a new fact)."""
    fact = (
        "The central bank of Norway raised its main interest rate on Thursday, citing persistent inflation."
    )
    snow = "Heavy snowfall closed the main mountain pass between Italy and Switzerland for most of the week."
    days = {
        "2025-01-01": [("w", "wire", "2025-01-01", f"{fact}\n\n{snow}"), ("x", "alpha", "2025-01-01", fact)],
        "2025-01-02": [("b", "beta", "2025-01-02", fact), ("s", "gamma", "2025-01-02", snow)],
    }
    for executor in ("local", "ray"):
        for run_date, articles in days.items():
            run_day(tmp_path, tmp_path / executor, run_date, articles, encoder, 7, f"executor={executor}")
    changes = read(tmp_path / "local", "cluster_changes").column("change").to_pylist()
    assert sorted(changes) == ["grown", "new", "new"]  # day 1: the fact; day 2: it grew, snow is new
    assert_same_tables(tmp_path / "local", tmp_path / "ray")


def _crash_first_attempt(marker: str, shared: int) -> int:
    """Kill the worker process the first time, as a lost node or the OOM killer would; then answer."""
    path = Path(marker)
    if not path.exists():
        path.touch()
        os._exit(1)
    return shared + 1


def test_a_task_whose_worker_dies_is_retried(local_ray, tmp_path: Path) -> None:
    config = load_config(None)
    executor = RayExecutor(config.ray, threads=2)
    markers = [str(tmp_path / f"task-{i}") for i in range(3)]
    assert executor.map(_crash_first_attempt, markers, shared=41) == [42, 42, 42]
    assert all(Path(m).exists() for m in markers)


def _square_then_count(batch: list[int]) -> list[int]:
    return [x * x for x in batch]


def test_data_map_keeps_input_order(local_ray) -> None:
    config = load_config(None)
    executor = RayExecutor(config.ray, threads=2)
    items = list(range(1000))
    assert executor.map_data(_square_then_count, items) == [x * x for x in items]
    assert executor.map_data(_square_then_count, []) == []


def test_a_failing_run_on_ray_leaves_earlier_output_untouched(
    local_ray, encoder, export_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = run_on(SEEDS, out, encoder, "executor=ray", f"embed.export_path={export_dir}")
    before = {p: p.read_bytes() for p in out.rglob("*.parquet")}
    # The embedding actors cannot load this model: the run fails after ingest and paragraphs ran on Ray.
    with pytest.raises(Exception, match="not-a-packaged-model"):
        run_on(SEEDS, out, encoder, "executor=ray", "embed.model=not-a-packaged-model", "embed.cache=false")
    assert {p: p.read_bytes() for p in out.rglob("*.parquet")} == before
    runs = read(out, "runs")
    assert runs.num_rows == 1 and pc.all(pc.equal(runs["run_id"], first.run_id)).as_py()


def test_an_input_error_in_a_ray_task_reaches_the_user_as_itself(local_ray, encoder, tmp_path: Path) -> None:
    bad = tmp_path / "in" / "articles.csv"
    bad.parent.mkdir()
    bad.write_text("article_id,text\n1,hello\n")  # no outlet column
    with pytest.raises(InputError, match=r"articles\.csv.*'outlet'"):
        run_on(bad.parent, tmp_path / "out", encoder, "executor=ray")
    assert not (tmp_path / "out").exists()


def test_components_too_large_are_split_and_reported(local_ray, caplog: pytest.LogCaptureFixture) -> None:
    """A component larger than max_component_size is split, and reported, on both executors alike."""
    from jobs.clusters import cluster_pairs
    from jobs.pairs import Pairs
    from jobs.same_fact import REWRITE

    rng = np.random.default_rng(0)

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    # Three tight groups of 16 (cosine about 0.97 to their centre) whose centres link in a chain at about
    # 0.78: one connected component of 48 with links of 0.75 or more, three groups with links of 0.79.
    centres = [unit(rng.normal(size=384))]
    for _ in range(2):
        centres.append(unit(centres[-1] + 0.8 * unit(rng.normal(size=384))))
    vectors = np.concatenate(
        [[c] + [unit(c + 0.25 * unit(rng.normal(size=384))) for _ in range(15)] for c in centres]
    ).astype(np.float32)
    sims = vectors @ vectors.T
    a, b = np.triu_indices(len(vectors), 1)
    keep = sims[a, b] >= 0.75
    similarity = sims[a, b][keep].astype(np.float32)
    # Every pair judged a rewrite at its cosine: the groups are linked tighter inside than between.
    pairs = Pairs(a[keep], b[keep], similarity, similarity, np.full(similarity.shape, REWRITE, np.int8))
    config = load_config(None)
    executor = RayExecutor(config.ray, threads=2)
    settings = ClusterConfig(max_component_size=20)
    texts = np.arange(len(vectors))
    local = cluster_pairs(pairs, vectors, texts, settings)
    distributed = cluster_pairs(pairs, vectors, texts, settings, map=executor.map, shards=2)
    assert "a component of 48 paragraphs" in caplog.text
    assert [c.members.tolist() for c in local] == [c.members.tolist() for c in distributed]
    assert [c.members.tolist() for c in local] == [list(range(i, i + 16)) for i in (0, 16, 32)]


def test_ray_reads_input_by_uri(local_ray, seeds_run, encoder, tmp_path: Path) -> None:
    """Ray Data tasks read the files through the pyarrow filesystem a URI names (file:// here, offline)."""
    seeds = seeds_run.output.parent / "seeds"
    out = tmp_path / "out"
    run_on(f"file://{seeds}", out, encoder, "executor=ray")
    for name in TABLES:
        expected = rows(seeds_run.output, name)
        found = rows(out, name)
        if name == "articles":
            assert {a.pop("source") for a in found} == {f"file://{p}" for p in seeds.glob("*.txt")}
            for a in expected:
                del a["source"]
        assert found == expected, name
