from pathlib import Path

import numpy as np
import pytest

from embeddings.index import build_index, load_index, save_index, search


def unit_vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """Points around n // 10 centres, like near-duplicate groups in real data."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(1, n // 10), dim))
    vectors = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.standard_normal((n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def exact_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


def test_flat_is_exact_and_excludes_self() -> None:
    vectors = unit_vectors(300)
    found = search(build_index(vectors, "flat"), vectors, 5)
    assert not (found.ids == np.arange(300)[:, None]).any()
    np.testing.assert_array_equal(found.ids, exact_neighbours(vectors, 5))
    expected = np.take_along_axis(vectors @ vectors.T, found.ids, axis=1)
    np.testing.assert_allclose(found.similarities, expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_have_high_recall(kind: str) -> None:
    vectors = unit_vectors(4000)
    found = search(build_index(vectors, kind), vectors, 10)
    truth = exact_neighbours(vectors, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.ids, truth, strict=True)])
    assert recall > 0.9


def test_auto_switches_to_approximate_and_ivf_is_deterministic() -> None:
    vectors = unit_vectors(2000)
    first = build_index(vectors, "auto", exact_max=1000)
    assert type(first).__name__ == "IndexIVFFlat"
    again = build_index(vectors, "auto", exact_max=1000)
    np.testing.assert_array_equal(search(first, vectors, 10).ids, search(again, vectors, 10).ids)


def test_fewer_vectors_than_k_pads_with_minus_one() -> None:
    vectors = unit_vectors(3)
    found = search(build_index(vectors, "flat"), vectors, 10)
    assert found.ids.shape == (3, 10)
    assert (found.ids[:, 2:] == -1).all() and np.isneginf(found.similarities[:, 2:]).all()
    assert (found.ids[:, :2] >= 0).all()


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    vectors = unit_vectors(500)
    index = build_index(vectors, "ivf")
    save_index(index, tmp_path / "x" / "run.faiss")
    loaded = load_index(tmp_path / "x" / "run.faiss")
    np.testing.assert_array_equal(search(loaded, vectors, 5).ids, search(index, vectors, 5).ids)
