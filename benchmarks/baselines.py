"""Baselines scored in the same run as the job, so the quality table shows what each part buys.

- MinHash LSH over word n-gram shingles, then connected components: the classic near-duplicate detector
  (Broder 1997; datasketch's MinHashLSH), which NEWS-COPY (Silcock et al., ICLR 2023) also compares against.
- The job's own embeddings with a plain cosine threshold on the kNN graph, then connected components:
  what the embeddings give without HDBSCAN and without the pair verifier.

Given publication times, both link only paragraphs published within ``max_days_apart`` days, as the job does
(``cluster.max_days_apart``): the table then compares the methods, not the date rule.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from datasketch import MinHash, MinHashLSH
from scipy.sparse.csgraph import connected_components

from benchmarks.corpora import word_ngrams
from embeddings.index import build_index, search
from jobs.config import IndexConfig
from jobs.neighbours import index_options
from jobs.pairs import Pairs, threshold_pairs, within_days


def components(
    n: int, pairs: Pairs, published: np.ndarray | None, max_days_apart: float | None
) -> np.ndarray:
    """Connected-component label of each of ``n`` items linked by ``pairs`` published within ``max_days_apart``."""
    if published is not None and max_days_apart is not None:
        pairs = within_days(pairs, published, max_days_apart)
    graph = sp.coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs.a, pairs.b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def minhash_labels(
    texts: Sequence[str],
    *,
    threshold: float = 0.5,
    ngram: int = 3,
    num_perm: int = 128,
    seed: int = 1,
    published: np.ndarray | None = None,
    max_days_apart: float | None = None,
) -> np.ndarray:
    """Component labels of texts linked when LSH finds them at estimated Jaccard >= ``threshold``.

    ``published``: each text's publication time in seconds (NaN: unknown), for ``max_days_apart``.
    """
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    shingles = [sorted(g.encode() for g in word_ngrams(t, ngram)) for t in texts]
    hashes = MinHash.bulk(shingles, num_perm=num_perm, seed=seed)
    a, b, jaccard = [], [], []
    for i, h in enumerate(hashes):
        for j in lsh.query(h):
            # LSH returns candidates: keep only those whose estimated Jaccard reaches the threshold.
            if (estimate := hashes[j].jaccard(h)) >= threshold:
                a.append(j)
                b.append(i)
                jaccard.append(estimate)
        lsh.insert(i, h)
    # Pairs' similarity column holds the estimated Jaccard here; only the links and dates matter below.
    pairs = Pairs(np.asarray(a, np.int64), np.asarray(b, np.int64), np.asarray(jaccard, np.float32))
    return components(len(texts), pairs, published, max_days_apart)


def cosine_labels(
    vectors: np.ndarray,
    *,
    threshold: float,
    k: int,
    published: np.ndarray | None = None,
    max_days_apart: float | None = None,
) -> np.ndarray:
    """Component labels of unit vectors linked when one is among the other's ``k`` nearest at >= ``threshold``."""
    neighbours = search(build_index(vectors, **index_options(IndexConfig(kind="flat"))), vectors, k)
    pairs = threshold_pairs(neighbours, threshold)
    return components(vectors.shape[0], pairs, published, max_days_apart)
