"""Group near-duplicate paragraphs: HDBSCAN per connected component of the graph of pairs (jobs/pairs.py),
then every cluster made tight around its representative.

Why this shape (measured before the project started: docs/measurements-before.md):
- HDBSCAN runs on the sparse graph of neighbour pairs at or above the threshold, so cost stays near-linear
  in the number of paragraphs; a dense N x N distance matrix would need 80 GB at 100k paragraphs.
- hdbscan refuses a sparse graph with several connected components, and bridging components with
  artificial edges distorts its cluster selection; one HDBSCAN per component matched dense HDBSCAN. Each
  fit sees only its component's own pairs, and two-member components (most of them) skip it, so 1M
  paragraphs cluster in about a minute (docs/scale.md).
- Distances 1 - cos are 0 (or slightly negative) for exact duplicates, and scipy drops stored zeros, which
  would silently delete duplicate edges. More: HDBSCAN's cluster stability grows with 1/distance, so among
  near-copies the tightest pair wins (seven copies at cosine >= 0.99 came out as one pair and five noise
  points). Distances below ``1 - copy_similarity`` are therefore raised to it: copies are equally close to
  each other, and HDBSCAN judges only the looser links. (``cluster_selection_epsilon`` is no substitute:
  in single-cluster mode hdbscan makes every point farther than epsilon noise.)
- Within a component that HDBSCAN keeps whole, it labels only the members that stay to the component's
  densest level; a member attached by looser links is left unclustered (on the seeds: 004's airspace
  paragraph, at 0.78 to a pair at 0.80). That guards against topic-level links, but it also dropped
  copies with typos or light paraphrase next to tighter copies (syndication recall 0.68, docs/quality.md).
  So a left-out paragraph linked at ``attach_similarity`` or more joins its strongest link's cluster;
  looser ones stay out, and their pairs stay in the pairs table as evidence.
- HDBSCAN can chain A~B~C where A and C are far apart. A cluster is meant to be one piece of reporting, not a
  topic, so each cluster keeps only members within the threshold of its representative; the rest are
  clustered again among themselves or left unclustered.
"""

from __future__ import annotations

import functools
import heapq
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import hdbscan
import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from embeddings.index import Map
from jobs.config import ClusterConfig
from jobs.pairs import Pairs

log = logging.getLogger(__name__)

_TIE = 1e-5  # centralities closer than this are equal: float32 noise must not pick a representative


@dataclass(frozen=True)
class Cluster:
    """Members (sorted indices into the clustered vectors), the representative, and each member's cosine to it."""

    members: np.ndarray
    representative: int
    similarity: np.ndarray

    def renumbered(self, ids: np.ndarray) -> Cluster:
        """The same cluster with every index ``i`` as ``ids[i]`` (members stay sorted when ``ids`` ascend)."""
        return Cluster(ids[self.members], int(ids[self.representative]), self.similarity)


def cluster_pairs(
    pairs: Pairs, vectors: np.ndarray, config: ClusterConfig, map: Map | None = None, shards: int = 1
) -> list[Cluster]:
    """Clusters of near-duplicates among ``vectors`` (unit length), from the threshold graph ``pairs``.

    What the keys of ``config`` (the cluster section) do here:
        threshold: the cosine every member must reach against its cluster's representative.
        min_cluster_size: HDBSCAN's smallest cluster; 2 lets a single copied paragraph form a cluster.
        min_samples: HDBSCAN's neighbourhood size for core distances; higher values judge a paragraph by its
            farther neighbours, so weakly linked ones become noise sooner.
        copy_similarity: pairs at or above this cosine count as copies: HDBSCAN never separates them by
            their tiny differences (the config keeps it above ``threshold``).
        attach_similarity: a paragraph HDBSCAN leaves unclustered joins the cluster of a paragraph it is
            linked to at this cosine or more (strongest links first, so chains attach too); such paragraphs
            linked only among themselves form a cluster. The split around the representative still applies.
            Without it (None), HDBSCAN drops copies only a little looser than their group (a copy with typos
            next to four exact copies). Below ``threshold`` it acts as ``threshold``: weaker pairs are not
            in the graph.
        max_component_size: a connected component with more paragraphs is logged and split by raising the
            threshold inside it in steps of 0.01 (up to ``copy_similarity``) until every part fits.

    ``map`` and ``shards`` are an executor's task map and how many groups of components to give it; without
    them the components are clustered here, one after another. The clusters are the same either way.

    HDBSCAN runs with excess-of-mass selection; leaf selection ignores ``allow_single_cluster`` and turned
    every two-member component into noise. Clusters come sorted by their smallest member, so the order is
    the same on every run.
    """
    if len(pairs) == 0:
        return []
    distance = np.maximum(1.0 - pairs.similarity.astype(np.float64), 1.0 - config.copy_similarity)
    works: list[Component] = []
    for nodes, a, b, edges in _components(vectors.shape[0], pairs.a, pairs.b, config.min_cluster_size):
        work = Component(nodes, a, b, distance[edges], pairs.similarity[edges])
        works.extend(
            _split_giant(
                work,
                config.threshold,
                config.copy_similarity,
                config.max_component_size,
                config.min_cluster_size,
            )
        )
    cluster = functools.partial(
        _cluster_components,
        threshold=config.threshold,
        min_cluster_size=config.min_cluster_size,
        min_samples=config.min_samples,
        attach_similarity=config.attach_similarity,
    )
    if map is None or shards <= 1:
        found = cluster(works, vectors)
    else:
        # Several groups per worker even out groups of unequal cost; each group keeps component order.
        groups = [[works[i] for i in run] for run in np.array_split(np.arange(len(works)), 4 * shards)]
        found = [c for part in map(cluster, [g for g in groups if g], vectors) for c in part]
    found.sort(key=lambda c: int(c.members[0]))
    log.info("%d pairs, %d components to cluster, %d clusters", len(pairs), len(works), len(found))
    return found


@dataclass(frozen=True)
class Component:
    """One connected component of the threshold graph: its nodes (ascending) and its own edges.

    ``a`` and ``b`` number the nodes 0..m-1 in ``nodes`` order; ``distance`` is 1 - similarity, floored at
    1 - copy_similarity.
    """

    nodes: np.ndarray
    a: np.ndarray
    b: np.ndarray
    distance: np.ndarray
    similarity: np.ndarray


def _components(
    n: int, a: np.ndarray, b: np.ndarray, min_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(nodes, local a, local b, edge indices) of each connected component with ``min_size``+ nodes."""
    n_components, labels = connected_components(
        sp.coo_matrix((np.ones(a.shape[0]), (a, b)), shape=(n, n)), directed=False
    )
    sizes = np.bincount(labels, minlength=n_components)
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    # Each component's graph is built from its own pairs, renumbered 0..m-1 in node order: slicing it out of
    # the n x n graph costs O(n) per component, O(n^2) in all.
    local = np.empty(n, dtype=np.int64)
    local[order] = np.arange(n) - bounds[labels[order]]
    pair_component = labels[a]
    pair_order = np.argsort(pair_component, kind="stable")
    pair_bounds = np.searchsorted(pair_component[pair_order], np.arange(n_components + 1))
    for component in np.flatnonzero(sizes >= min_size):
        nodes = order[bounds[component] : bounds[component + 1]]  # ascending: stable sort of ascending ids
        edges = pair_order[pair_bounds[component] : pair_bounds[component + 1]]
        yield nodes, local[a[edges]], local[b[edges]], edges


def _split_giant(
    work: Component, threshold: float, copy_similarity: float, max_size: int, min_size: int
) -> list[Component]:
    """``work`` if it has at most ``max_size`` nodes, else its parts at a threshold 0.01 higher, recursively.

    A component this large is no longer one piece of reporting: the threshold is too low for the corpus or
    one paragraph links many stories. Past ``copy_similarity`` a component is all copies and stays whole.
    """
    size = work.nodes.shape[0]
    higher = round(threshold + 0.01, 6)
    if size <= max_size or higher >= copy_similarity:
        return [work]
    log.warning(
        "a component of %d paragraphs (cluster.max_component_size %d): split at similarity %.2f",
        size,
        max_size,
        higher,
    )
    keep = work.similarity >= higher
    parts = []
    for nodes, a, b, edges in _components(size, work.a[keep], work.b[keep], min_size):
        kept = np.flatnonzero(keep)[edges]
        part = Component(work.nodes[nodes], a, b, work.distance[kept], work.similarity[kept])
        parts.extend(_split_giant(part, higher, copy_similarity, max_size, min_size))
    return parts


def _cluster_components(
    works: list[Component],
    vectors: np.ndarray,
    threshold: float,
    min_cluster_size: int,
    min_samples: int,
    attach_similarity: float | None,
) -> list[Cluster]:
    """The clusters of some components, each clustered on its own."""
    clusters: list[Cluster] = []
    for work in works:
        if work.nodes.shape[0] == 2:
            # HDBSCAN in single-cluster mode always keeps a lone pair whole (a test checks it); most
            # components are pairs, and each fit costs about a millisecond.
            groups = [work.nodes]
        else:
            groups = _hdbscan_groups(
                work.nodes,
                work.a,
                work.b,
                work.distance,
                threshold,
                min_cluster_size,
                min_samples,
                attach_similarity,
            )
        for group in groups:
            clusters.extend(split_to_representative(group, vectors, threshold, min_cluster_size))
    return clusters


def _hdbscan_groups(
    nodes: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    distance: np.ndarray,
    threshold: float,
    min_cluster_size: int,
    min_samples: int,
    attach_similarity: float | None,
) -> list[np.ndarray]:
    """HDBSCAN's clusters (then attached paragraphs) of one component: ``nodes`` linked by local pairs (a, b)."""
    m = nodes.shape[0]
    sub = sp.csr_matrix(
        (np.concatenate([distance, distance]), (np.concatenate([a, b]), np.concatenate([b, a]))), shape=(m, m)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        # The function behind hdbscan.HDBSCAN.fit, without the estimator's per-call validation overhead.
        found = hdbscan.hdbscan(
            sub,
            metric="precomputed",
            min_cluster_size=min_cluster_size,
            min_samples=min_samples,
            # The component is already split off from the rest, so it may legitimately be one cluster.
            allow_single_cluster=True,
            # A pair missing from the graph is at least this far apart: what core distances use when a
            # paragraph has fewer than min_samples neighbours (else hdbscan refuses the sparse graph).
            max_dist=1.0 - threshold,
        )[0]
    if attach_similarity is not None:
        found = attach_unclustered(found, sub, 1.0 - max(attach_similarity, threshold))
    return [nodes[found == label] for label in np.unique(found[found >= 0])]


def attach_unclustered(labels: np.ndarray, distances: sp.csr_matrix, max_distance: float) -> np.ndarray:
    """``labels`` with -1 nodes joined to a labeled neighbour through links no longer than ``max_distance``.

    Strongest links first, like Prim's algorithm (a heap of links out of the labeled set), so a chain of
    unlabeled nodes attaches through its strongest links in O(E log E). Unlabeled nodes left that are linked
    among themselves that closely form new labels; the rest stay -1.
    """
    labels = labels.copy()
    strong = distances.tocsr(copy=True)
    strong.data[strong.data > max_distance] = 0  # on stored links only: a dense comparison would be N x N
    strong.eliminate_zeros()  # distances are floored above 0, so only the dropped links are zeros
    indptr, indices, data = strong.indptr, strong.indices, strong.data

    def links(u: int) -> list[tuple[float, int, int]]:
        return [
            (float(data[j]), int(indices[j]), u)
            for j in range(indptr[u], indptr[u + 1])
            if labels[indices[j]] < 0
        ]

    heap = [link for u in np.flatnonzero(labels >= 0) for link in links(int(u))]
    heapq.heapify(heap)
    while heap:
        _, v, u = heapq.heappop(heap)
        if labels[v] < 0:
            labels[v] = labels[u]
            for link in links(v):
                heapq.heappush(heap, link)
    rest = np.flatnonzero(labels < 0)
    if rest.size:
        _, groups = connected_components(strong[rest][:, rest], directed=False)
        sizes = np.bincount(groups)
        new = sizes[groups] >= 2
        labels[rest[new]] = labels.max() + 1 + groups[new]
    return labels


def split_to_representative(
    members: np.ndarray, vectors: np.ndarray, threshold: float, min_cluster_size: int
) -> list[Cluster]:
    """Split ``members`` into clusters whose every member is within ``threshold`` of the representative.

    The representative is the medoid by mean cosine, found from the sum vector in O(m * dim), never an
    m x m matrix. Members below the threshold are split off and grouped again the same way; groups smaller
    than ``min_cluster_size`` stay unclustered. Each pass costs O(m * dim); a loose group that sheds
    one member per pass costs O(m^2 * dim) in all. Near-duplicate groups are small; a very large one means
    the threshold is too low for the corpus.
    """
    out: list[Cluster] = []
    remaining = np.sort(members)
    while remaining.shape[0] >= min_cluster_size:
        block = vectors[remaining]
        centrality = block @ block.sum(axis=0)
        # Ties within float noise (every two-member cluster ties exactly) go to the earliest paragraph.
        rep_local = int(np.flatnonzero(centrality >= centrality.max() - _TIE)[0])
        sims = np.minimum(block @ block[rep_local], 1.0)  # float32 rounding can exceed 1
        close = sims >= threshold
        close[rep_local] = True
        if close.sum() >= min_cluster_size:
            out.append(Cluster(remaining[close], int(remaining[rep_local]), sims[close].astype(np.float32)))
        # A group too small to keep (e.g. a medoid with no close member) leaves; the rest is tried again.
        remaining = remaining[~close]
    return out
