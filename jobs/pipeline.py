"""The run loop: ingest -> paragraphs -> embed -> history -> index and candidate pairs -> match -> (verify) ->
cluster -> write.

Each stage is a function of its own module, called with its inputs, its config section and the executor's
map or encode; this module only runs them in order, times them, and commits (jobs/commit.py) the tables
jobs/rows.py builds from their results. A run starts by repairing what killed runs left in its output folder,
and ends, once committed, by writing its HTML report (jobs/report.py) when ``report.enabled``.

With history (jobs/history.py), the earlier days' clustered paragraphs follow the run's own as extra rows of
the index and the cluster graph; only pairs with one of the run's own paragraphs are judged, the earlier
runs' links inside the clusters those pairs touch are added, and jobs/lineage.py names the clusters.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embeddings.encoder import Encoder
from embeddings.index import index_kind, save_index, set_threads
from embeddings.models import resolve_adapter
from embeddings.progress import Progress
from jobs import commit, history, tables
from jobs.clusters import Cluster, cluster_pairs
from jobs.config import ConfigError, JobConfig
from jobs.embed import Embedder, embed_paragraphs
from jobs.executors import make_executor
from jobs.ingest import read_articles
from jobs.lineage import MERGED, SPLIT, Lineage, lineages
from jobs.neighbours import nearest_neighbours
from jobs.pairs import candidate_pairs, judge_pairs, judge_same_fact
from jobs.paragraphs import excluded_reason, split_articles
from jobs.parallel import Executor
from jobs.report import write_report
from jobs.rows import build_tables, run_counts, runs_table
from jobs.same_fact import COPY, REWRITE
from jobs.sizing import LARGE_RUN, default_threads, estimate

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run did: its id, where it wrote, and the counts and seconds also stored in the runs table."""

    run_id: str
    run_date: dt.date
    output: Path
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


class _Stopwatch:
    """Times each stage and logs its counts, e.g. ``stage ingest: articles=5 rejects=0 (0.01 s)``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[dict[str, int]]:
        counts: dict[str, int] = {}
        start = time.perf_counter()
        yield counts
        self.seconds[name] = round(time.perf_counter() - start, 3)
        summary = " ".join(f"{key}={value}" for key, value in counts.items())
        log.info("stage %s: %s (%.2f s)", name, summary, self.seconds[name])


def _check_writable(folder: Path, key: str) -> None:
    """Fail before any work when ``folder`` cannot be created or written."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{key} {folder} is a file, not a folder: point {key} at a folder")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"{key} {folder}: {existing} is a file, not a folder: change {key}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{key} {folder}: cannot write to {existing}: fix its permissions or change {key}")


def _write_report(config: JobConfig, run_id: str) -> None:
    """The run's HTML report; the run is committed by now, so a failure here is a warning, not a failed run."""
    try:
        path = write_report(
            config.output.path, config.report, lock_timeout=config.output.lock_timeout, run_id=run_id
        )
    except Exception as exc:
        log.warning(
            "run %s is committed, but its HTML report was not written (%s: %s): rerun `newsdedup report "
            "--output %s --run-id %s`",
            run_id,
            type(exc).__name__,
            exc,
            config.output.path,
            run_id,
        )
        return
    log.info("report: %s", path)


def run_job(config: JobConfig, encoder: Encoder | None = None) -> RunResult:
    """Run the whole job as configured and commit its tables; raises before writing anything on bad input.

    ``encoder`` overrides the configured model (the tests pass one loaded model to many runs); with the
    ray executor it only names the model and its cache, and Ray's actors load the configured model.
    """
    started = dt.datetime.now(dt.UTC)
    run_date = config.run_date or started.date()
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    _check_writable(config.output.path, "output.path")
    if config.embed.cache_path is not None:
        _check_writable(config.embed.cache_path, "embed.cache_path")
    if config.output.path.is_dir():  # a new folder has nothing to repair, and stays unwritten on bad input
        commit.repair(
            config.output.path, lock_timeout=config.output.lock_timeout, holder=f"run {run_id} (repairing)"
        )
    threads = config.threads or default_threads()
    set_threads(threads)
    watch = _Stopwatch()
    log.info("run %s for %s: input %s -> output %s", run_id, run_date, config.input.path, config.output.path)
    executor = make_executor(config.executor, config.ray, threads)
    try:
        return _run(config, encoder, executor, run_id, run_date, started, threads, watch)
    finally:
        executor.close()


def _run(
    config: JobConfig,
    encoder: Encoder | None,
    executor: Executor,
    run_id: str,
    run_date: dt.date,
    started: dt.datetime,
    threads: int,
    watch: _Stopwatch,
) -> RunResult:
    if config.verify.model is not None:
        resolve_adapter(config.verify.model, key="verify.model")  # a missing verifier stops the run now
    with watch.stage("ingest") as info:
        ingested = read_articles(config.input, executor.map_data)
        info.update(files=ingested.files, articles=len(ingested.articles), rejects=len(ingested.rejects))
    if ingested.rejects:
        first = "; ".join(
            f"{r.source} {r.record}: {r.reason}".replace("  ", " ") for r in ingested.rejects[:3]
        )
        log.warning(
            "%d record(s) rejected (the rejects table has each, with what to do); first: %s",
            len(ingested.rejects),
            first,
        )

    with watch.stage("paragraphs") as info:
        paragraphs = split_articles(ingested.articles, config.paragraphs, executor.map_data)
        excluded = [
            excluded_reason(p, config.paragraphs.min_words, config.cluster.include_boilerplate)
            for p in paragraphs
        ]
        info.update(
            paragraphs=len(paragraphs),
            boilerplate=sum(p.is_boilerplate for p in paragraphs),
            to_cluster=excluded.count(None),
        )
    if len(paragraphs) >= LARGE_RUN:
        log.warning(
            "large run: %s", estimate(len(paragraphs), excluded.count(None), config.embed.backend, threads)
        )

    embedder = Embedder(
        config.embed, executor.encode, cache_folder=_cache_folder(config), threads=threads, encoder=encoder
    )
    with watch.stage("embed") as info, _cache_errors(_cache_folder(config)):
        embedded = embed_paragraphs(
            ingested.articles, paragraphs, excluded, embedder, max_chars=config.paragraphs.max_chars
        )
        info.update(distinct=embedded.n_unique, from_cache=embedded.n_cache_hits, encoded=embedded.n_encoded)

    with watch.stage("history") as info:
        past = history.load(
            config.output.path,
            run_date,
            config.history.days,
            model_identity=embedded.model_identity,
            skip_articles={a.article_id for a in ingested.articles},
            dim=embedded.vectors.shape[1],
            max_chars=config.paragraphs.max_chars,
        )
        read = history.extend(history.Read(ingested.articles, paragraphs, excluded, embedded), past)
        info.update(paragraphs=len(past.read.paragraphs), clustered=int(past.read.embedded.rows.size))
    # The run's own clustered paragraphs are the first rows of read.embedded, the history's follow.
    own_rows = int(embedded.rows.size)
    both = read.embedded

    with watch.stage("index") as info:
        index, neighbours = nearest_neighbours(
            both.vectors,
            config.index,
            executor.map,
            executor.parallelism,
            copies=both.max_copies,
            centroids_cache=_cache_folder(config) / "ivf-centroids" if config.embed.cache else None,
        )
        pairs, n_apart = candidate_pairs(
            neighbours, both.vectors, both.texts, both.published, config.match, own_rows
        )
        info.update(vectors=index.ntotal, candidates=len(pairs), apart=n_apart)

    with watch.stage("match") as info, _cache_errors(_cache_folder(config)):  # it embeds whole articles too
        article_of, context = history.match_context(read, len(ingested.articles), pairs)
        pairs = judge_same_fact(
            pairs, both.texts, both.vectors, article_of, context, embedder.vectors, config.match
        )
        info.update(
            copies=int(np.count_nonzero(pairs.link == COPY)),
            rewrites=int(np.count_nonzero(pairs.link == REWRITE)),
        )

    n_rejected = 0
    if config.verify.model is not None:
        with watch.stage("verify") as info:
            linked = int(pairs.linked_mask().sum())
            pairs = judge_pairs(pairs, both.texts, config.verify, threads=threads)
            n_rejected = linked - int(pairs.linked_mask().sum())
            info.update(judged=int(np.count_nonzero(~np.isnan(pairs.probability))), rejected=n_rejected)
    judged = pairs

    with watch.stage("cluster") as info:
        touched = np.unique(np.concatenate([pairs.a, pairs.b]))
        links = history.history_links(
            past, read, touched[touched >= own_rows], with_probability=pairs.probability is not None
        )
        pairs = history.with_links(pairs, links)
        _, text_ids = np.unique(np.array(both.texts, dtype=object), return_inverse=True)
        clusters = cluster_pairs(
            pairs,
            both.vectors,
            text_ids,
            config.cluster,
            executor.map,
            executor.parallelism,
        )
        # Rows become paragraph indices here, once: the tables name every paragraph by its index among all.
        clusters = [cluster.renumbered(both.rows) for cluster in clusters]
        pairs = pairs.renumbered(both.rows)
        lineage = _lineage(read, clusters, past, run_date)
        own = len(paragraphs)
        # Clusters holding a paragraph of this run, and the parts of an earlier cluster that split or merged
        # without one (their members' latest cluster changes, so the day's tables say so).
        kept = [
            k
            for k, cluster in enumerate(clusters)
            if int(cluster.members.min()) < own or lineage[k].change in (SPLIT, MERGED)
        ]
        clusters, lineage = [clusters[k] for k in kept], [lineage[k] for k in kept]
        info.update(clusters=len(clusters), history_links=len(links))

    staged = commit.StagedRun(config.output.path, run_id, run_date, lock_timeout=config.output.lock_timeout)
    try:
        with watch.stage("write") as info:
            built = build_tables(run_id, run_date, ingested, read, pairs, clusters, lineage)
            with Progress(sum(t.num_rows for t in built.values()), "write", "row") as progress:
                for name, table in built.items():
                    staged.write_table(name, table)
                    info[name] = table.num_rows
                    progress.update(table.num_rows)
            if config.index.save and index.ntotal:
                _stage_index(staged, index, [read.paragraphs[i].paragraph_id for i in both.rows])
            history.store(staged, read, pairs, [cluster.members for cluster in clusters])
        counts = run_counts(
            ingested,
            paragraphs,
            embedded,
            built,
            judged,
            n_apart=n_apart,
            n_rejected=n_rejected,
        )
        status = "succeeded" if ingested.articles else "empty"
        finished = dt.datetime.now(dt.UTC)
        watch.seconds["total"] = round((finished - started).total_seconds(), 3)
        runs = runs_table(
            run_id,
            started=started,
            finished=finished,
            status=status,
            config=config,
            model_identity=embedded.model_identity,
            index_kind=index_kind(index),
            threads=threads,
            executor=executor,
            counts=counts,
            seconds=watch.seconds,
        )
        staged.write_table("runs", runs)
        files = staged.commit(replace_date=config.output.mode == "replace_date")
    except BaseException:
        staged.abort()
        raise
    log.info("run %s %s: %s", run_id, status, ", ".join(f"{k}={v}" for k, v in counts.items()))
    if config.report.enabled:
        _write_report(config, run_id)
    return RunResult(run_id, run_date, config.output.path, status, counts, watch.seconds, files)


def _lineage(
    read: history.Read, clusters: list[Cluster], past: history.History, run_date: dt.date
) -> list[Lineage]:
    """Each cluster's id and change against the earlier clusters its members belonged to (jobs/lineage.py)."""
    own = len(read.paragraphs) - len(read.origin)
    day = [run_date] * own + [d for _, d in read.origin]
    return lineages(
        [[read.paragraphs[i].paragraph_id for i in c.members.tolist()] for c in clusters],
        [
            [read.articles[read.paragraphs[i].article_index].outlet for i in c.members.tolist()]
            for c in clusters
        ],
        [[day[i] for i in c.members.tolist()] for c in clusters],
        past.previous,
        past.earlier,
    )


def _cache_folder(config: JobConfig) -> Path:
    """Where reruns find earlier work: vectors and token counts per model, trained IVF centroids."""
    return config.embed.cache_path or config.output.path / "_cache" / "embeddings"


@contextmanager
def _cache_errors(folder: Path) -> Iterator[None]:
    """SQLite says "database or disk is full" without a path: name the cache, and what to do."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        advice = (
            "free space on its disk, set embed.cache_path to a folder on another disk, or set embed.cache: false"
            if "full" in str(exc)
            else "check that no other program holds it, or set embed.cache: false"
        )
        raise commit.OutputError(
            f"cannot use the embedding cache in {folder}: {exc}: {advice}; nothing was committed"
        ) from exc


def _stage_index(staged: commit.StagedRun, index: object, ids: list[str]) -> None:
    """Save the FAISS index with the paragraph id of each of its rows, so a later job can reuse it."""
    folder = Path(tables.INDEX) / f"run_date={staged.run_date.isoformat()}"
    staged.write_file(folder / f"{staged.run_id}.faiss", lambda path: save_index(index, path))
    ids_table = pa.table({"paragraph_id": ids})
    staged.write_file(folder / f"{staged.run_id}.ids.parquet", lambda path: pq.write_table(ids_table, path))
