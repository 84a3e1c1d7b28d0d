"""The index stage: each clustered paragraph's nearest neighbours, from the FAISS index the config's index
section describes (embeddings/index.py builds and searches it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embeddings.index import Map, Neighbours, build_index, search
from jobs.config import IndexConfig


def index_options(config: IndexConfig) -> dict[str, Any]:
    """``build_index``'s settings as the index section sets them."""
    return {
        "kind": config.kind,
        "exact_max": config.exact_max,
        "approximate": config.approximate,
        "hnsw_m": config.hnsw_m,
        "hnsw_ef_construction": config.hnsw_ef_construction,
        "hnsw_ef_search": config.hnsw_ef_search,
        "ivf_nlist": config.ivf_nlist,
        "ivf_nprobe": config.ivf_nprobe,
        "seed": config.seed,
    }


def nearest_neighbours(
    vectors: np.ndarray,
    config: IndexConfig,
    map: Map | None = None,
    shards: int = 1,
    *,
    copies: int,
    centroids_cache: Path | None,
) -> tuple[faiss.Index, Neighbours]:
    """The index over ``vectors`` and each vector's ``config.k`` nearest neighbours in it.

    ``map`` and ``shards`` are an executor's task map and how many shards to give it; ``copies`` is the most
    vectors that are identical (search says why it matters); ``centroids_cache`` keeps trained IVF centroids
    for a rerun on the same vectors (None: train every time).
    """
    index = build_index(
        vectors, **index_options(config), centroids_cache=centroids_cache, map=map, shards=shards
    )
    return index, search(index, vectors, config.k, map, shards, copies=copies)
