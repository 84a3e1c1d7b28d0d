"""FAISS on the CPU: inner-product (= cosine, for unit vectors) k-nearest-neighbour search.

Exact search (``IndexFlatIP``) up to ``exact_max`` vectors; above it an approximate index. IVF is the
default approximate kind because it is deterministic (k-means with a fixed seed) and measured faster to
build than HNSW at 100k-500k vectors; HNSW builds its graph in parallel, so its neighbours can differ
slightly from run to run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

log = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "hnsw", "ivf"]


@dataclass(frozen=True)
class Neighbours:
    """Row ``i`` holds the ``k`` nearest vectors of vector ``i``, best first, itself excluded.

    ``ids`` is -1 and ``similarities`` is -inf where fewer than ``k`` neighbours were found.
    """

    ids: np.ndarray  # (n, k) int64
    similarities: np.ndarray  # (n, k) float32


def set_threads(threads: int) -> None:
    """OpenMP threads FAISS uses for building and searching."""
    faiss.omp_set_num_threads(threads)


def choose_kind(n: int, kind: IndexKind, exact_max: int, approximate: Literal["hnsw", "ivf"]) -> str:
    if kind != "auto":
        return kind
    return "flat" if n <= exact_max else approximate


def build_index(
    vectors: np.ndarray,
    kind: IndexKind = "auto",
    *,
    exact_max: int = 50_000,
    approximate: Literal["hnsw", "ivf"] = "ivf",
    hnsw_m: int = 32,
    hnsw_ef_construction: int = 80,
    hnsw_ef_search: int = 64,
    ivf_nlist: int | None = None,
    ivf_nprobe: int = 8,
    seed: int = 1234,
) -> faiss.Index:
    """An inner-product index holding ``vectors`` (float32, unit length) in row order.

    Args:
        kind: ``flat`` (exact), ``hnsw``, ``ivf``, or ``auto``: flat up to ``exact_max`` vectors, else ``approximate``.
        hnsw_m, hnsw_ef_construction, hnsw_ef_search: HNSW graph degree and search breadths.
        ivf_nlist: IVF lists; None picks 4*sqrt(n). Either is capped at n / 39 so each list trains on 39+ vectors.
        ivf_nprobe: IVF lists visited per query; more is slower and closer to exact.
        seed: k-means seed, so an IVF index is the same on every run.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    # Nothing to train an IVF index on: an empty exact index answers the same.
    chosen = choose_kind(n, kind, exact_max, approximate) if n else "flat"
    if chosen == "flat":
        index: faiss.Index = faiss.IndexFlatIP(dim)
    elif chosen == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = hnsw_ef_construction
        index.hnsw.efSearch = hnsw_ef_search
    elif chosen == "ivf":
        wanted = ivf_nlist or int(4 * math.sqrt(n))
        # FAISS warns below 39 training vectors per list: fewer lists train better centroids.
        nlist = max(1, min(wanted, n // 39))
        if nlist < wanted:
            log.info("ivf_nlist %d capped at %d for %d vectors (39 per list)", wanted, nlist, n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = seed
        index.train(vectors)
        index.nprobe = min(ivf_nprobe, nlist)
    else:
        raise ValueError(f"unknown index kind {chosen!r}: use auto, flat, hnsw or ivf")
    index.add(vectors)
    log.info("index %s over %d vectors of dim %d", chosen, n, dim)
    return index


_KIND_OF = {"IndexFlatIP": "flat", "IndexHNSWFlat": "hnsw", "IndexIVFFlat": "ivf"}


def index_kind(index: faiss.Index) -> str:
    """``flat``, ``hnsw`` or ``ivf``: which kind :func:`build_index` built."""
    return _KIND_OF[type(index).__name__]


def search(index: faiss.Index, vectors: np.ndarray, k: int) -> Neighbours:
    """The ``k`` nearest neighbours of each of ``vectors``, which must be the index's own vectors in order."""
    n = vectors.shape[0]
    if n == 0:
        return Neighbours(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
    # Ask for one extra, since each vector finds itself (or an identical copy) first.
    sims, ids = index.search(np.ascontiguousarray(vectors, dtype=np.float32), min(k + 1, n))
    out_ids = np.full((n, k), -1, dtype=np.int64)
    out_sims = np.full((n, k), -np.inf, dtype=np.float32)
    rows = np.arange(n)[:, None]
    keep = (ids != rows) & (ids >= 0)
    # Stable sort moves kept entries to the front of each row without reordering them.
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    kept = np.take_along_axis(keep, order, axis=1)
    width = order.shape[1]
    out_ids[:, :width] = np.where(kept, np.take_along_axis(ids, order, axis=1), -1)
    out_sims[:, :width] = np.where(kept, np.take_along_axis(sims, order, axis=1), -np.inf)
    return Neighbours(out_ids, out_sims)


def save_index(index: faiss.Index, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(path))


def load_index(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))
