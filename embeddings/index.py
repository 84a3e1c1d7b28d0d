"""FAISS on the CPU: inner-product (= cosine, for unit vectors) k-nearest-neighbour search.

Exact search (``IndexFlatIP``) up to ``exact_max`` vectors; above it an approximate index. IVF is the
default approximate kind because it is deterministic (k-means with a fixed seed) and measured faster to
build than HNSW at 100k-500k vectors (docs/measurements-before.md); HNSW builds its graph in parallel, so
its neighbours can differ slightly from run to run.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from embeddings.progress import Progress

log = logging.getLogger(__name__)

IndexKind = Literal["auto", "flat", "hnsw", "ivf"]

# k-means trains on at most this many vectors per IVF list (a seeded sample; FAISS warns below 39). FAISS's
# default of 256 trains on every vector up to 1M (4,000 lists): at 1M tiled Reuters vectors that took 510
# CPU seconds against 119 for 64, for recall@10 0.79 against 0.78 and the same share of the pairs at cosine
# 0.75 or more found (0.995 against 0.996).
IVF_TRAIN_PER_LIST = 64
_SEARCH_BLOCK = 4096  # queries per FAISS call: big enough for its threads, small enough to show progress


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
    *,
    kind: IndexKind,
    exact_max: int,
    approximate: Literal["hnsw", "ivf"],
    hnsw_m: int,
    hnsw_ef_construction: int,
    hnsw_ef_search: int,
    ivf_nlist: int | None,
    ivf_nprobe: int,
    seed: int,
    centroids_cache: Path | None = None,
    map: Map | None = None,
    shards: int = 1,
) -> faiss.Index:
    """An inner-product index holding ``vectors`` (float32, unit length) in row order.

    The settings have no defaults here: the job's index config holds them (configs/default.yaml).

    Args:
        kind: ``flat`` (exact), ``hnsw``, ``ivf``, or ``auto``: flat up to ``exact_max`` vectors, else ``approximate``.
        hnsw_m, hnsw_ef_construction, hnsw_ef_search: HNSW graph degree and search breadths.
        ivf_nlist: IVF lists; None picks 4*sqrt(n). Either is capped at n / 39 so each list trains on 39+ vectors.
        ivf_nprobe: IVF lists visited per query; more is slower and closer to exact.
        seed: k-means seed, so an IVF index is the same on every run.
        centroids_cache: a folder where trained IVF centroids are kept, keyed by a digest of the vectors
            and the k-means settings: a rerun on the same vectors skips training and builds the very same
            index. None trains every time.
        map, shards: an executor's task map and how many shards to give it: IVF assigns the vectors to
            their lists shard by shard with it (k-means trains here, once). Without them, all here.
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
        index.cp.max_points_per_centroid = IVF_TRAIN_PER_LIST
        _train_ivf(index, vectors, centroids_cache)
        # Centroids on the grid too: vector-to-centroid products are then exact, so every shard assigns and
        # probes the same lists as a single pass would (see on_grid).
        centroids = on_grid(index.quantizer.reconstruct_n(0, nlist))
        index.quantizer.reset()
        index.quantizer.add(centroids)
        index.nprobe = min(ivf_nprobe, nlist)
    else:
        raise ValueError(f"unknown index kind {chosen!r}: use auto, flat, hnsw or ivf")
    if chosen == "ivf" and map is not None and shards > 1:
        lists = np.ascontiguousarray(_nearest_lists(index, vectors, 1, map, shards)[:, 0])
        index.add_core(n, faiss.swig_ptr(vectors), None, faiss.swig_ptr(lists))
    else:
        index.add(vectors)
    log.info("index %s over %d vectors of dim %d", chosen, n, dim)
    return index


CENTROID_FILES_KEPT = 8  # most recently used trainings kept in a centroids cache; older ones are deleted


def _train_ivf(index: faiss.IndexIVFFlat, vectors: np.ndarray, cache: Path | None) -> None:
    """Train ``index`` on ``vectors``, or load the centroids an identical training left in ``cache``.

    k-means is most of an IVF build (at 100k vectors about three quarters, docs/scale.md) and is a pure
    function of the vectors and its settings, so the digest of both names the result.
    """
    if cache is None:
        index.train(vectors)
        return
    digest = hashlib.blake2b(vectors.tobytes(), digest_size=16)
    digest.update(
        f"{index.nlist}/{index.cp.seed}/{index.cp.max_points_per_centroid}/{faiss.__version__}".encode()
    )
    path = cache / f"{digest.hexdigest()}.npy"
    if path.is_file():
        centroids = np.load(path)
        if centroids.shape == (index.nlist, index.d):
            index.quantizer.add(centroids)
            index.is_trained = True
            os.utime(path)  # recently used: kept by the pruning below
            log.info("ivf centroids from %s", path)
            return
    index.train(vectors)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    with partial.open("wb") as handle:
        np.save(handle, index.quantizer.reconstruct_n(0, index.nlist))
    partial.replace(path)  # complete or absent, even with concurrent runs
    for old in sorted(cache.glob("*.npy"), key=lambda p: p.stat().st_mtime, reverse=True)[
        CENTROID_FILES_KEPT:
    ]:
        old.unlink(missing_ok=True)


_KIND_OF = {"IndexFlatIP": "flat", "IndexHNSWFlat": "hnsw", "IndexIVFFlat": "ivf"}


def index_kind(index: faiss.Index) -> str:
    """``flat``, ``hnsw`` or ``ivf``: which kind :func:`build_index` built."""
    return _KIND_OF[type(index).__name__]


# ``map(fn, items, shared)``: an executor's ``[fn(item, shared) for item in items]``, possibly on other machines.
Map = Callable[[Callable[[Any, Any], Any], Sequence[Any], Any], list[Any]]


def search(
    index: faiss.Index,
    vectors: np.ndarray,
    k: int,
    map: Map | None = None,
    shards: int = 1,
    copies: int = 1,
) -> Neighbours:
    """The ``k`` nearest neighbours of each of ``vectors``, which must be the index's own vectors in order.

    Equal similarities rank by id. FAISS breaks ties as its blocks fall, so with ``copies`` (the most
    vectors that are identical, e.g. the copies of one text) up to ``copies - 1`` more candidates (at most
    ``3 * k``) are fetched, and a run of tied copies at the k-th place is cut by id whatever the search.

    With ``shards`` > 1 the indexed vectors are split into that many shards (a flat index: contiguous
    rows; IVF: contiguous runs of inverted lists), each searched by a ``map`` task for every query, and the
    results merged per query in shard order. The neighbours and similarities are the same as unsharded,
    where no similarities tie to the last bit. HNSW is one graph: it is searched here, unsharded.
    """
    n = vectors.shape[0]
    if n == 0:
        return Neighbours(np.zeros((0, k), np.int64), np.zeros((0, k), np.float32))
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    # One extra, since each vector finds itself (or an identical copy) first, and the copies' extra.
    width = min(k + 1 + min(copies - 1, 3 * k), n)
    sharded = map is not None and shards > 1
    if isinstance(index, faiss.IndexIVFFlat):
        sims, ids = _ivf_self_search(index, vectors, width, map if sharded else None, shards)
    elif isinstance(index, faiss.IndexFlatIP) and sharded:
        bounds = np.linspace(0, n, min(shards, n) + 1).astype(np.int64)
        heap = faiss.ResultHeap(n, width, keep_max=True)
        for found in map(
            functools.partial(_flat_shard, k=width), list(itertools.pairwise(bounds.tolist())), vectors
        ):
            heap.add_result(*found)
        heap.finalize()
        sims, ids = heap.D, heap.I
    else:
        sims, ids = _search_in_blocks(index, vectors, width)
    ids = np.where((ids != np.arange(n)[:, None]) & (ids >= 0), ids, -1)
    sims = np.where(ids >= 0, sims, -np.inf).astype(np.float32)
    # Best first, ties by id, missing last: one order whichever way the candidates were found.
    order = np.lexsort((np.where(ids < 0, n, ids), -sims), axis=-1)[:, :k]
    out_ids = np.full((n, k), -1, dtype=np.int64)
    out_sims = np.full((n, k), -np.inf, dtype=np.float32)
    out_ids[:, : order.shape[1]] = np.take_along_axis(ids, order, axis=1)
    out_sims[:, : order.shape[1]] = np.take_along_axis(sims, order, axis=1)
    return Neighbours(out_ids, out_sims)


def _search_in_blocks(index: faiss.Index, vectors: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` of the queries in blocks, each query answered as alone, with progress shown."""
    n = vectors.shape[0]
    sims = np.empty((n, width), dtype=np.float32)
    ids = np.empty((n, width), dtype=np.int64)
    with Progress(n, "neighbours", "query") as progress:
        for start in range(0, n, _SEARCH_BLOCK):
            end = min(start + _SEARCH_BLOCK, n)
            sims[start:end], ids[start:end] = index.search(vectors[start:end], width)
            progress.update(end - start)
    return sims, ids


GRID_BITS = 11  # vector components are multiples of 2**-11: see on_grid


def on_grid(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors with each component rounded to a multiple of 2**-11, so every dot product is exact.

    Products of two such components are multiples of 2**-22, and a dot product of unit vectors stays below
    2 in magnitude, so every partial sum fits float32's 24-bit significand: any summation order (BLAS
    blocks, SIMD lanes, threads, shards, machines) gives the same bits. Without it, FAISS's matrix products
    round differently for differently shaped blocks, so the same pair can differ by 1e-7 between a sharded
    and an unsharded search, and identical paragraphs tie by chance at the k-th neighbour. The rounding
    moves a cosine by about 1e-4 (2**-12 per component).
    """
    scale = np.float32(2**GRID_BITS)
    return np.round(np.asarray(vectors, dtype=np.float32) * scale) / scale


def _flat_shard(rows: tuple[int, int], vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Every vector's ``k`` best among rows ``lo:hi`` (a shard), with ids of the whole collection."""
    lo, hi = rows
    sims, found = faiss.knn(vectors, vectors[lo:hi], min(k, hi - lo), metric=faiss.METRIC_INNER_PRODUCT)
    if found.shape[1] < k:  # a shard smaller than k: pad as FAISS pads a short result
        pad = k - found.shape[1]
        sims = np.pad(sims, ((0, 0), (0, pad)), constant_values=-np.inf)
        found = np.pad(found, ((0, 0), (0, pad)), constant_values=-1 - lo)
    return sims, found + lo


def _nearest_lists(
    index: faiss.IndexIVFFlat, vectors: np.ndarray, k: int, map: Map | None, shards: int
) -> np.ndarray:
    """The ``k`` inverted lists whose centroids are nearest each vector: here, or by ``map`` in row shards."""
    if map is None or shards <= 1:
        return index.quantizer.search(vectors, k)[1]
    centroids = index.quantizer.reconstruct_n(0, index.nlist)
    bounds = np.linspace(0, vectors.shape[0], min(shards, vectors.shape[0]) + 1).astype(np.int64)
    ranges = list(itertools.pairwise(bounds.tolist()))
    return np.concatenate(map(functools.partial(_nearest_centroids, k=k), ranges, (vectors, centroids)))


def _nearest_centroids(rows: tuple[int, int], shared: tuple[np.ndarray, np.ndarray], k: int) -> np.ndarray:
    """Rows ``lo:hi`` of the vectors: the ``k`` best centroids of each (a shard of list assignment)."""
    vectors, centroids = shared
    return faiss.knn(vectors[rows[0] : rows[1]], centroids, k, metric=faiss.METRIC_INNER_PRODUCT)[1]


ListScan = tuple[np.ndarray, np.ndarray]  # (queries probing an inverted list, ids of the list's vectors)


def _scan_list(work: ListScan, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best of one inverted list's vectors for each query probing it."""
    queries, ids = work
    # One OpenMP thread per worker (a per-thread setting): the workers are the parallelism, and OpenMP's
    # barriers on matrices this small cost more than they gain.
    faiss.omp_set_num_threads(1)
    sims, found = faiss.knn(
        vectors[queries], vectors[ids], min(k, ids.size), metric=faiss.METRIC_INNER_PRODUCT
    )
    return queries, sims, ids[found]


def _scan_lists(works: list[ListScan], vectors: np.ndarray, k: int) -> list[tuple[np.ndarray, ...]]:
    """A shard of inverted lists, scanned in list order."""
    return [_scan_list(work, vectors, k) for work in works]


def _ivf_self_search(
    index: faiss.IndexIVFFlat, vectors: np.ndarray, k: int, map: Map | None, shards: int
) -> tuple[np.ndarray, np.ndarray]:
    """``index.search(vectors, k)`` for the index's own vectors, one inverted list at a time.

    The same lists are probed and the same vectors compared, but FAISS reads a query's nprobe lists from
    memory for every query, while here each list is read once and compared with all the vectors that probe
    it in one matrix product. At 1M vectors that halved the search's CPU time (docs/scale.md). Only
    similarities that tie to the last float bit can come out in another order. Lists are scanned by
    threads here, or with ``map`` in ``shards`` runs of consecutive lists.
    """
    n, nprobe, lists = vectors.shape[0], index.nprobe, index.invlists
    probes = _nearest_lists(index, vectors, nprobe, map, shards)
    slots = np.argsort(probes.ravel(), kind="stable")  # query * nprobe + rank, grouped by list
    bounds = np.searchsorted(probes.ravel()[slots], np.arange(index.nlist + 1))
    works: list[ListScan] = []
    for lst in range(index.nlist):
        queries, size = slots[bounds[lst] : bounds[lst + 1]] // nprobe, lists.list_size(lst)
        if queries.size and size:
            works.append((queries, faiss.rev_swig_ptr(lists.get_ids(lst), size).astype(np.int64)))
    heap = faiss.ResultHeap(n, k, keep_max=True)
    if map is None:
        with ThreadPoolExecutor(faiss.omp_get_max_threads()) as pool:
            results = list(pool.map(functools.partial(_scan_list, vectors=vectors, k=k), works))
    else:
        runs = [list(run) for run in np.array_split(np.arange(len(works)), min(shards, len(works)))]
        scanned = map(functools.partial(_scan_lists, k=k), [[works[i] for i in run] for run in runs], vectors)
        results = [result for run in scanned for result in run]
    # In list order, from this thread only: the heap is not thread-safe, and the order fixes the ties.
    for result in results:
        heap.add_result_subset(*result)
    heap.finalize()
    return heap.D, heap.I


def save_index(index: faiss.Index, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(path))


def load_index(path: Path) -> faiss.Index:
    return faiss.read_index(str(path))
