"""Group the paragraphs that report the same fact: HDBSCAN per connected component of the graph of linked pairs
(jobs/pairs.py), then every cluster made coherent by average linkage, so it holds one fact, not a chain.

Why this shape (measured before the project started: docs/measurements-before.md, and docs/quality.md):
- HDBSCAN runs on the sparse graph of linked pairs, so cost stays near-linear in the number of paragraphs; a
  dense N x N distance matrix would need 80 GB at 100k paragraphs.
- hdbscan refuses a sparse graph with several connected components, and bridging components with
  artificial edges distorts its cluster selection; one HDBSCAN per component matched dense HDBSCAN. Each
  fit sees only its component's own pairs, and two-member components (most of them) skip it, so 1M
  paragraphs cluster in about a minute (docs/scale.md).
- A link's distance is 1 - its weight (1 for a copy, the same-fact probability for a rewrite). Copies would
  be at distance 0, which scipy drops from a sparse matrix, and HDBSCAN's stability grows with 1/distance,
  so among copies the tightest pair would win (seven copies came out as one pair and five noise points).
  Distances are therefore floored at ``_COPY_DISTANCE``: copies are equally close to each other, and HDBSCAN
  judges only the looser links. (``cluster_selection_epsilon`` is no substitute: in single-cluster mode
  hdbscan makes every point farther than epsilon noise.)
- Within a component that HDBSCAN keeps whole, it labels only the members that stay to the component's
  densest level; it also dropped copies with typos next to tighter copies. So a left-out paragraph linked at
  ``min_link`` or more joins its strongest link's cluster.
- HDBSCAN chains A~B~C where A and C share nothing: on the seeds, an executive summary touching every fact
  joined the boat strikes to the airspace closure. A cluster is one fact, so each is split by average
  linkage over its distinct texts: two groups stay together only while their links average ``min_link`` or
  more, a pair that was never linked counting 0.
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
from embeddings.progress import Progress
from jobs.config import ClusterConfig
from jobs.pairs import Pairs

log = logging.getLogger(__name__)

# Distance of a copy: above 0 so scipy keeps the link, equal for all copies so HDBSCAN never separates them.
_COPY_DISTANCE = 0.02
_PROGRESS_EVERY = 2_000  # components between two progress updates
_TIE = 1e-6  # link totals closer than this are equal: float noise must not pick a representative


@dataclass(frozen=True)
class Cluster:
    """Members (sorted indices into the clustered paragraphs), the representative, and each member's cosine
    to it."""

    members: np.ndarray
    representative: int
    similarity: np.ndarray

    def renumbered(self, ids: np.ndarray) -> Cluster:
        """The same cluster with every index ``i`` as ``ids[i]`` (members stay sorted when ``ids`` ascend)."""
        return Cluster(ids[self.members], int(ids[self.representative]), self.similarity)


def cluster_pairs(
    pairs: Pairs,
    vectors: np.ndarray,
    text_ids: np.ndarray,
    config: ClusterConfig,
    map: Map | None = None,
    shards: int = 1,
) -> list[Cluster]:
    """Clusters of paragraphs reporting the same fact, from the judged pairs ``pairs`` (see Pairs.weight).

    The linked pairs (copies and rewrites) make the graph HDBSCAN clusters; every judged pair is evidence when
    a cluster's coherence is weighed. ``vectors`` (unit length) give each member's cosine to its
    representative; ``text_ids`` numbers the distinct texts (identical paragraphs count as one text when a
    cluster's coherence is weighed). What the keys of ``config`` do here:
        min_cluster_size: HDBSCAN's smallest cluster; 2 lets a single copied paragraph form a cluster.
        min_samples: HDBSCAN's neighbourhood size for core distances; higher values judge a paragraph by its
            farther neighbours, so weakly linked ones become noise sooner.
        min_link: a paragraph HDBSCAN leaves unclustered joins the cluster of a paragraph it is linked to this
            strongly (strongest links first); and the evidence between two parts of a cluster must average
            this much (a pair never judged counting 0), or the parts become clusters of their own.
        max_component_size: a connected component with more paragraphs is logged and split by requiring
            links 0.01 stronger inside it, step by step, until every part fits.

    ``map`` and ``shards`` are an executor's task map and how many groups of components to give it; without
    them the components are clustered here, one after another. The clusters are the same either way.

    HDBSCAN runs with excess-of-mass selection; leaf selection ignores ``allow_single_cluster`` and turned
    every two-member component into noise. Clusters come sorted by their smallest member, so the order is
    the same on every run.
    """
    linked = pairs.linked_mask()
    if not linked.any():
        return []
    weight = pairs.weight()
    n = vectors.shape[0]
    _, label = connected_components(
        sp.coo_matrix((np.ones(int(linked.sum())), (pairs.a[linked], pairs.b[linked])), shape=(n, n)),
        directed=False,
    )
    # Evidence inside a component: every judged pair whose two paragraphs the links join.
    inside = label[pairs.a] == label[pairs.b]
    evidence_order = np.flatnonzero(inside)[np.argsort(label[pairs.a[inside]], kind="stable")]
    evidence_label = label[pairs.a[evidence_order]]
    works: list[Component] = []
    for nodes, a, b, edges in _components(n, pairs.a[linked], pairs.b[linked], config.min_cluster_size):
        lo, hi = (
            np.searchsorted(evidence_label, label[nodes[0]], side="left"),
            np.searchsorted(evidence_label, label[nodes[0]], side="right"),
        )
        ev = evidence_order[lo:hi]
        local = {int(node): i for i, node in enumerate(nodes.tolist())}
        work = Component(
            nodes,
            a,
            b,
            weight[linked][edges],
            np.array([local[x] for x in pairs.a[ev].tolist()], dtype=np.int64),
            np.array([local[x] for x in pairs.b[ev].tolist()], dtype=np.int64),
            weight[ev],
        )
        works.extend(_split_giant(work, config.min_link, config.max_component_size, config.min_cluster_size))
    cluster = functools.partial(
        _cluster_components,
        min_cluster_size=config.min_cluster_size,
        min_samples=config.min_samples,
        min_link=config.min_link,
    )
    shared = (vectors, text_ids)
    if map is None or shards <= 1:
        found = []
        with Progress(len(works), "cluster", "component") as progress:
            for start in range(0, len(works), _PROGRESS_EVERY):
                found += cluster(works[start : start + _PROGRESS_EVERY], shared)
                progress.update(len(works[start : start + _PROGRESS_EVERY]))
    else:
        # Several groups per worker even out groups of unequal cost; each group keeps component order.
        groups = [[works[i] for i in run] for run in np.array_split(np.arange(len(works)), 4 * shards)]
        found = [c for part in map(cluster, [g for g in groups if g], shared) for c in part]
    found.sort(key=lambda c: int(c.members[0]))
    log.info(
        "%d linked pairs, %d components to cluster, %d clusters", int(linked.sum()), len(works), len(found)
    )
    return found


@dataclass(frozen=True)
class Component:
    """One connected component of the graph of links: its nodes (ascending), its own links and the evidence
    between its nodes (every judged pair, linked or not).

    ``a``/``b`` and ``evidence_a``/``evidence_b`` number the nodes 0..m-1 in ``nodes`` order.
    """

    nodes: np.ndarray
    a: np.ndarray
    b: np.ndarray
    weight: np.ndarray
    evidence_a: np.ndarray
    evidence_b: np.ndarray
    evidence: np.ndarray

    @property
    def distance(self) -> np.ndarray:
        return np.maximum(1.0 - self.weight.astype(np.float64), _COPY_DISTANCE)

    def part(self, nodes: np.ndarray, a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> Component:
        """The component of the local ``nodes`` (ascending) with the links (a, b, weight) numbered among them,
        and the evidence between them."""
        position = np.full(self.nodes.shape[0], -1)
        position[nodes] = np.arange(nodes.shape[0])
        keep = (position[self.evidence_a] >= 0) & (position[self.evidence_b] >= 0)
        return Component(
            self.nodes[nodes],
            a,
            b,
            weight,
            position[self.evidence_a[keep]],
            position[self.evidence_b[keep]],
            self.evidence[keep],
        )


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


def _split_giant(work: Component, min_weight: float, max_size: int, min_size: int) -> list[Component]:
    """``work`` if it has at most ``max_size`` nodes, else its parts with links 0.01 stronger, recursively.

    A component this large is no longer one piece of reporting: links are too loose for the corpus or one
    paragraph links many stories. A component of copies only (weight 1) stays whole.
    """
    size = work.nodes.shape[0]
    higher = round(min_weight + 0.01, 6)
    if size <= max_size or higher > 1.0:
        return [work]
    log.warning(
        "a component of %d paragraphs (cluster.max_component_size %d): split at link weight %.2f",
        size,
        max_size,
        higher,
    )
    keep = work.weight >= higher
    parts = []
    for nodes, a, b, edges in _components(size, work.a[keep], work.b[keep], min_size):
        part = work.part(nodes, a, b, work.weight[np.flatnonzero(keep)[edges]])
        parts.extend(_split_giant(part, higher, max_size, min_size))
    return parts


def _cluster_components(
    works: list[Component],
    shared: tuple[np.ndarray, np.ndarray],
    min_cluster_size: int,
    min_samples: int,
    min_link: float,
) -> list[Cluster]:
    """The clusters of some components, each clustered on its own (``shared``: vectors and text ids)."""
    vectors, text_ids = shared
    clusters: list[Cluster] = []
    for work in works:
        if work.nodes.shape[0] == 2:
            # HDBSCAN in single-cluster mode always keeps a lone pair whole (a test checks it); most
            # components are pairs, and each fit costs about a millisecond.
            groups = [np.arange(2)]
        else:
            groups = _hdbscan_groups(work, min_cluster_size, min_samples, min_link)
        for group in groups:
            for part in coherent_parts(group, work, text_ids, min_link):
                if part.shape[0] >= min_cluster_size:
                    clusters.append(_cluster(part, work, vectors, text_ids))
    return clusters


def _hdbscan_groups(
    work: Component, min_cluster_size: int, min_samples: int, min_link: float
) -> list[np.ndarray]:
    """HDBSCAN's clusters (then attached paragraphs) of one component, as local node numbers."""
    m = work.nodes.shape[0]
    distance = work.distance
    sub = sp.csr_matrix(
        (
            np.concatenate([distance, distance]),
            (np.concatenate([work.a, work.b]), np.concatenate([work.b, work.a])),
        ),
        shape=(m, m),
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
            max_dist=1.0,
        )[0]
    found = attach_unclustered(found, sub, 1.0 - min_link)
    return [np.flatnonzero(found == label) for label in np.unique(found[found >= 0])]


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


def coherent_parts(
    group: np.ndarray, work: Component, text_ids: np.ndarray, min_link: float
) -> list[np.ndarray]:
    """``group`` (local node numbers of ``work``) split by average linkage over its units of wording.

    A unit is a set of paragraphs with the same wording: identical texts and copies of each other (however
    long the chain of copies the neighbours linked). Each unit starts alone; the two parts whose evidence
    averages the most merge while that average is ``min_link`` or more. The strongest evidence between two
    units counts once and units never judged count 0, so a paragraph that touches two facts cannot chain them
    into one cluster, while a hundred copies and one rewrite of them are judged as two units.
    """
    members = np.sort(group)
    position = np.full(work.nodes.shape[0], -1)
    position[members] = np.arange(members.shape[0])
    # Units: union-find over identical texts and the copy links inside the group.
    parent = list(range(members.shape[0]))

    def root(u: int) -> int:
        while parent[u] != u:
            parent[u] = parent[parent[u]]
            u = parent[u]
        return u

    first_of_text: dict[int, int] = {}
    for k, text in enumerate(text_ids[work.nodes[members]].tolist()):
        parent[root(k)] = root(first_of_text.setdefault(text, k))
    copies = (position[work.a] >= 0) & (position[work.b] >= 0) & (work.weight >= 1.0)
    for u, v in zip(position[work.a[copies]].tolist(), position[work.b[copies]].tolist(), strict=True):
        parent[root(u)] = root(v)
    _, unit = np.unique([root(k) for k in range(members.shape[0])], return_inverse=True)
    n_units = int(unit.max()) + 1
    if n_units == 1:
        return [members]
    inside = (position[work.evidence_a] >= 0) & (position[work.evidence_b] >= 0)
    x = unit[position[work.evidence_a[inside]]]
    y = unit[position[work.evidence_b[inside]]]
    strongest: dict[tuple[int, int], float] = {}
    for u, v, w in zip(x.tolist(), y.tolist(), work.evidence[inside].tolist(), strict=True):
        if u != v:
            key = (u, v) if u < v else (v, u)
            strongest[key] = max(strongest.get(key, 0.0), w)
    labels = average_linkage(n_units, strongest, min_link)
    return [members[labels[unit] == label] for label in np.unique(labels)]


def average_linkage(n: int, links: dict[tuple[int, int], float], min_average: float) -> np.ndarray:
    """Labels of ``n`` nodes merged by average linkage while the best average is ``min_average`` or more.

    ``links`` maps (u, v), u < v, to a weight; a pair not in it weighs 0. Ties merge the lowest ids first,
    so the result is the same on every run.
    """
    size = [1] * n
    total: list[dict[int, float]] = [{} for _ in range(n)]
    for (u, v), w in links.items():
        total[u][v] = total[v][u] = w
    heap = [(-w, u, v) for (u, v), w in links.items()]
    heapq.heapify(heap)
    parent = list(range(n))
    while heap:
        negative, u, v = heapq.heappop(heap)
        if parent[u] != u or parent[v] != v or v not in total[u]:
            continue
        average = total[u][v] / (size[u] * size[v])
        if abs(average + negative) > _TIE:
            continue  # stale: the parts changed since this entry was pushed
        if average < min_average:
            break
        parent[v] = u  # u < v: the part with the lower id absorbs the other
        size[u] += size[v]
        del total[u][v], total[v][u]
        for z, w in total[v].items():
            del total[z][v]
            total[u][z] = total[z][u] = total[u].get(z, 0.0) + w
        total[v] = {}
        for z, w in total[u].items():
            heapq.heappush(heap, (-w / (size[u] * size[z]), min(u, z), max(u, z)))
    roots = np.arange(n)
    for node in range(n):
        root = node
        while parent[root] != root:
            root = parent[root]
        roots[node] = root
    return roots


def _cluster(part: np.ndarray, work: Component, vectors: np.ndarray, text_ids: np.ndarray) -> Cluster:
    """A cluster of the local nodes ``part``: its representative is the member with the most link weight to
    the others (an identical paragraph counts as a link of weight 1), the earliest on a tie."""
    position = np.full(work.nodes.shape[0], -1)
    position[part] = np.arange(part.shape[0])
    inside = (position[work.a] >= 0) & (position[work.b] >= 0)
    strength = np.zeros(part.shape[0])
    np.add.at(strength, position[work.a[inside]], work.weight[inside])
    np.add.at(strength, position[work.b[inside]], work.weight[inside])
    texts = text_ids[work.nodes[part]]
    _, inverse, counts = np.unique(texts, return_inverse=True, return_counts=True)
    strength += counts[inverse] - 1
    rep = int(np.flatnonzero(strength >= strength.max() - _TIE)[0])
    members = work.nodes[part]
    block = vectors[members]
    similarity = np.minimum(block @ block[rep], 1.0).astype(np.float32)  # float32 rounding can exceed 1
    return Cluster(members, int(members[rep]), similarity)
