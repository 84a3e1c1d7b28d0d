"""The whole job on real inputs: the sample corpus and the bad inputs a scheduled job meets."""

import os
import pickle
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from benchmarks import seeds
from jobs import commit, tables
from jobs.config import EmbedConfig, JobConfig
from jobs.embed import ConfiguredEncoder
from jobs.executors import LocalExecutor
from jobs.pipeline import RunResult
from jobs.records import InputError
from jobs.same_fact import SameFactModel
from jobs.sizing import default_threads, estimate
from tests.conftest import SEEDS, VOLATILE, paragraph, read, rows, run_on


def test_all_six_tables_have_the_declared_schema(seeds_run: RunResult) -> None:
    for name in tables.SCHEMAS:
        table = read(seeds_run.output, name)
        assert table.schema.equals(tables.dataset_schema(name), check_metadata=False), name
        assert table.column("run_id").unique().to_pylist() == [seeds_run.run_id] or table.num_rows == 0
    # DuckDB, the BI user's first tool, reads the same folders with the partition column.
    con = duckdb.connect()
    runs = con.sql(
        f"SELECT run_date, status, n_articles FROM read_parquet('{seeds_run.output}/runs/*/*.parquet')"
    )
    assert runs.fetchall() == [(seeds_run.run_date, "succeeded", 5)]


def test_seeds_shared_facts(seeds_run: RunResult) -> None:
    """benchmarks/seeds_facts.yaml labels the facts the five outlets share: four of the five the quality
    issue names are each in a cross-outlet cluster (the fifth, "land ... very soon", is not yet: docs/quality.md),
    at most one pair of clustered paragraphs shares no fact, and no boilerplate is in a cross-outlet cluster."""
    score = seeds.score(seeds_run.output)
    assert score.missing == ["land_very_soon"]
    assert len(score.false_links) <= 1 and score.boilerplate_in_cross_outlet == 0
    # The credit line is flagged, and the pairs table keeps the evidence of the airspace closure in 004.
    source = paragraph(seeds_run.output, "000", "Source: AlJazeera")
    assert source["excluded_reason"] == "boilerplate" and source["cluster_id"] is None
    airspace = paragraph(seeds_run.output, "004", "Venezuelan airspace should be treated as fully closed")
    judged = {
        frozenset((p["paragraph_id_a"], p["paragraph_id_b"]))
        for p in read(seeds_run.output, "pairs").to_pylist()
    }
    for other in (("000", "closing Venezuelan airspace"), ("001", "airspace effectively closed")):
        assert (
            frozenset((airspace["paragraph_id"], paragraph(seeds_run.output, *other)["paragraph_id"]))
            in judged
        )


def test_tables_agree_with_each_other(seeds_run: RunResult) -> None:
    out = seeds_run.output
    paragraphs = read(out, "paragraphs").to_pylist()
    clusters = read(out, "clusters").to_pylist()
    for c in clusters:
        members = [p for p in paragraphs if p["cluster_id"] == c["cluster_id"]]
        assert len(members) == c["n_paragraphs"] >= 2
        assert sorted({p["outlet"] for p in members}) == c["outlets"]
        assert c["kind"] == ("cross_outlet" if c["n_outlets"] >= 2 else "single_outlet")
        links = [p["link"] for p in members]
        assert links.count("representative") == 1
        assert (links.count("copy"), links.count("rewrite")) == (c["n_copies"], c["n_rewrites"])
        assert c["link"] == ("copy" if c["n_rewrites"] == 0 else "rewrite")
    cut = SameFactModel.load(JobConfig().match.model).cut
    cluster_of = {p["paragraph_id"]: p["cluster_id"] for p in paragraphs}
    for pair in read(out, "pairs").to_pylist():
        a, b = pair["paragraph_id_a"], pair["paragraph_id_b"]
        assert a < b and pair["link"] in (None, "copy", "rewrite")
        assert pair["link"] != "rewrite" or pair["same_fact_probability"] >= cut
        same = cluster_of[a] if cluster_of[a] == cluster_of[b] else None
        assert pair["cluster_id"] == same
    articles = {a["article_id"]: a for a in read(out, "articles").to_pylist()}
    assert articles["002_9062c7f21478cb24"]["published_at"].isoformat() == "2025-11-21T13:00:00+00:00"
    assert sum(a["n_paragraphs"] for a in articles.values()) == len(paragraphs)
    run = read(out, "runs").to_pylist()[0]
    assert run["n_clusters"] == len(clusters) and run["n_embedded"] == run["n_unique_texts"] > 0
    assert run["versions"]["faiss"] and run["seconds_embed"] > 0


def test_rerun_gives_identical_rows_and_embeds_nothing(seeds_run: RunResult, encoder, tmp_path: Path) -> None:
    seeds = seeds_run.output.parent / "seeds"  # the same input path, so `source` columns match too
    warm_out = tmp_path / "warm"
    shutil.copytree(seeds_run.output, warm_out)  # the first run's tables and its warm embedding cache
    warm = run_on(seeds, warm_out, encoder)
    assert (
        warm.counts["n_embedded"] == 0 and warm.counts["n_cache_hits"] == seeds_run.counts["n_unique_texts"]
    )
    cold = run_on(seeds, tmp_path / "fresh", encoder)  # another output: everything embedded again
    assert cold.counts["n_embedded"] == seeds_run.counts["n_embedded"]
    for name in ("articles", "paragraphs", "clusters", "pairs", "rejects"):
        both = read(warm_out, name)  # holds the first run and the warm rerun
        volatile = [c for c in both.column_names if c in VOLATILE]
        first = both.filter(pc.equal(both["run_id"], seeds_run.run_id)).drop_columns(volatile)
        again = both.filter(pc.equal(both["run_id"], warm.run_id)).drop_columns(volatile)
        assert first.num_rows > 0 or name == "rejects"
        assert first.to_pylist() == again.to_pylist() == rows(tmp_path / "fresh", name), name


def test_bad_records_are_rejected_and_reported(
    encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "in"
    shutil.copytree(SEEDS, data)
    (data / "latin1.txt").write_bytes(
        "Caf\xe9 owners in Caracas said the strikes were illegal.".encode("latin-1")
    )
    with (data / "manifest.csv").open("a") as manifest:
        manifest.write("latin1.txt,000_071ef046549fb02c,dupe-outlet,,,\n")  # an id that is already taken
    out = run_on(data, tmp_path / "out", encoder).output
    found = read(out, "rejects").to_pylist()
    assert len(found) == 1
    assert "UTF-8" in found[0]["reason"] and found[0]["source"].endswith("latin1.txt")
    # Not only a count at INFO: a warning with the count and the first reasons.
    (warning,) = [
        r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "rejected" in r.getMessage()
    ]
    assert warning.startswith("1 record(s) rejected") and "latin1.txt" in warning and "UTF-8" in warning
    (data / "latin1.txt").write_text("Café owners in Caracas said the strikes were illegal, a new article.")
    result = run_on(data, tmp_path / "out2", encoder)
    reasons = [r["reason"] for r in read(result.output, "rejects").to_pylist()]
    assert len(reasons) == 1 and "duplicate article_id '000_071ef046549fb02c'" in reasons[0]
    assert result.counts["n_articles"] == 5 and result.counts["n_rejects"] == 1


def test_a_one_megabyte_paragraph_is_truncated_not_fatal(encoder, tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    sentence = "Since September 2025, US strikes have targeted 21 boats, killing at least 83 people. "
    (data / "huge.txt").write_text(sentence * (1_000_000 // len(sentence)))
    (data / "small.txt").write_text(sentence)
    result = run_on(data, tmp_path / "out", encoder)
    huge = [p for p in read(result.output, "paragraphs").to_pylist() if p["article_id"] == "huge"]
    assert len(huge) == 1 and len(huge[0]["text"]) > 990_000
    assert huge[0]["truncated"] is True and huge[0]["n_tokens"] == encoder.max_seq_length + 1
    assert result.counts["n_truncated"] == 1


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no input files"),
        (
            {"a.csv": "id,outlet,body\n1,x,Some text that is long enough to count as a paragraph.\n"},
            "input.columns",
        ),
    ],
)
def test_unusable_input_stops_before_writing(encoder, tmp_path: Path, files: dict, message: str) -> None:
    data = tmp_path / "in"
    data.mkdir()
    for name, text in files.items():
        (data / name).write_text(text)
    with pytest.raises(InputError, match=message):
        run_on(data, tmp_path / "out", encoder)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="does not exist"):
        run_on(tmp_path / "missing", tmp_path / "out", encoder)


def test_failure_while_writing_leaves_earlier_output_untouched(
    seeds_run: RunResult, encoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    run_on(SEEDS, out, encoder)
    before = {p: p.read_bytes() for p in out.rglob("*.parquet")}
    real_write = commit.StagedRun.write_table

    def fail_on_clusters(self: commit.StagedRun, name: str, table: pa.Table) -> None:
        if name == "clusters":
            raise RuntimeError("simulated crash")
        real_write(self, name, table)

    monkeypatch.setattr(commit.StagedRun, "write_table", fail_on_clusters)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_on(SEEDS, out, encoder)
    assert {p: p.read_bytes() for p in out.rglob("*.parquet")} == before
    assert not (out / commit.STAGING).exists()


def test_default_threads_respects_a_container_cpu_quota(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    assert default_threads(tmp_path) == cores  # no cgroup files: the affinity mask
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert default_threads(tmp_path) == cores
    (tmp_path / "cpu.max").write_text("100000 100000\n")  # a 1-CPU quota (cgroup v2)
    assert default_threads(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU still gets one thread
    assert default_threads(tmp_path) == 1
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")  # cgroup v1
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert default_threads(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert default_threads(tmp_path) == cores


def seeds_as_jsonl(path: Path, limit: int | None = None) -> Path:
    """The seeds (texts and manifest) as one JSONL file: another input format, the same articles."""
    import csv
    import json

    with (SEEDS / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))[:limit]
    with path.open("w") as out:
        for row in rows:
            record = {k: v for k, v in row.items() if k != "file" and v}
            out.write(json.dumps({**record, "text": (SEEDS / row["file"]).read_text()}) + "\n")
    return path


def findings(output: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """Clusters, pairs and paragraphs without run ids: what a run found, whatever the input format."""
    return rows(output, "clusters"), rows(output, "pairs"), rows(output, "paragraphs")


def test_jsonl_input_finds_what_the_text_folder_finds(seeds_run: RunResult, encoder, tmp_path: Path) -> None:
    result = run_on(seeds_as_jsonl(tmp_path / "seeds.jsonl"), tmp_path / "out", encoder)
    assert result.counts["n_articles"] == 5 and result.counts["n_rejects"] == 0
    assert findings(result.output) == findings(seeds_run.output)


def test_a_partly_filled_cache_gives_the_same_findings(seeds_run: RunResult, encoder, tmp_path: Path) -> None:
    # Two articles first, then all five into the same output: the cache holds some vectors, not others.
    out = tmp_path / "out"
    run_on(seeds_as_jsonl(tmp_path / "two.jsonl", limit=2), out, encoder, "output.mode=replace_date")
    partial = run_on(seeds_as_jsonl(tmp_path / "all.jsonl"), out, encoder, "output.mode=replace_date")
    assert 0 < partial.counts["n_cache_hits"] < partial.counts["n_unique_texts"]
    assert findings(out) == findings(seeds_run.output)


def test_copies_published_weeks_apart_are_not_linked(encoder, tmp_path: Path) -> None:
    import json

    text = "US strikes have targeted 21 boats in the Caribbean since September, killing at least 83 people."
    copy = text.replace("US strikes", "U.S. strikes")  # republished with a house-style edit
    other = (
        "Grain exports from the northern port fell sharply in March as the harvest came in late.\n"
        "The port authority said it expects shipments to recover once the new terminal opens in May."
    )
    # Two paragraphs in the first article and an excluded heading in the wire story: the clustered rows,
    # the paragraphs and the articles are numbered differently, so a date read for the wrong one shows.
    records = [
        {"article_id": "other", "outlet": "other", "published_at": "2025-06-01", "text": other},
        {
            "article_id": "wire",
            "outlet": "wire",
            "published_at": "2025-11-01T08:00:00Z",
            "text": f"Caribbean\n{text}",
        },
        {"article_id": "daily", "outlet": "daily", "published_at": "2025-11-03", "text": copy},
        # Weeks later the same sentence is background in another story.
        {"article_id": "weekly", "outlet": "weekly", "published_at": "2025-12-11", "text": copy},
    ]
    data = tmp_path / "articles.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))

    def members(result: RunResult) -> list[list[str]]:
        found: dict[str, list[str]] = {}
        for p in read(result.output, "paragraphs").to_pylist():
            if p["cluster_id"] is not None:
                found.setdefault(p["cluster_id"], []).append(p["article_id"])
        return sorted(sorted(m) for m in found.values())

    windowed = run_on(data, tmp_path / "windowed", encoder)
    assert members(windowed) == [["daily", "wire"]]
    assert windowed.counts["n_pairs"] == 1 and windowed.counts["n_pairs_apart"] == 2
    assert read(windowed.output, "runs").column("n_pairs_apart").to_pylist() == [2]
    unlimited = run_on(data, tmp_path / "unlimited", encoder, "match.max_days_apart=null")
    assert members(unlimited) == [["daily", "weekly", "wire"]] and unlimited.counts["n_pairs_apart"] == 0


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_find_the_same_on_the_seeds(
    seeds_run: RunResult, encoder, tmp_path: Path, kind: str
):
    result = run_on(SEEDS, tmp_path / "out", encoder, f"index.kind={kind}")
    assert read(result.output, "runs").column("index_kind").to_pylist() == [kind]
    clusters, pairs, _ = findings(result.output)
    expected_clusters, expected_pairs, _ = findings(seeds_run.output)
    assert clusters == expected_clusters
    # HNSW computes inner products on another code path: the same pairs, similarities equal to 1e-6.
    assert [(p["paragraph_id_a"], p["paragraph_id_b"], p["cluster_id"]) for p in pairs] == [
        (p["paragraph_id_a"], p["paragraph_id_b"], p["cluster_id"]) for p in expected_pairs
    ]
    assert [p["similarity"] for p in pairs] == pytest.approx(
        [p["similarity"] for p in expected_pairs], abs=1e-6
    )


def test_a_corpus_with_nothing_to_cluster_runs_cleanly(encoder, tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    (data / "a.txt").write_text("Breaking news\nSource: Reuters\nMore soon\n")
    result = run_on(data, tmp_path / "out", encoder, "index.kind=ivf")
    assert result.status == "succeeded" and result.counts["n_clustered_candidates"] == 0
    assert read(result.output, "clusters").num_rows == 0
    assert read(result.output, "paragraphs").column("excluded_reason").to_pylist() == [
        "short",
        "boilerplate",
        "short",
    ]


def test_torch_backend_finds_what_the_default_backend_finds(seeds_run: RunResult, tmp_path: Path) -> None:
    torch_run = run_on(
        SEEDS, tmp_path / "out", None, "embed.backend=torch", f"embed.cache_path={tmp_path / 'c'}"
    )
    members = {(p["paragraph_id"], p["cluster_id"]) for p in rows(torch_run.output, "paragraphs")}
    assert members == {(p["paragraph_id"], p["cluster_id"]) for p in rows(seeds_run.output, "paragraphs")}
    identity = {
        run["model_identity"] for run in rows(torch_run.output, "runs") + rows(seeds_run.output, "runs")
    }
    assert len(identity) == 2  # two backends, two cache namespaces


def test_a_large_run_is_estimated_and_one_that_cannot_fit_says_so() -> None:
    fits = estimate(1_200_000, 1_000_000, "onnx", 2)
    assert fits.startswith("1,200,000 paragraphs, 1,000,000 to embed") and "(fits)" in fits
    # Twice the threads, half the embedding time.
    minutes = [float(estimate(10**6, 10**6, "onnx", t).split("about ")[1].split(" min")[0]) for t in (2, 4)]
    assert minutes[0] == pytest.approx(2 * minutes[1], rel=0.01)
    assert "DOES NOT FIT" in estimate(10**9, 10**9, "onnx", 2)


def test_the_encoder_factory_hands_out_its_model_here_and_ships_as_its_config(
    encoder, export_dir: Path
) -> None:
    embed = EmbedConfig(export_path=export_dir)  # the default config's model, with a progress bar
    factory = ConfiguredEncoder(embed, loaded=encoder)
    assert factory(2) is encoder  # a loaded model (the tests' own) is what this process uses
    vectors, counts = LocalExecutor(threads=2).encode(["Venezuela closed its airspace."], factory)
    assert vectors.tolist() == encoder.encode(["Venezuela closed its airspace."]).tolist() and counts[0] > 2
    # A worker gets the config alone and loads its own model, without a progress bar.
    shipped = pickle.loads(pickle.dumps(factory))
    assert shipped.embed == embed.model_copy(update={"progress": False})
    loaded = shipped(1)
    assert loaded is not encoder and loaded.identity == encoder.identity and shipped(1) is loaded
