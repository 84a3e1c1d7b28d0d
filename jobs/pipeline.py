"""One run of the batch job on this machine: ingest -> paragraphs -> embed -> index -> cluster -> write.

Each stage is a function of its own module with plain inputs and outputs; this module only runs them in
order, times them, and turns their results into the output tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import logging
import os
import platform
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from embeddings.encoder import Encoder
from embeddings.index import build_index, index_kind, save_index, search, set_threads
from embeddings.models import resolve_adapter
from jobs import tables
from jobs.clusters import Cluster, cluster_pairs
from jobs.config import ConfigError, JobConfig
from jobs.embed import Embedded, embed_paragraphs
from jobs.executors import describe, make_executor
from jobs.ingest import Article, IngestResult, read_articles
from jobs.pairs import Pairs, judge_pairs, threshold_pairs, within_days
from jobs.paragraphs import Paragraph, excluded_reason, split_articles
from jobs.parallel import Executor
from jobs.sizing import LARGE_RUN, default_threads, estimate

log = logging.getLogger(__name__)

CROSS_OUTLET = "cross_outlet"
SINGLE_OUTLET = "single_outlet"
_VERSIONED = {
    "newsdedup": "newsdedup",
    "torch": "torch",
    "sentence_transformers": "sentence-transformers",
    "transformers": "transformers",
    "faiss": "faiss-cpu",
    "hdbscan": "hdbscan",
    "pyarrow": "pyarrow",
    "numpy": "numpy",
    "onnxruntime": "onnxruntime",
    "ray": "ray",
}


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

    with watch.stage("embed") as info:
        embedded = embed_paragraphs(
            paragraphs,
            excluded,
            config.embed,
            executor.encode,
            max_chars=config.paragraphs.max_chars,
            cache_folder=_cache_folder(config),
            threads=threads,
            encoder=encoder,
        )
        info.update(distinct=embedded.n_unique, from_cache=embedded.n_cache_hits, encoded=embedded.n_encoded)

    with watch.stage("index") as info:
        index = build_index(
            embedded.vectors,
            **config.index.model_dump(exclude={"k", "save"}),
            centroids_cache=_cache_folder(config) / "ivf-centroids" if config.embed.cache else None,
            map=executor.map,
            shards=executor.parallelism,
        )
        neighbours = search(
            index,
            embedded.vectors,
            config.index.k,
            executor.map,
            executor.parallelism,
            copies=embedded.max_copies,
        )
        c = config.cluster
        pairs = threshold_pairs(neighbours, c.threshold)
        n_near = len(pairs)
        if c.max_days_apart is not None:
            published = _published_seconds(ingested.articles, paragraphs, embedded.rows)
            pairs = within_days(pairs, published, c.max_days_apart)
        info.update(vectors=index.ntotal, pairs=len(pairs), apart=n_near - len(pairs))

    accepted = pairs
    if config.verify.model is not None:
        with watch.stage("verify") as info:
            texts = [paragraphs[i].norm_text[: config.paragraphs.max_chars] for i in embedded.rows]
            pairs = judge_pairs(
                pairs, texts, config.verify, copy_similarity=config.cluster.copy_similarity, threads=threads
            )
            accepted = pairs.accepted(config.verify.min_probability)
            info.update(judged=int(np.count_nonzero(~np.isnan(pairs.probability))), accepted=len(accepted))

    with watch.stage("cluster") as info:
        clusters = cluster_pairs(
            accepted,
            embedded.vectors,
            c.threshold,
            min_cluster_size=c.min_cluster_size,
            min_samples=c.min_samples,
            copy_similarity=c.copy_similarity,
            attach_similarity=c.attach_similarity,
            max_component_size=c.max_component_size,
            map=executor.map,
            shards=executor.parallelism,
        )
        info.update(clusters=len(clusters))

    staged = tables.StagedRun(config.output.path, run_id, run_date)
    try:
        with watch.stage("write") as info:
            built = _build_tables(run_id, ingested, paragraphs, excluded, embedded, pairs, clusters)
            for name, table in built.items():
                staged.write_table(name, table)
                info[name] = table.num_rows
            if config.index.save and index.ntotal:
                _stage_index(staged, index, [paragraphs[i].paragraph_id for i in embedded.rows])
        counts = _counts(
            ingested,
            paragraphs,
            embedded,
            built,
            n_apart=n_near - len(pairs),
            n_rejected=len(pairs) - len(accepted),
        )
        status = "succeeded" if ingested.articles else "empty"
        finished = dt.datetime.now(dt.UTC)
        watch.seconds["total"] = round((finished - started).total_seconds(), 3)
        runs = _runs_table(
            run_id,
            started,
            finished,
            status,
            config,
            embedded,
            index_kind(index),
            threads,
            executor,
            counts,
            watch.seconds,
        )
        staged.write_table("runs", runs)
        files = staged.commit(replace_date=config.output.mode == "replace_date")
    except BaseException:
        staged.abort()
        raise
    log.info("run %s %s: %s", run_id, status, ", ".join(f"{k}={v}" for k, v in counts.items()))
    return RunResult(run_id, run_date, config.output.path, status, counts, watch.seconds, files)


def _published_seconds(
    articles: Sequence[Article], paragraphs: Sequence[Paragraph], rows: np.ndarray
) -> np.ndarray:
    """Each clustered paragraph's publication time in seconds since the epoch; NaN when its article has none."""
    times = [articles[paragraphs[i].article_index].published_at for i in rows]
    return np.array([np.nan if t is None else t.timestamp() for t in times], dtype=np.float64)


def _cache_folder(config: JobConfig) -> Path:
    """Where reruns find earlier work: vectors and token counts per model, trained IVF centroids."""
    return config.embed.cache_path or config.output.path / "_cache" / "embeddings"


def cluster_id(member_ids: Sequence[str]) -> str:
    """Content-addressed id: the same members give the same id on every run."""
    return hashlib.blake2b("\n".join(sorted(member_ids)).encode(), digest_size=8).hexdigest()


def _build_tables(
    run_id: str,
    ingested: IngestResult,
    paragraphs: Sequence[Paragraph],
    excluded: Sequence[str | None],
    embedded: Embedded,
    pairs: Pairs,
    clusters: Sequence[Cluster],
) -> dict[str, pa.Table]:
    articles = ingested.articles
    n = len(paragraphs)
    pid = [p.paragraph_id for p in paragraphs]
    outlet_of = [articles[p.article_index].outlet for p in paragraphs]

    # Per-paragraph cluster membership (indices into all paragraphs).
    member_cluster: list[str | None] = [None] * n
    member_sim = np.full(n, np.nan, dtype=np.float32)
    cluster_rows = []
    for cluster in clusters:
        rows = embedded.rows[cluster.members]
        cid = cluster_id([pid[r] for r in rows])
        for r, sim in zip(rows, cluster.similarity, strict=True):
            member_cluster[r] = cid
            member_sim[r] = sim
        cluster_rows.append(
            _cluster_row(
                cid,
                rows,
                int(embedded.rows[cluster.representative]),
                cluster.similarity,
                cluster.members == cluster.representative,
                paragraphs,
                articles,
            )
        )
    cluster_rows.sort(key=lambda r: (-r["n_outlets"], -r["n_paragraphs"], r["cluster_id"]))
    cross = {r["cluster_id"] for r in cluster_rows if r["kind"] == CROSS_OUTLET}

    n_tokens: list[int | None] = [None] * n
    truncated: list[bool | None] = [None] * n
    for j, r in enumerate(embedded.rows):
        n_tokens[r] = int(embedded.n_tokens[j])
        truncated[r] = bool(embedded.truncated[j])

    shared = np.zeros(len(articles), dtype=np.int32)
    for p, cid in zip(paragraphs, member_cluster, strict=True):
        if cid in cross:
            shared[p.article_index] += 1
    n_par = np.bincount([p.article_index for p in paragraphs], minlength=len(articles)).astype(np.int32)

    out = {
        "articles": tables.to_table(
            "articles",
            {
                "run_id": [run_id] * len(articles),
                "article_id": [a.article_id for a in articles],
                "outlet": [a.outlet for a in articles],
                "title": [a.title for a in articles],
                "url": [a.url for a in articles],
                "published_at": [a.published_at for a in articles],
                "source": [a.source for a in articles],
                "n_paragraphs": n_par,
                "n_paragraphs_shared": shared,
            },
        ),
        "paragraphs": tables.to_table(
            "paragraphs",
            {
                "run_id": [run_id] * n,
                "paragraph_id": pid,
                "article_id": [articles[p.article_index].article_id for p in paragraphs],
                "outlet": outlet_of,
                "position": [p.position for p in paragraphs],
                "text": [p.text for p in paragraphs],
                "text_hash": [p.text_hash for p in paragraphs],
                "n_words": [p.n_words for p in paragraphs],
                "n_tokens": n_tokens,
                "truncated": truncated,
                "is_boilerplate": [p.is_boilerplate for p in paragraphs],
                "boilerplate_reason": [p.boilerplate_reason for p in paragraphs],
                "excluded_reason": list(excluded),
                "cluster_id": member_cluster,
                "similarity_to_representative": pa.array(member_sim, mask=np.isnan(member_sim)),
            },
        ),
        "clusters": tables.to_table(
            "clusters",
            {name: [r[name] for r in cluster_rows] for name in tables.CLUSTERS.names if name != "run_id"}
            | {"run_id": [run_id] * len(cluster_rows)},
        ),
        "pairs": _pairs_table(run_id, pairs, embedded.rows, pid, outlet_of, member_cluster),
        "rejects": tables.to_table(
            "rejects",
            {
                "run_id": [run_id] * len(ingested.rejects),
                "source": [r.source for r in ingested.rejects],
                "record": [r.record for r in ingested.rejects],
                "reason": [r.reason for r in ingested.rejects],
            },
        ),
    }
    return out


def _cluster_row(
    cid: str,
    rows: np.ndarray,
    representative: int,
    similarity: np.ndarray,
    is_representative: np.ndarray,
    paragraphs: Sequence[Paragraph],
    articles: Sequence[Article],
) -> dict:
    member_articles = sorted({paragraphs[r].article_index for r in rows})
    outlets = sorted({articles[a].outlet for a in member_articles})
    others = similarity[~is_representative]
    dated = [
        (articles[a].published_at, articles[a].article_id, a)
        for a in member_articles
        if articles[a].published_at
    ]
    first = min(dated) if dated else None
    return {
        "cluster_id": cid,
        "kind": CROSS_OUTLET if len(outlets) >= 2 else SINGLE_OUTLET,
        "n_paragraphs": len(rows),
        "n_articles": len(member_articles),
        "n_outlets": len(outlets),
        "outlets": outlets,
        "representative_paragraph_id": paragraphs[representative].paragraph_id,
        "representative_text": paragraphs[representative].text,
        "mean_similarity": float(others.mean()),
        "min_similarity": float(others.min()),
        "first_published_at": first[0] if first else None,
        "first_outlet": articles[first[2]].outlet if first else None,
    }


def _pairs_table(
    run_id: str,
    pairs: Pairs,
    rows: np.ndarray,
    pid: Sequence[str],
    outlet_of: Sequence[str],
    member_cluster: Sequence[str | None],
) -> pa.Table:
    records = []
    probability = pairs.probability if pairs.probability is not None else np.full(len(pairs), np.nan)
    for a, b, sim, p in zip(rows[pairs.a], rows[pairs.b], pairs.similarity, probability, strict=True):
        a, b = (a, b) if pid[a] < pid[b] else (b, a)
        same = member_cluster[a] if member_cluster[a] == member_cluster[b] else None
        verified = None if np.isnan(p) else float(p)
        records.append((pid[a], pid[b], float(sim), outlet_of[a] != outlet_of[b], same, verified))
    records.sort()
    columns = list(zip(*records, strict=True)) if records else [[] for _ in range(6)]
    return tables.to_table(
        "pairs",
        {
            "run_id": [run_id] * len(records),
            "paragraph_id_a": columns[0],
            "paragraph_id_b": columns[1],
            "similarity": columns[2],
            "cross_outlet": columns[3],
            "cluster_id": columns[4],
            "verifier_probability": columns[5],
        },
    )


def _stage_index(staged: tables.StagedRun, index: object, ids: list[str]) -> None:
    """Save the FAISS index with the paragraph id of each of its rows, so a later job can reuse it."""
    folder = Path(tables.INDEX) / f"run_date={staged.run_date.isoformat()}"
    save_index(index, staged.stage_path(folder / f"{staged.run_id}.faiss"))
    pq.write_table(
        pa.table({"paragraph_id": ids}), staged.stage_path(folder / f"{staged.run_id}.ids.parquet")
    )


def _counts(
    ingested: IngestResult,
    paragraphs: Sequence[Paragraph],
    embedded: Embedded,
    built: dict[str, pa.Table],
    *,
    n_apart: int,
    n_rejected: int,
) -> dict[str, int]:
    kinds = built["clusters"].column("kind").to_pylist()
    return {
        "n_input_files": ingested.files,
        "n_articles": len(ingested.articles),
        "n_rejects": len(ingested.rejects),
        "n_paragraphs": len(paragraphs),
        "n_boilerplate": sum(p.is_boilerplate for p in paragraphs),
        "n_clustered_candidates": int(embedded.rows.size),
        "n_unique_texts": embedded.n_unique,
        "n_cache_hits": embedded.n_cache_hits,
        "n_embedded": embedded.n_encoded,
        "n_truncated": int(embedded.truncated.sum()),
        "n_pairs": built["pairs"].num_rows,
        "n_pairs_apart": n_apart,
        "n_pairs_rejected": n_rejected,
        "n_clusters": len(kinds),
        "n_cross_outlet_clusters": kinds.count(CROSS_OUTLET),
    }


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in _VERSIONED.items():
        try:
            found[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[key] = None
    return found


def _runs_table(
    run_id: str,
    started: dt.datetime,
    finished: dt.datetime,
    status: str,
    config: JobConfig,
    embedded: Embedded,
    kind: str,
    threads: int,
    executor: Executor,
    counts: dict[str, int],
    seconds: dict[str, float],
) -> pa.Table:
    row = {
        "run_id": run_id,
        "started_at": started,
        "finished_at": finished,
        "status": status,
        "config_json": config.canonical_json(),
        "config_hash": config.config_hash(),
        "input_path": str(config.input.path),
        "model": config.embed.model,
        "model_identity": embedded.model_identity,
        "index_kind": kind,
        "threads": threads,
        "executor": executor.name,
        "executor_resources": describe(executor),
        **counts,
        **{
            f"seconds_{stage}": seconds.get(stage, 0.0)
            for stage in ("ingest", "paragraphs", "embed", "index", "verify", "cluster", "write", "total")
        },
        "versions": _versions(),
    }
    return tables.to_table("runs", {name: [value] for name, value in row.items()})
