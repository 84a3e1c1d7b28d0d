"""The rows of the output tables (their schemas are in jobs/tables.py): the articles, paragraphs, clusters,
pairs and rejects a run found, and the one row it adds to the runs table."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import platform
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from jobs import tables
from jobs.clusters import Cluster
from jobs.config import JobConfig
from jobs.embed import Embedded
from jobs.pairs import Pairs
from jobs.paragraphs import Paragraph
from jobs.parallel import Executor
from jobs.records import Article, IngestResult
from jobs.same_fact import COPY, LINK_NAMES, REWRITE

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


def cluster_id(member_ids: Sequence[str]) -> str:
    """Content-addressed id: the same members give the same id on every run."""
    return hashlib.blake2b("\n".join(sorted(member_ids)).encode(), digest_size=8).hexdigest()


def build_tables(
    run_id: str,
    ingested: IngestResult,
    paragraphs: Sequence[Paragraph],
    excluded: Sequence[str | None],
    embedded: Embedded,
    pairs: Pairs,
    clusters: Sequence[Cluster],
) -> dict[str, pa.Table]:
    """Every table but runs, from what the stages found; ``pairs`` and ``clusters`` name paragraphs by their
    index in ``paragraphs``."""
    articles = ingested.articles
    n = len(paragraphs)
    pid = [p.paragraph_id for p in paragraphs]
    outlet_of = [articles[p.article_index].outlet for p in paragraphs]

    # Per-paragraph cluster membership, and how each member shares its cluster's reporting.
    member_cluster: list[str | None] = [None] * n
    member_link: list[str | None] = [None] * n
    member_sim = np.full(n, np.nan, dtype=np.float32)
    cluster_rows = []
    copies = (
        pairs.subset(pairs.link == COPY)
        if pairs.link is not None
        else pairs.subset(np.zeros(len(pairs), bool))
    )
    copy_pairs = set(zip(copies.a.tolist(), copies.b.tolist(), strict=True))
    for cluster in clusters:
        cid = cluster_id([pid[i] for i in cluster.members])
        links = _member_links(cluster, paragraphs, copy_pairs)
        for i, sim, link in zip(cluster.members, cluster.similarity, links, strict=True):
            member_cluster[i] = cid
            member_sim[i] = sim
            member_link[i] = link
        cluster_rows.append(_cluster_row(cid, cluster, links, paragraphs, articles))
    cluster_rows.sort(key=lambda r: (-r["n_outlets"], -r["n_paragraphs"], r["cluster_id"]))
    cross = {r["cluster_id"] for r in cluster_rows if r["kind"] == CROSS_OUTLET}

    n_tokens: list[int | None] = [None] * n
    truncated: list[bool | None] = [None] * n
    for i, count, cut in zip(embedded.rows, embedded.n_tokens, embedded.truncated, strict=True):
        n_tokens[i] = int(count)
        truncated[i] = bool(cut)

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
                "link": member_link,
                "similarity_to_representative": pa.array(member_sim, mask=np.isnan(member_sim)),
            },
        ),
        "clusters": tables.to_table(
            "clusters",
            {name: [r[name] for r in cluster_rows] for name in tables.CLUSTERS.names if name != "run_id"}
            | {"run_id": [run_id] * len(cluster_rows)},
        ),
        "pairs": _pairs_table(run_id, pairs, pid, outlet_of, member_cluster),
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


def _member_links(
    cluster: Cluster, paragraphs: Sequence[Paragraph], copy_pairs: set[tuple[int, int]]
) -> list[str]:
    """Each member's link to the representative: 'copy' when copies (identical text, or pairs judged copies)
    lead from the representative to it within the cluster, else 'rewrite'."""
    members = cluster.members.tolist()
    reached = {cluster.representative}
    text = {paragraphs[cluster.representative].text_hash}
    grew = True
    while grew:
        grew = False
        for i in members:
            if i not in reached and (
                paragraphs[i].text_hash in text or any((min(i, j), max(i, j)) in copy_pairs for j in reached)
            ):
                reached.add(i)
                text.add(paragraphs[i].text_hash)
                grew = True
    return [
        "representative" if i == cluster.representative else "copy" if i in reached else "rewrite"
        for i in members
    ]


def _cluster_row(
    cid: str,
    cluster: Cluster,
    links: Sequence[str],
    paragraphs: Sequence[Paragraph],
    articles: Sequence[Article],
) -> dict:
    member_articles = sorted({paragraphs[i].article_index for i in cluster.members})
    outlets = sorted({articles[a].outlet for a in member_articles})
    others = cluster.similarity[cluster.members != cluster.representative]
    dated = [
        (articles[a].published_at, articles[a].article_id, a)
        for a in member_articles
        if articles[a].published_at
    ]
    first = min(dated) if dated else None
    return {
        "cluster_id": cid,
        "kind": CROSS_OUTLET if len(outlets) >= 2 else SINGLE_OUTLET,
        "n_paragraphs": len(cluster.members),
        "n_articles": len(member_articles),
        "n_outlets": len(outlets),
        "outlets": outlets,
        "link": "rewrite" if "rewrite" in links else "copy",
        "n_copies": links.count("copy"),
        "n_rewrites": links.count("rewrite"),
        "representative_paragraph_id": paragraphs[cluster.representative].paragraph_id,
        "representative_text": paragraphs[cluster.representative].text,
        "mean_similarity": float(others.mean()),
        "min_similarity": float(others.min()),
        "first_published_at": first[0] if first else None,
        "first_outlet": articles[first[2]].outlet if first else None,
    }


def _pairs_table(
    run_id: str,
    pairs: Pairs,
    pid: Sequence[str],
    outlet_of: Sequence[str],
    member_cluster: Sequence[str | None],
) -> pa.Table:
    records = []
    probability = pairs.probability if pairs.probability is not None else np.full(len(pairs), np.nan)
    for a, b, sim, fact, link, p in zip(
        pairs.a, pairs.b, pairs.similarity, pairs.same_fact, pairs.link, probability, strict=True
    ):
        a, b = (a, b) if pid[a] < pid[b] else (b, a)
        same = member_cluster[a] if member_cluster[a] == member_cluster[b] else None
        verified = None if np.isnan(p) else float(p)
        records.append(
            (
                pid[a],
                pid[b],
                float(sim),
                outlet_of[a] != outlet_of[b],
                float(fact),
                LINK_NAMES.get(int(link)),
                same,
                verified,
            )
        )
    records.sort()
    columns = list(zip(*records, strict=True)) if records else [[] for _ in range(8)]
    return tables.to_table(
        "pairs",
        {
            "run_id": [run_id] * len(records),
            "paragraph_id_a": columns[0],
            "paragraph_id_b": columns[1],
            "similarity": columns[2],
            "cross_outlet": columns[3],
            "same_fact_probability": columns[4],
            "link": columns[5],
            "cluster_id": columns[6],
            "verifier_probability": columns[7],
        },
    )


def run_counts(
    ingested: IngestResult,
    paragraphs: Sequence[Paragraph],
    embedded: Embedded,
    built: dict[str, pa.Table],
    pairs: Pairs,
    *,
    n_apart: int,
    n_rejected: int,
) -> dict[str, int]:
    """The counts of the runs table, from what the stages found and the tables built of it."""
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
        "n_links_copy": int(np.count_nonzero(pairs.link == COPY)),
        "n_links_rewrite": int(np.count_nonzero(pairs.link == REWRITE)),
        "n_pairs_rejected": n_rejected,
        "n_clusters": len(kinds),
        "n_cross_outlet_clusters": kinds.count(CROSS_OUTLET),
    }


def _versions() -> dict[str, str | None]:
    """Python's version and each package's in _VERSIONED (None: not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in _VERSIONED.items():
        try:
            found[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[key] = None
    return found


def runs_table(
    run_id: str,
    *,
    started: dt.datetime,
    finished: dt.datetime,
    status: str,
    config: JobConfig,
    model_identity: str | None,
    index_kind: str,
    threads: int,
    executor: Executor,
    counts: dict[str, int],
    seconds: dict[str, float],
) -> pa.Table:
    """The one row the runs table gets for a run: its config, what it ran on, its counts and seconds."""
    row = {
        "run_id": run_id,
        "started_at": started,
        "finished_at": finished,
        "status": status,
        "config_json": config.canonical_json(),
        "config_hash": config.config_hash(),
        "input_path": str(config.input.path),
        "model": config.embed.model,
        "model_identity": model_identity,
        "index_kind": index_kind,
        "threads": threads,
        "executor": executor.name,
        # The executor's resources as compact JSON.
        "executor_resources": json.dumps(executor.resources(), sort_keys=True, separators=(",", ":")),
        **counts,
        **{
            f"seconds_{stage}": seconds.get(stage, 0.0)
            for stage in (
                "ingest",
                "paragraphs",
                "embed",
                "index",
                "match",
                "verify",
                "cluster",
                "write",
                "total",
            )
        },
        "versions": _versions(),
    }
    return tables.to_table("runs", {name: [value] for name, value in row.items()})
