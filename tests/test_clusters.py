import hdbscan
import numpy as np
import scipy.sparse as sp

from embeddings.index import Neighbours
from jobs.clusters import attach_unclustered, average_linkage, cluster_pairs
from jobs.config import ClusterConfig
from jobs.pairs import Pairs, threshold_pairs, within_days
from jobs.same_fact import COPY, NOT_SAME, REWRITE, VETOED


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def judged(links: list[tuple[int, int, float | str]]) -> Pairs:
    """Judged pairs: a weight is a rewrite (or, under 0.5, not the same) at that probability; "copy" is a
    copy, "veto" a pair ruled out by a conflict."""
    a = np.array([min(x, y) for x, y, _ in links], dtype=np.int64)
    b = np.array([max(x, y) for x, y, _ in links], dtype=np.int64)
    link = [
        COPY if w == "copy" else VETOED if w == "veto" else REWRITE if w >= 0.5 else NOT_SAME
        for *_, w in links
    ]
    p = [0.99 if w in ("copy", "veto") else w for *_, w in links]
    return Pairs(a, b, np.array(p, np.float32), np.array(p, np.float32), np.array(link, np.int8))


def clusters_of(pairs: Pairs, n: int, texts: list[int] | None = None, **config: object) -> list[list[int]]:
    vectors = unit(np.random.default_rng(0).standard_normal((n, 8)).tolist())
    ids = np.arange(n) if texts is None else np.array(texts)
    return [c.members.tolist() for c in cluster_pairs(pairs, vectors, ids, ClusterConfig(**config))]


def test_threshold_pairs_keep_each_pair_once_at_or_above_threshold() -> None:
    neighbours = Neighbours(
        ids=np.array([[1, 2], [0, -1], [0, 1]]),
        similarities=np.array([[0.9, 0.5], [0.9, -np.inf], [0.5, 0.8]], dtype=np.float32),
    )
    pairs = threshold_pairs(neighbours, 0.8)
    assert list(zip(pairs.a, pairs.b, strict=True)) == [(0, 1), (1, 2)]
    np.testing.assert_allclose(pairs.similarity, [0.9, 0.8])


def test_pairs_published_too_far_apart_are_left_out_and_undated_ones_kept() -> None:
    day = 86_400.0
    pairs = Pairs(
        np.array([0, 0, 1, 2]), np.array([1, 2, 3, 3]), np.array([0.9, 0.8, 0.85, 0.95], np.float32)
    )
    published = np.array([0.0, 7 * day, 7 * day + 1, np.nan])  # 0-1 exactly 7 days apart; 3 undated
    kept = within_days(pairs, published, 7)
    assert list(zip(kept.a, kept.b, strict=True)) == [(0, 1), (1, 3), (2, 3)]
    np.testing.assert_allclose(kept.similarity, [0.9, 0.85, 0.95])
    assert kept.probability is None


def test_copies_stay_together_and_components_come_in_stable_order() -> None:
    # Copy distances are floored above 0: a zero would vanish from the sparse graph and split copies apart.
    copies = [(i, j, "copy") for i in range(5) for j in range(i + 1, 5)] + [(6, 7, "copy"), (7, 8, "copy")]
    assert clusters_of(judged([*copies, (5, 9, 0.3)]), 10) == [[0, 1, 2, 3, 4], [6, 7, 8]]


def test_a_group_of_copies_is_one_cluster() -> None:
    # HDBSCAN's stability grows with 1/distance: were copies not equally close, the tightest pair of these
    # seven copies would win and five would be left unclustered.
    pairs = judged([(i, j, "copy") for i in range(7) for j in range(i + 1, 7)])
    assert clusters_of(pairs, 7) == [list(range(7))]


def test_a_paragraph_touching_two_facts_does_not_chain_them() -> None:
    # B (a summary) is linked to A (one fact) and to C (another fact); A and C were judged unrelated.
    pairs = judged([(0, 1, 0.9), (1, 2, 0.8), (0, 2, 0.1)])
    assert clusters_of(pairs, 3) == [[0, 1]]
    # Judged the same all round, they are one fact.
    assert clusters_of(judged([(0, 1, 0.9), (1, 2, 0.8), (0, 2, 0.6)]), 3) == [[0, 1, 2]]
    # A conflict counts against, whatever the model said.
    assert clusters_of(judged([(0, 1, 0.9), (1, 2, 0.8), (0, 2, "veto")]), 3) == [[0, 1]]


def test_copies_count_as_one_wording_when_coherence_is_weighed() -> None:
    # Six copies linked in a chain (the neighbours found each only next to the next) and a rewrite linked to
    # one of them: the rewrite's evidence is one link to one wording, not five missing links.
    chain = [(i, i + 1, "copy") for i in range(5)]
    assert clusters_of(judged([*chain, (0, 6, 0.8)]), 7) == [list(range(7))]
    # Identical texts are one wording too, linked or not: the rewrite of text 0 joins all its copies.
    assert clusters_of(judged([(0, 1, 0.8), (0, 2, 0.8)]), 4, texts=[0, 1, 1, 1]) == [[0, 1, 2]]
    # Rewrites are not one wording: a chain of rewrites with nothing judged between its ends splits.
    assert clusters_of(judged([(i, i + 1, 0.8) for i in range(5)]), 6) == [[0, 1], [2, 3], [4, 5]]


def test_min_samples_above_one_works_on_the_sparse_graph() -> None:
    # hdbscan needs min_samples neighbours per point on a sparse graph; the group of three has only two.
    links = [(i, j, "copy") for i in range(5) for j in range(i + 1, 5)]
    links += [(5, 6, 0.9), (6, 7, 0.9), (5, 7, 0.9)]
    for min_samples in (1, 2, 3, 5):
        assert clusters_of(judged(links), 8, min_samples=min_samples) == [[0, 1, 2, 3, 4], [5, 6, 7]], (
            min_samples
        )


def test_a_rewrite_looser_than_its_group_of_copies_is_attached() -> None:
    # Four copies and a rewrite of them at 0.95: HDBSCAN keeps the tight four at the densest level and
    # leaves the fifth unclustered; attaching (links of min_link or more) gives it back to its group.
    links = [(i, j, "copy") for i in range(4) for j in range(i + 1, 4)] + [(i, 4, 0.95) for i in range(4)]
    assert clusters_of(judged(links), 5) == [[0, 1, 2, 3, 4]]
    # A link looser than min_link stays out: HDBSCAN's judgement holds.
    assert clusters_of(judged(links), 5, min_link=0.96) == [[0, 1, 2, 3]]


def test_the_representative_has_the_most_link_weight_and_ties_go_to_the_earliest() -> None:
    vectors = unit(np.random.default_rng(1).standard_normal((4, 8)).tolist())
    pairs = judged([(0, 1, 0.9), (1, 2, 0.9), (1, 3, 0.9), (0, 2, 0.7), (2, 3, 0.7), (0, 3, 0.6)])
    (cluster,) = cluster_pairs(pairs, vectors, np.arange(4), ClusterConfig())
    assert cluster.representative == 1
    np.testing.assert_allclose(cluster.similarity, vectors[[0, 1, 2, 3]] @ vectors[1], atol=1e-6)
    (pair,) = cluster_pairs(judged([(2, 3, 0.9)]), vectors, np.arange(4), ClusterConfig())
    assert pair.representative == 2


def test_attach_follows_the_strongest_links_and_groups_the_rest() -> None:
    distances = sp.csr_matrix(
        np.array(
            [
                [0, 0.01, 0.05, 0, 0, 0],
                [0.01, 0, 0, 0, 0, 0],
                [0.05, 0, 0, 0.08, 0, 0],  # 2 joins 0's label, then 3 joins through 2 (a chain)
                [0, 0, 0.08, 0, 0, 0],
                [0, 0, 0, 0, 0, 0.02],  # 4 and 5: linked only to each other: a new label
                [0, 0, 0, 0, 0.02, 0],
            ]
        )
    )
    labels = attach_unclustered(np.array([0, 0, -1, -1, -1, -1]), distances, max_distance=0.1)
    assert labels[2] == labels[3] == 0 and labels[4] == labels[5] not in (-1, 0)
    cut = attach_unclustered(np.array([0, 0, -1, -1, -1, -1]), distances, max_distance=0.06)
    assert cut[2] == 0 and cut[3] == -1


def test_hdbscan_keeps_a_lone_pair_whole() -> None:
    # cluster_pairs skips HDBSCAN on two-member components because this always holds.
    for distance in (0.02, 0.1, 0.4999):
        graph = sp.csr_matrix(np.array([[0, distance], [distance, 0]]))
        for min_samples in (1, 2, 5):
            model = hdbscan.HDBSCAN(
                metric="precomputed",
                min_cluster_size=2,
                min_samples=min_samples,
                allow_single_cluster=True,
                max_dist=1.0,
            )
            assert model.fit(graph).labels_.tolist() == [0, 0]


def test_components_are_clustered_as_with_the_whole_graph() -> None:
    # cluster_pairs builds each component's graph from its own pairs; the reference slices the whole graph
    # and fits the HDBSCAN estimator per component, attaches and splits as cluster_pairs does.
    rng = np.random.default_rng(0)
    n = 60
    links = [(int(i), int(j), float(rng.uniform(0.3, 1.0))) for i, j in rng.integers(0, n, (90, 2)) if i != j]
    links = list({(min(i, j), max(i, j)): w for i, j, w in links}.items())
    pairs = judged([(i, j, w) for (i, j), w in links])
    config = ClusterConfig()
    weight = pairs.weight()
    linked = pairs.linked_mask()
    graph = sp.coo_matrix((np.maximum(1 - weight[linked], 0.02), (pairs.a[linked], pairs.b[linked])), (n, n))
    graph = graph.tocsr().maximum(graph.T).tocsr()
    _, component = sp.csgraph.connected_components(graph, directed=False)
    expected = []
    for label in np.unique(component):
        nodes = np.flatnonzero(component == label)
        if len(nodes) < 2:
            continue
        sub = graph[nodes][:, nodes]
        if len(nodes) == 2:
            found = np.zeros(2, int)
        else:
            model = hdbscan.HDBSCAN(
                metric="precomputed",
                min_cluster_size=2,
                min_samples=1,
                allow_single_cluster=True,
                max_dist=1.0,
            )
            found = attach_unclustered(model.fit(sub).labels_, sub, 1 - config.min_link)
        # Coherence: average linkage over every judged pair between the group's members.
        for group in np.unique(found[found >= 0]):
            members = nodes[found == group]
            inside = np.isin(pairs.a, members) & np.isin(pairs.b, members)
            strength = {
                (int(x), int(y)): float(w)
                for x, y, w in zip(pairs.a[inside], pairs.b[inside], weight[inside], strict=True)
            }
            local = {int(m): k for k, m in enumerate(members.tolist())}
            labels = average_linkage(
                len(members), {(local[x], local[y]): w for (x, y), w in strength.items()}, config.min_link
            )
            expected += [
                sorted(members[labels == lab].tolist())
                for lab in np.unique(labels)
                if (labels == lab).sum() >= 2
            ]
    expected.sort()
    got = clusters_of(pairs, n)
    assert len(got) >= 5
    assert got == expected


def test_two_facts_bridged_by_a_looser_link_are_two_clusters() -> None:
    # Two tight pairs and a looser link between them: HDBSCAN separates the dense groups.
    assert clusters_of(judged([(0, 1, 0.95), (2, 3, 0.95), (1, 2, 0.6)]), 4) == [[0, 1], [2, 3]]
