import logging
from pathlib import Path

import numpy as np
import pytest

from embeddings.index import IVF_TRAIN_PER_LIST, build_index, load_index, save_index, search
from tests.conftest import index_settings


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
    found = search(build_index(vectors, **index_settings(kind="flat")), vectors, 5)
    assert not (found.ids == np.arange(300)[:, None]).any()
    np.testing.assert_array_equal(found.ids, exact_neighbours(vectors, 5))
    expected = np.take_along_axis(vectors @ vectors.T, found.ids, axis=1)
    np.testing.assert_allclose(found.similarities, expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_have_high_recall(kind: str) -> None:
    vectors = unit_vectors(4000)
    found = search(build_index(vectors, **index_settings(kind=kind)), vectors, 10)
    truth = exact_neighbours(vectors, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.ids, truth, strict=True)])
    assert recall > 0.9


def test_auto_switches_to_approximate_and_ivf_is_deterministic() -> None:
    vectors = unit_vectors(2000)
    first = build_index(vectors, **index_settings(kind="auto", exact_max=1000))
    assert type(first).__name__ == "IndexIVFFlat"
    again = build_index(vectors, **index_settings(kind="auto", exact_max=1000))
    np.testing.assert_array_equal(search(first, vectors, 10).ids, search(again, vectors, 10).ids)


def test_fewer_vectors_than_k_pads_with_minus_one() -> None:
    vectors = unit_vectors(3)
    found = search(build_index(vectors, **index_settings(kind="flat")), vectors, 10)
    assert found.ids.shape == (3, 10)
    assert (found.ids[:, 2:] == -1).all() and np.isneginf(found.similarities[:, 2:]).all()
    assert (found.ids[:, :2] >= 0).all()


def test_save_and_load_roundtrip(tmp_path: Path) -> None:
    vectors = unit_vectors(500)
    index = build_index(vectors, **index_settings(kind="ivf"))
    save_index(index, tmp_path / "x" / "run.faiss")
    loaded = load_index(tmp_path / "x" / "run.faiss")
    np.testing.assert_array_equal(search(loaded, vectors, 5).ids, search(index, vectors, 5).ids)


def test_ivf_trains_on_a_seeded_sample() -> None:
    # 16 lists train on at most 16 * IVF_TRAIN_PER_LIST of the 4000 vectors: a sample, the same every run.
    vectors = unit_vectors(4000)
    assert len(vectors) > 16 * IVF_TRAIN_PER_LIST
    first = build_index(vectors, **index_settings(kind="ivf", ivf_nlist=16))
    again = build_index(vectors, **index_settings(kind="ivf", ivf_nlist=16))
    np.testing.assert_array_equal(first.quantizer.reconstruct_n(0, 16), again.quantizer.reconstruct_n(0, 16))
    found = search(first, vectors, 10)
    np.testing.assert_array_equal(found.ids, search(again, vectors, 10).ids)
    truth = exact_neighbours(vectors, 10)
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found.ids, truth, strict=True)]) > 0.9


def test_ivf_centroids_cache_rebuilds_the_same_index_without_training(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    vectors = unit_vectors(4000)
    plain = search(build_index(vectors, **index_settings(kind="ivf")), vectors, 5)
    with caplog.at_level(logging.INFO, logger="embeddings.index"):
        first = search(
            build_index(vectors, **index_settings(kind="ivf"), centroids_cache=tmp_path), vectors, 5
        )
        (saved,) = tmp_path.glob("*.npy")
        assert "ivf centroids from" not in caplog.text
        second = search(
            build_index(vectors, **index_settings(kind="ivf"), centroids_cache=tmp_path), vectors, 5
        )
        assert f"ivf centroids from {saved}" in caplog.text
    assert list(tmp_path.glob("*.npy")) == [saved]
    for found in (first, second):
        np.testing.assert_array_equal(found.ids, plain.ids)
        np.testing.assert_array_equal(found.similarities, plain.similarities)
    # Other vectors are another training: a second file, never the first one's centroids.
    other = unit_vectors(4000, seed=1)
    np.testing.assert_array_equal(
        search(build_index(other, **index_settings(kind="ivf"), centroids_cache=tmp_path), other, 5).ids,
        search(build_index(other, **index_settings(kind="ivf")), other, 5).ids,
    )
    assert len(list(tmp_path.glob("*.npy"))) == 2
