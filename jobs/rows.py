"""The rows of the output tables (their schemas are in jobs/tables.py): the articles, paragraphs, clusters,
pairs and rejects a run found, and the one row it adds to the runs table."""

from __future__ import annotations

import datetime as dt
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
from jobs.history import Read
from jobs.lineage import Lineage
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


def build_tables(
    run_id: str,
    run_date: dt.date,
    ingested: IngestResult,
    read: Read,
    pairs: Pairs,
    clusters: Sequence[Cluster],
    lineage: Sequence[Lineage],
) -> dict[str, pa.Table]:
    """Every table but runs, from what the stages found. ``read`` holds this run's articles and paragraphs
    first, then those of the history; ``pairs`` and ``clusters`` name paragraphs by their index in
    ``read.paragraphs``, and ``clusters`` are the ones this run reports (jobs/pipeline.py), named by ``lineage``.
    A history paragraph is in the tables only as a member of one of them."""
    articles = read.articles
    paragraphs = read.paragraphs
    n = len(paragraphs)
    own_articles = len(ingested.articles)
    own = len(read.paragraphs) - len(read.origin)
    pid = [p.paragraph_id for p in paragraphs]
    outlet_of = [articles[p.article_index].outlet for p in paragraphs]

    # Per-paragraph cluster membership, and how each member shares its cluster's reporting.
    member_cluster: list[str | None] = [None] * n
    member_link: list[str | None] = [None] * n
    member_sim = np.full(n, np.nan, dtype=np.float32)
    cluster_rows = []
    change_rows = []
    copies = (
        pairs.subset(pairs.link == COPY)
        if pairs.link is not None
        else pairs.subset(np.zeros(len(pairs), bool))
    )
    copy_pairs = set(zip(copies.a.tolist(), copies.b.tolist(), strict=True))
    for cluster, line in zip(clusters, lineage, strict=True):
        cid = line.cluster_id
        links = _member_links(cluster, paragraphs, copy_pairs)
        for i, sim, link in zip(cluster.members, cluster.similarity, links, strict=True):
            member_cluster[i] = cid
            member_sim[i] = sim
            member_link[i] = link
        cluster_rows.append(_cluster_row(cid, cluster, links, paragraphs, articles, line))
        if line.change is not None:
            change_rows.append(
                {
                    "cluster_id": cid,
                    "change": line.change,
                    "n_paragraphs": len(cluster.members),
                    "n_added": line.n_added,
                    "added_outlets": line.added_outlets,
                    "related_ids": line.related_ids,
                }
            )
    cluster_rows.sort(key=lambda r: (-r["n_outlets"], -r["n_paragraphs"], r["cluster_id"]))
    change_rows.sort(key=lambda r: r["cluster_id"])
    cross = {r["cluster_id"] for r in cluster_rows if r["kind"] == CROSS_OUTLET}

    n_tokens, truncated = read.embedded.token_columns(n)

    shared = np.zeros(own_articles, dtype=np.int32)
    for p, cid in zip(paragraphs[:own], member_cluster, strict=False):
        if cid in cross:
            shared[p.article_index] += 1
    n_par = np.bincount([p.article_index for p in paragraphs[:own]], minlength=own_articles).astype(np.int32)
    # This run's paragraphs, and the history paragraphs that joined its clusters.
    kept = [i for i in range(n) if i < own or member_cluster[i] is not None]
    origin = [(run_id, run_date)] * own + list(read.origin)
    articles = articles[:own_articles]

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
                "run_id": [run_id] * len(kept),
                "paragraph_id": [pid[i] for i in kept],
                "article_id": [read.articles[paragraphs[i].article_index].article_id for i in kept],
                "outlet": [outlet_of[i] for i in kept],
                "position": [paragraphs[i].position for i in kept],
                "text": [paragraphs[i].text for i in kept],
                "text_hash": [paragraphs[i].text_hash for i in kept],
                "n_words": [paragraphs[i].n_words for i in kept],
                "n_tokens": [n_tokens[i] for i in kept],
                "truncated": [truncated[i] for i in kept],
                "is_boilerplate": [paragraphs[i].is_boilerplate for i in kept],
                "boilerplate_reason": [paragraphs[i].boilerplate_reason for i in kept],
                "excluded_reason": [read.excluded[i] for i in kept],
                "cluster_id": [member_cluster[i] for i in kept],
                "link": [member_link[i] for i in kept],
                "similarity_to_representative": pa.array(member_sim[kept], mask=np.isnan(member_sim[kept])),
                "origin_run_id": [origin[i][0] for i in kept],
                "origin_run_date": [origin[i][1] for i in kept],
            },
        ),
        "clusters": tables.to_table(
            "clusters",
            {name: [r[name] for r in cluster_rows] for name in tables.CLUSTERS.names if name != "run_id"}
            | {"run_id": [run_id] * len(cluster_rows)},
        ),
        "pairs": _pairs_table(run_id, pairs, pid, outlet_of, member_cluster, own),
        "rejects": tables.to_table(
            "rejects",
            {
                "run_id": [run_id] * len(ingested.rejects),
                "source": [r.source for r in ingested.rejects],
                "record": [r.record for r in ingested.rejects],
                "reason": [r.reason for r in ingested.rejects],
            },
        ),
        "cluster_changes": tables.to_table(
            "cluster_changes",
            {
                name: [r[name] for r in change_rows]
                for name in tables.CLUSTER_CHANGES.names
                if name != "run_id"
            }
            | {"run_id": [run_id] * len(change_rows)},
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
    line: Lineage,
) -> dict:
    member_articles = sorted({paragraphs[i].article_index for i in cluster.members})
    outlets = sorted({articles[a].outlet for a in member_articles})
    others = cluster.similarity[cluster.members != cluster.representative]
    # Who reported first, over the whole history: the earliest of the members and of the earlier clusters
    # this one continues; named only when every member, here and there, is dated.
    dated = [
        (articles[a].published_at, articles[a].article_id, articles[a].outlet)
        for a in member_articles
        if articles[a].published_at
    ]
    earliest = [(e.first_published_at, e.first_article_id, e.first_outlet) for e in line.continues]
    first_published = min([t for t, _, _ in dated + earliest if t is not None], default=None)
    known = len(dated) == len(member_articles) and all(a is not None for _, a, _ in earliest)
    first = min(dated + earliest) if known else None
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
        "first_published_at": first_published,
        "first_outlet": first[2] if first else None,
        "first_article_id": first[1] if first else None,
        "first_seen_at": line.first_seen_at,
        "n_runs": line.n_runs,
    }


def _pairs_table(
    run_id: str,
    pairs: Pairs,
    pid: Sequence[str],
    outlet_of: Sequence[str],
    member_cluster: Sequence[str | None],
    own: int,
) -> pa.Table:
    """Pairs with a paragraph of this run (the first ``own``), and the history's links inside its clusters."""
    records = []
    probability = pairs.probability if pairs.probability is not None else np.full(len(pairs), np.nan)
    for a, b, sim, fact, link, p in zip(
        pairs.a, pairs.b, pairs.similarity, pairs.same_fact, pairs.link, probability, strict=True
    ):
        same = member_cluster[a] if member_cluster[a] == member_cluster[b] else None
        if min(a, b) >= own and same is None:
            continue
        a, b = (a, b) if pid[a] < pid[b] else (b, a)
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
    judged: Pairs,
    *,
    n_apart: int,
    n_rejected: int,
) -> dict[str, int]:
    """The counts of the runs table, from what the stages found and the tables built of it (``judged``: the
    pairs this run judged, without the history's links)."""
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
        "n_pairs": len(judged),
        "n_pairs_apart": n_apart,
        "n_links_copy": int(np.count_nonzero(judged.link == COPY)),
        "n_links_rewrite": int(np.count_nonzero(judged.link == REWRITE)),
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
                "history",
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
