"""Cluster ids that last across runs, and what changed: each cluster of a run named from the earlier clusters
its members belonged to (jobs/history.py reads them), and its change since.

The rule, deterministic (the same input and history give the same ids):

1. Each earlier cluster *continues* as the cluster of this run holding most of its members (a tie goes to the
   cluster whose member digest is smaller).
2. A cluster that earlier clusters continue as takes the id of the oldest of them: the earliest
   ``first_seen_at``, then the smaller id. When two earlier clusters merge, the older id survives
   (``merged``, related: the ids absorbed); when an earlier cluster splits, the part holding most of its
   members keeps its id (``split``, related: the other parts' ids, on every part).
3. Any other cluster is new and takes the digest of its sorted member paragraph ids, as without history.

A cluster with members added and no merge or split is ``grown``; one whose members were all in it before
(an article read again) has no change to report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NEW, GROWN, MERGED, SPLIT = "new", "grown", "merged", "split"


def cluster_id(member_ids: Sequence[str]) -> str:
    """Content-addressed id: the same members give the same id on every run."""
    return hashlib.blake2b("\n".join(sorted(member_ids)).encode(), digest_size=8).hexdigest()


def day_start(day: dt.date) -> dt.datetime:
    """Midnight UTC of ``day``: when a run for that day first saw what it read."""
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@dataclass(frozen=True)
class Earlier:
    """What the latest clusters row of an earlier cluster says about its whole history."""

    first_seen_at: dt.datetime
    first_published_at: dt.datetime | None
    first_article_id: str | None
    first_outlet: str | None
    n_runs: int


@dataclass(frozen=True)
class Lineage:
    """A cluster's id, its change (None: nothing changed), and what it carries over from the earlier clusters
    it continues (``continues``, oldest first)."""

    cluster_id: str
    change: str | None
    n_added: int
    added_outlets: list[str]
    related_ids: list[str]
    first_seen_at: dt.datetime
    n_runs: int
    continues: list[Earlier]


def lineages(
    members: Sequence[Sequence[str]],
    outlets: Sequence[Sequence[str]],
    origin_dates: Sequence[Sequence[dt.date]],
    previous: Mapping[str, str],
    earlier: Mapping[str, Earlier],
) -> list[Lineage]:
    """The lineage of each cluster of a run, from its member paragraph ids (with each member's outlet and the
    run_date of the run that read it), ``previous`` (paragraph id -> its earlier cluster) and ``earlier``
    (earlier cluster id -> its history; an id missing there counts as the newest)."""
    digests = [cluster_id(m) for m in members]
    counts = [Counter(previous[p] for p in m if p in previous) for m in members]
    home: dict[str, int] = {}
    parts: dict[str, list[int]] = {}
    for c, found in enumerate(counts):
        for x, k in found.items():
            parts.setdefault(x, []).append(c)
            best = home.get(x)
            if best is None or (-k, digests[c]) < (-counts[best][x], digests[best]):
                home[x] = c
    continued: list[list[str]] = [[] for _ in members]
    never = dt.datetime.max.replace(tzinfo=dt.UTC)

    def age(x: str) -> tuple[dt.datetime, str]:
        return (earlier[x].first_seen_at if x in earlier else never, x)

    for x, c in home.items():
        continued[c].append(x)
    for c in range(len(members)):
        continued[c].sort(key=age)
    ids = [kept[0] if kept else digest for kept, digest in zip(continued, digests, strict=True)]
    found = []
    for c, member_ids in enumerate(members):
        kept = set(continued[c])
        added = [k for k, p in enumerate(member_ids) if previous.get(p) not in kept]
        split_from = [x for x in counts[c] if len(parts[x]) >= 2]
        if len(kept) >= 2:
            change, related = MERGED, sorted(kept - {ids[c]})
        elif split_from:
            change = SPLIT
            related = sorted({ids[d] for x in split_from for d in parts[x] if d != c})
        else:
            change = NEW if not kept else GROWN if added else None
            related = []
        history = [earlier[x] for x in continued[c] if x in earlier]
        first_seen = min([day_start(d) for d in origin_dates[c]] + [e.first_seen_at for e in history])
        found.append(
            Lineage(
                ids[c],
                change,
                len(added),
                sorted({outlets[c][k] for k in added}),
                related,
                first_seen,
                1 + max((e.n_runs for e in history), default=0),
                history,
            )
        )
    return found
