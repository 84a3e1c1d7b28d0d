import hdbscan
import numpy as np
import scipy.sparse as sp

from embeddings.index import Neighbours, build_index, search
from jobs.clusters import attach_unclustered, cluster_pairs, split_to_representative
from jobs.config import ClusterConfig
from jobs.pairs import Pairs, threshold_pairs, within_days
from tests.conftest import index_settings


def unit(rows: list[list[float]]) -> np.ndarray:
    vectors = np.asarray(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def at_angle(cos: float) -> list[float]:
    """A 3-d unit vector whose cosine to (1, 0, 0) is ``cos``."""
    return [cos, float(np.sqrt(1 - cos**2)), 0.0]


def pairs_of(vectors: np.ndarray, threshold: float, k: int = 10) -> Pairs:
    return threshold_pairs(search(build_index(vectors, **index_settings(kind="flat")), vectors, k), threshold)


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


def test_exact_duplicates_stay_together() -> None:
    # Zero distances must not vanish from the sparse graph (they would split copies apart).
    vectors = unit([[1, 0, 0]] * 5 + [[0, 1, 0]] * 3 + [[0, 0, 1]])
    clusters = cluster_pairs(pairs_of(vectors, 0.9), vectors, ClusterConfig(threshold=0.9))
    assert [c.members.tolist() for c in clusters] == [[0, 1, 2, 3, 4], [5, 6, 7]]
    np.testing.assert_allclose(clusters[0].similarity, 1.0, atol=1e-6)


def test_separate_components_give_separate_clusters_in_stable_order() -> None:
    vectors = unit([at_angle(1.0), [0, 0, 1], at_angle(0.95), [0.05, 0, 1], [0, 1, 0]])
    clusters = cluster_pairs(pairs_of(vectors, 0.9), vectors, ClusterConfig(threshold=0.9))
    assert [c.members.tolist() for c in clusters] == [[0, 2], [1, 3]]


def test_every_member_is_within_threshold_of_its_representative() -> None:
    # A chain 0..90 degrees in 10-degree steps: neighbours are similar, the ends are not.
    angles = np.radians(np.arange(0, 100, 10))
    vectors = unit([[np.cos(a), np.sin(a), 0] for a in angles])
    threshold = float(np.cos(np.radians(25)))
    clusters = cluster_pairs(pairs_of(vectors, threshold), vectors, ClusterConfig(threshold=threshold))
    # The medoid (40 degrees) keeps 20..60; the rest regroups around 70 and around 0.
    assert [c.members.tolist() for c in clusters] == [[0, 1], [2, 3, 4, 5, 6], [7, 8, 9]]
    assert [c.representative for c in clusters] == [0, 4, 7]  # the pair ties: its earlier member
    for cluster in clusters:
        sims = vectors[cluster.members] @ vectors[cluster.representative]
        assert (sims >= threshold - 1e-6).all()
        np.testing.assert_allclose(cluster.similarity, sims, atol=1e-6)


def near_copies(n: int, noise: float, seed: int = 0) -> np.ndarray:
    """``n`` lightly edited copies of one 384-d vector (pairwise cosine about 1 - noise**2 / 2)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(384)
    return unit((base + noise * np.linalg.norm(base) / np.sqrt(384) * rng.standard_normal((n, 384))).tolist())


def test_a_group_of_near_copies_is_one_cluster() -> None:
    # HDBSCAN's stability grows with 1/distance: without the copy_similarity floor the tightest pair of
    # these seven copies won and five were left unclustered.
    vectors = near_copies(7, 0.08)
    assert (vectors @ vectors.T).min() > 0.99
    clusters = cluster_pairs(pairs_of(vectors, 0.75), vectors, ClusterConfig(threshold=0.75))
    assert [c.members.tolist() for c in clusters] == [list(range(7))]


def test_min_samples_above_one_works_on_the_sparse_graph() -> None:
    # hdbscan needs min_samples neighbours per point on a sparse graph; the group of three has only two.
    vectors = np.vstack([near_copies(5, 0.05), near_copies(3, 0.05, seed=1)])
    pairs = pairs_of(vectors, 0.75)
    for min_samples in (1, 2, 3, 5):
        clusters = cluster_pairs(pairs, vectors, ClusterConfig(threshold=0.75, min_samples=min_samples))
        assert [c.members.tolist() for c in clusters] == [[0, 1, 2, 3, 4], [5, 6, 7]], min_samples


def test_split_to_representative_peels_off_far_members() -> None:
    vectors = unit([at_angle(1.0), at_angle(0.99), at_angle(0.97), [0, 0, 1], [0.1, 0, 1]])
    clusters = split_to_representative(np.arange(5), vectors, 0.9, min_cluster_size=2)
    assert sorted(c.members.tolist() for c in clusters) == [[0, 1, 2], [3, 4]]
    assert clusters[0].representative == 1  # the medoid of the three


def test_copies_looser_than_their_group_are_attached() -> None:
    # Four exact copies and one copy with typos at cosine 0.95: HDBSCAN keeps the tight four at the densest
    # level and leaves the fifth unclustered; attaching (links >= 0.9) gives it back to its group.
    vectors = unit([at_angle(1.0)] * 4 + [at_angle(0.95), [0, 0, 1]])
    pairs = pairs_of(vectors, 0.75)
    assert [
        c.members.tolist()
        for c in cluster_pairs(pairs, vectors, ClusterConfig(threshold=0.75, attach_similarity=None))
    ] == [[0, 1, 2, 3]]
    assert [
        c.members.tolist()
        for c in cluster_pairs(pairs, vectors, ClusterConfig(threshold=0.75, attach_similarity=0.9))
    ] == [[0, 1, 2, 3, 4]]
    # A looser link than attach_similarity stays out: HDBSCAN's judgement holds for topic-level links.
    assert [
        c.members.tolist()
        for c in cluster_pairs(pairs, vectors, ClusterConfig(threshold=0.75, attach_similarity=0.96))
    ] == [[0, 1, 2, 3]]


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
    for distance in (0.02, 0.1, 0.2499):
        graph = sp.csr_matrix(np.array([[0, distance], [distance, 0]]))
        for min_samples in (1, 2, 5):
            model = hdbscan.HDBSCAN(
                metric="precomputed",
                min_cluster_size=2,
                min_samples=min_samples,
                allow_single_cluster=True,
                max_dist=0.25,
            )
            assert model.fit(graph).labels_.tolist() == [0, 0]


def test_components_are_clustered_as_with_the_whole_graph() -> None:
    # cluster_pairs builds each component's graph from its own pairs; the reference slices the whole graph
    # and fits the HDBSCAN estimator per component, as cluster_pairs once did.
    spec = [(2, 0.3), (4, 0.45), (8, 0.52)] * 8  # (copies, noise): pairs, and groups HDBSCAN splits
    vectors = np.vstack([near_copies(size, noise, seed) for seed, (size, noise) in enumerate(spec)])
    vectors = vectors[np.random.default_rng(0).permutation(len(vectors))]
    pairs = pairs_of(vectors, 0.75)
    n = len(vectors)
    graph = sp.coo_matrix(
        (np.maximum(1 - pairs.similarity.astype(np.float64), 0.02), (pairs.a, pairs.b)), (n, n)
    )
    graph = graph.tocsr().maximum(graph.T).tocsr()
    _, component = sp.csgraph.connected_components(graph, directed=False)
    expected = []
    for label in np.unique(component):
        nodes = np.flatnonzero(component == label)
        sub = graph[nodes][:, nodes]
        model = hdbscan.HDBSCAN(
            metric="precomputed", min_cluster_size=2, min_samples=1, allow_single_cluster=True, max_dist=0.25
        )
        found = attach_unclustered(model.fit(sub).labels_, sub, 0.2)
        for group in np.unique(found[found >= 0]):
            expected += split_to_representative(nodes[found == group], vectors, 0.75, 2)
    expected.sort(key=lambda c: int(c.members[0]))
    clusters = cluster_pairs(pairs, vectors, ClusterConfig(threshold=0.75))
    assert len({len(c.members) for c in clusters}) >= 5
    assert [(c.members.tolist(), c.representative) for c in clusters] == [
        (c.members.tolist(), c.representative) for c in expected
    ]
    for got, want in zip(clusters, expected, strict=True):
        np.testing.assert_array_equal(got.similarity, want.similarity)
