"""History: what a run stores for the runs after it, and what it reads of the runs before it.

A run for run_date D reads the committed runs (jobs/commit.py: those whose ``runs`` file is in place) of its
output folder with a run_date in [D - history.days, D - 1]: never D or later, so a rerun or a backfill of D
finds the same history whatever ran after it. It adds their paragraphs to its own as extra rows of the
index, the candidate pairs and the cluster graph (jobs/pipeline.py), keeping only the pairs that involve one
of its own paragraphs plus the earlier runs' links inside the clusters those pairs touch, so an earlier
cluster stays whole and the work grows with the run's own volume, not with the history's.

Why a store of its own, ``_history/run_date=D/<run_id>.parquet``, rather than the embedding cache: the cache
may be switched off, cleared, shared or elsewhere, and holds vectors without the paragraphs they belong to;
the store is written in the run's atomic commit (and removed with its tables by ``replace_date``), so the
history is exactly the committed runs, and it holds all a later run needs to match against the run without
reading its input or embedding anything again: every paragraph of the run's own articles (the context the
same-fact model weighs a pair in) and the float32 vector of each clustered one, zstd-compressed.
``<run_id>.links.parquet`` keeps the run's judged pairs inside its clusters with their exact link codes.

An article read again (the same article id in a later run, or in this run) is taken from its latest read:
the history copy is dropped. Vectors of a run embedded by another model (model_identity) are not used.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jobs import commit, tables
from jobs.embed import Embedded
from jobs.lineage import Earlier
from jobs.pairs import Pairs
from jobs.paragraphs import Paragraph, article_texts
from jobs.records import Article

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Read:
    """Articles and paragraphs a run works on: its own first, then the history's (``origin``: the run id and
    run_date that read each history paragraph). ``embedded`` covers the clustered ones of both."""

    articles: list[Article]
    paragraphs: list[Paragraph]
    excluded: list[str | None]
    embedded: Embedded
    origin: list[tuple[str, dt.date]] = field(default_factory=list)


@dataclass(frozen=True)
class History:
    """What a run reads of the earlier runs (see the module docstring)."""

    read: Read  # the history's articles and paragraphs alone, its embedded rows numbered among them
    previous: dict[str, str]  # paragraph id -> its cluster in the latest run that wrote it
    earlier: dict[str, Earlier]  # cluster id -> its latest clusters row
    links: pa.Table  # tables.HISTORY_LINKS, the latest judgement of each pair


def store(staged: commit.StagedRun, read: Read, pairs: Pairs, clusters: Sequence[np.ndarray]) -> None:
    """Stage the run's history store: its own paragraphs (the first ones of ``read``) with their vectors,
    and its judged ``pairs`` (paragraph indices) inside its ``clusters`` (member indices)."""
    own = len(read.paragraphs) - len(read.origin)
    paragraphs = read.paragraphs[:own]
    articles = [read.articles[p.article_index] for p in paragraphs]
    vectors: list[np.ndarray | None] = [None] * own
    embedded = read.embedded
    for j in np.flatnonzero(embedded.rows < own).tolist():
        vectors[int(embedded.rows[j])] = embedded.vectors[j]
    n_tokens, truncated = embedded.token_columns(own)
    table = pa.Table.from_pydict(
        {
            "paragraph_id": [p.paragraph_id for p in paragraphs],
            "article_id": [a.article_id for a in articles],
            "outlet": [a.outlet for a in articles],
            "title": [a.title for a in articles],
            "url": [a.url for a in articles],
            "published_at": [a.published_at for a in articles],
            "source": [a.source for a in articles],
            "position": [p.position for p in paragraphs],
            "text": [p.text for p in paragraphs],
            "norm_text": [p.norm_text for p in paragraphs],
            "text_hash": [p.text_hash for p in paragraphs],
            "n_words": [p.n_words for p in paragraphs],
            "boilerplate_reason": [p.boilerplate_reason for p in paragraphs],
            "excluded_reason": read.excluded[:own],
            "n_tokens": n_tokens,
            "truncated": truncated,
            "vector": vectors,
        },
        schema=tables.HISTORY_PARAGRAPHS,
    )
    label = np.full(len(read.paragraphs), -1)
    for k, members in enumerate(clusters):
        label[members] = k
    inside = (label[pairs.a] >= 0) & (label[pairs.a] == label[pairs.b])
    pid = np.array([p.paragraph_id for p in read.paragraphs], dtype=object)
    probability = pairs.probability if pairs.probability is not None else np.full(len(pairs), np.nan)
    links = pa.Table.from_pydict(
        {
            "paragraph_id_a": pid[pairs.a[inside]].tolist(),
            "paragraph_id_b": pid[pairs.b[inside]].tolist(),
            "similarity": pairs.similarity[inside],
            "same_fact": pairs.same_fact[inside],
            "link": pairs.link[inside],
            "probability": probability[inside].astype(np.float32),
        },
        schema=tables.HISTORY_LINKS,
    )
    folder = Path(tables.HISTORY) / f"run_date={staged.run_date.isoformat()}"
    for name, data in ((f"{staged.run_id}.parquet", table), (f"{staged.run_id}.links.parquet", links)):
        staged.write_file(
            folder / name, lambda path, data=data: pq.write_table(data, path, compression="zstd")
        )


def load(
    root: Path,
    run_date: dt.date,
    days: int,
    *,
    model_identity: str | None,
    skip_articles: set[str],
    dim: int,
    max_chars: int,
) -> History:
    """The history of a run for ``run_date`` in the output folder ``root`` (empty with ``days`` 0), without
    the articles in ``skip_articles`` (read again by this run)."""
    stores, links, previous, earlier = [], [], {}, {}
    if days and root.is_dir() and model_identity is not None:
        first = run_date - dt.timedelta(days=days)
        runs = sorted(
            (day, run_id)
            for run_id, partition in commit.committed_runs(root).items()
            if first <= (day := dt.date.fromisoformat(partition.removeprefix("run_date="))) < run_date
        )
        for day, run_id in runs:
            folder = root / tables.HISTORY / f"run_date={day.isoformat()}"
            if not (folder / f"{run_id}.parquet").is_file():
                continue  # a run from before history existed
            identity = pq.read_table(
                tables.partition_path(root, "runs", day, run_id), columns=["model_identity"]
            ).column(0)[0]
            if identity.as_py() != model_identity:
                log.warning("history: run %s embedded with another model; left out", run_id)
                continue
            found = pq.read_table(folder / f"{run_id}.parquet", schema=tables.HISTORY_PARAGRAPHS)
            n = found.num_rows
            stores.append(
                found.append_column("origin_run_id", pa.array([run_id] * n)).append_column(
                    "origin_run_date", pa.array([day] * n, pa.date32())
                )
            )
            links.append(pq.read_table(folder / f"{run_id}.links.parquet", schema=tables.HISTORY_LINKS))
            members = pq.read_table(
                tables.partition_path(root, "paragraphs", day, run_id), columns=["paragraph_id", "cluster_id"]
            )
            previous.update(zip(members.column(0).to_pylist(), members.column(1).to_pylist(), strict=True))
            for row in pq.read_table(tables.partition_path(root, "clusters", day, run_id)).to_pylist():
                earlier[row["cluster_id"]] = Earlier(
                    row["first_seen_at"],
                    row["first_published_at"],
                    row["first_article_id"],
                    row["first_outlet"],
                    row["n_runs"],
                )
    previous = {p: c for p, c in previous.items() if c is not None}
    read = _read(stores, skip_articles, dim, max_chars)
    all_links = (
        pa.concat_tables(links) if links else tables.HISTORY_LINKS.empty_table()
    )  # later runs last: their judgement of a pair wins
    log.info(
        "history: %d runs, %d articles, %d paragraphs (%d clustered) from %s to %s",
        len(stores),
        len(read.articles),
        len(read.paragraphs),
        read.embedded.rows.size,
        run_date - dt.timedelta(days=days),
        run_date - dt.timedelta(days=1),
    )
    return History(read, previous, earlier, all_links)


def _read(stores: list[pa.Table], skip_articles: set[str], dim: int, max_chars: int) -> Read:
    """The stores' articles (each from its latest read, none of ``skip_articles``) as a Read."""
    latest: dict[str, int] = {}
    for k, found in enumerate(stores):
        for article_id in set(found.column("article_id").to_pylist()):
            latest[article_id] = k
    articles: list[Article] = []
    paragraphs: list[Paragraph] = []
    excluded: list[str | None] = []
    origin: list[tuple[str, dt.date]] = []
    vectors, n_tokens, truncated, rows = [], [], [], []
    index_of: dict[str, int] = {}
    for k, found in enumerate(stores):
        keep = pc.is_in(
            found.column("article_id"),
            pa.array([a for a, last in latest.items() if last == k and a not in skip_articles], pa.string()),
        )
        found = found.filter(keep)
        if not found.num_rows:
            continue
        clustered = pc.is_valid(found.column("vector")).to_numpy(zero_copy_only=False)
        if clustered.any():
            flat = pc.list_flatten(found.column("vector").filter(pa.array(clustered)))
            vectors.append(flat.to_numpy().reshape(-1, dim))
        for row, is_clustered in zip(found.to_pylist(), clustered.tolist(), strict=True):
            a = index_of.get(row["article_id"])
            if a is None:
                a = index_of[row["article_id"]] = len(articles)
                articles.append(
                    Article(
                        row["article_id"],
                        row["outlet"],
                        "",
                        row["title"],
                        row["url"],
                        row["published_at"],
                        row["source"],
                    )
                )
            if is_clustered:
                rows.append(len(paragraphs))
                n_tokens.append(row["n_tokens"])
                truncated.append(row["truncated"])
            paragraphs.append(
                Paragraph(
                    row["paragraph_id"],
                    a,
                    row["position"],
                    row["text"],
                    row["norm_text"],
                    row["text_hash"],
                    row["n_words"],
                    row["boilerplate_reason"],
                )
            )
            excluded.append(row["excluded_reason"])
            origin.append((row["origin_run_id"], row["origin_run_date"]))
    row_index = np.array(rows, dtype=np.int64)
    article_of = np.array([paragraphs[i].article_index for i in rows], dtype=np.int64)
    dates = [articles[a].published_at for a in article_of.tolist()]
    embedded = Embedded(
        row_index,
        [paragraphs[i].norm_text[:max_chars] for i in rows],
        article_of,
        np.array([np.nan if t is None else t.timestamp() for t in dates], dtype=np.float64),
        np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32),
        np.array(n_tokens, dtype=np.int32),
        np.array(truncated, dtype=bool),
    )
    return Read(articles, paragraphs, excluded, embedded, origin)


def extend(own: Read, history: History) -> Read:
    """``own`` (a run's articles and paragraphs) followed by the history's."""
    if not history.read.paragraphs:
        return own
    a, b = own.embedded, history.read.embedded
    n_articles, n_paragraphs = len(own.articles), len(own.paragraphs)
    texts = a.texts + b.texts
    _, copies = np.unique(np.array(texts, dtype=object), return_counts=True)
    embedded = Embedded(
        np.concatenate([a.rows, b.rows + n_paragraphs]),
        texts,
        np.concatenate([a.articles, b.articles + n_articles]),
        np.concatenate([a.published, b.published]),
        np.concatenate([a.vectors, b.vectors]) if a.rows.size else b.vectors,
        np.concatenate([a.n_tokens, b.n_tokens]),
        np.concatenate([a.truncated, b.truncated]),
        a.n_unique,
        a.n_cache_hits,
        a.n_encoded,
        a.model_identity,
        int(copies.max()),
    )
    paragraphs = own.paragraphs + [
        Paragraph(
            p.paragraph_id,
            p.article_index + n_articles,
            p.position,
            p.text,
            p.norm_text,
            p.text_hash,
            p.n_words,
            p.boilerplate_reason,
        )
        for p in history.read.paragraphs
    ]
    return Read(
        own.articles + history.read.articles,
        paragraphs,
        own.excluded + history.read.excluded,
        embedded,
        history.read.origin,
    )


def history_links(history: History, read: Read, touched: np.ndarray, with_probability: bool) -> Pairs:
    """The history's links (as rows of ``read.embedded``) inside the earlier clusters of the ``touched``
    rows: what keeps an earlier cluster whole when today's paragraphs join it. A link whose two paragraphs
    the latest run put in different clusters (a split since) is left out."""
    own = len(read.paragraphs) - len(read.origin)
    pid = [read.paragraphs[i].paragraph_id for i in read.embedded.rows.tolist()]
    row_of = {p: j for j, p in enumerate(pid) if read.embedded.rows[j] >= own}
    clusters = {history.previous.get(pid[j]) for j in touched.tolist()} - {None}
    links = history.links
    a = [row_of.get(p, -1) for p in links.column("paragraph_id_a").to_pylist()]
    b = [row_of.get(p, -1) for p in links.column("paragraph_id_b").to_pylist()]
    chosen: dict[tuple[int, int], int] = {}
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        if x >= 0 and y >= 0 and history.previous.get(pid[x]) == history.previous.get(pid[y]) in clusters:
            chosen[(min(x, y), max(x, y))] = k  # later runs come later: their judgement wins
    order = sorted(chosen)
    take = np.array([chosen[key] for key in order], dtype=np.int64)
    picked = links.take(pa.array(take, pa.int64()))
    probability = picked.column("probability").to_numpy().astype(np.float32)
    return Pairs(
        np.array([x for x, _ in order], dtype=np.int64),
        np.array([y for _, y in order], dtype=np.int64),
        picked.column("similarity").to_numpy().astype(np.float32),
        picked.column("same_fact").to_numpy().astype(np.float32),
        picked.column("link").to_numpy().astype(np.int8),
        probability if with_probability else None,
    )


def with_links(pairs: Pairs, links: Pairs) -> Pairs:
    """``pairs`` and the history's ``links`` (none in common), ordered by (a, b)."""
    if not len(links):
        return pairs
    a = np.concatenate([pairs.a, links.a])
    b = np.concatenate([pairs.b, links.b])
    order = np.lexsort((b, a))
    probability = (
        None if pairs.probability is None else np.concatenate([pairs.probability, links.probability])[order]
    )
    return Pairs(
        a[order],
        b[order],
        np.concatenate([pairs.similarity, links.similarity])[order],
        np.concatenate([pairs.same_fact, links.same_fact])[order],
        np.concatenate([pairs.link, links.link])[order],
        probability,
    )


def match_context(read: Read, own_articles: int, pairs: Pairs) -> tuple[np.ndarray, list[list[str]]]:
    """The article of each row of ``read.embedded`` and the articles' paragraphs, the context the same-fact
    model weighs ``pairs`` in: the run's own articles and the history's articles that ``pairs`` touch,
    numbered anew (a row of another article gets -1 and is in no pair). IDF over them, so the work grows
    with the run's own volume, not the history's."""
    articles = read.embedded.articles
    paired = np.unique(articles[np.concatenate([pairs.a, pairs.b])])
    kept = np.union1d(np.arange(own_articles), paired[paired >= own_articles])
    number = np.full(len(read.articles), -1, dtype=np.int64)
    number[kept] = np.arange(kept.size)
    texts = article_texts([p for p in read.paragraphs if number[p.article_index] >= 0], len(read.articles))
    return number[articles], [texts[a] for a in kept.tolist()]
