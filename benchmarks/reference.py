"""The plain pipeline newsdedup is measured against: what one would write without the job's levers.

It reads the same input with the job's own ingest and paragraph code (so both embed the same paragraphs),
then, with none of the job's levers:

- sentence-transformers ``encode`` of every paragraph, duplicates included (no cache, no exact-duplicate
  short-circuit, no other backend), batch 32 with its own length sorting;
- FAISS ``IndexFlatIP`` k-nearest neighbours of every paragraph (k as in the job);
- HDBSCAN (min_cluster_size 2, min_samples 1) on the sparse k-NN distance graph, one fit per connected
  component, since hdbscan rejects a disconnected sparse graph (``docs/measurements-before.md``).

``python -m benchmarks.reference INPUT [--threads N]`` prints one JSON line of counts and stage seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from embeddings.models import resolve_model_path
from jobs.config import JobConfig
from jobs.ingest import read_articles
from jobs.paragraphs import excluded_reason, split_articles

_EPSILON = 1e-6  # a distance of 0 (exact copies) is a stored zero that scipy would silently drop


def paragraph_texts(config: JobConfig) -> tuple[int, list[str]]:
    """All paragraphs of the input and the texts the job would embed (not short, not boilerplate)."""
    paragraphs = split_articles(read_articles(config.input).articles, config.paragraphs)
    texts = [
        p.norm_text[: config.paragraphs.max_chars]
        for p in paragraphs
        if excluded_reason(p, config.paragraphs.min_words, config.cluster.include_boilerplate) is None
    ]
    return len(paragraphs), texts


def hdbscan_per_component(ids: np.ndarray, similarities: np.ndarray) -> np.ndarray:
    """HDBSCAN labels (-1 = noise) over the k-NN graph, fitted per connected component."""
    import hdbscan
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, k = ids.shape
    rows = np.repeat(np.arange(n), k)
    keep = ids.ravel() >= 0
    distances = np.maximum(1.0 - similarities.ravel()[keep], _EPSILON).astype(np.float64)
    graph = coo_matrix((distances, (rows[keep], ids.ravel()[keep])), shape=(n, n)).tocsr()
    graph = graph.maximum(graph.T).tocsr()
    n_components, component = connected_components(graph, directed=False)
    labels = np.full(n, -1, dtype=np.int64)
    next_label = 0
    for c in range(n_components):
        members = np.flatnonzero(component == c)
        if members.size < 2:
            continue
        sub = graph[members][:, members]
        found = hdbscan.HDBSCAN(metric="precomputed", min_cluster_size=2, min_samples=1).fit_predict(sub)
        clustered = found >= 0
        labels[members[clustered]] = found[clustered] + next_label
        next_label += int(found.max()) + 1 if clustered.any() else 0
    return labels


def run(input_path: Path, threads: int, k: int = JobConfig().index.k) -> dict[str, float | int]:
    """Run the plain pipeline on ``input_path``; returns counts and seconds per stage."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    config = JobConfig.model_validate({"input": {"path": str(input_path)}})
    n_paragraphs, texts = paragraph_texts(config)
    seconds["read"] = time.perf_counter() - start

    mark = time.perf_counter()
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(
        str(resolve_model_path(config.embed.model)), device="cpu", local_files_only=True
    )
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    seconds["embed"] = time.perf_counter() - mark

    mark = time.perf_counter()
    import faiss

    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    similarities, ids = index.search(vectors, min(k + 1, len(texts)))
    self_hit = ids == np.arange(len(texts))[:, None]
    ids = np.where(self_hit, -1, ids)  # a paragraph is not its own neighbour
    seconds["index"] = time.perf_counter() - mark

    mark = time.perf_counter()
    labels = hdbscan_per_component(ids, similarities)
    seconds["cluster"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - start
    return {
        "n_paragraphs": n_paragraphs,
        "n_embedded": len(texts),
        "n_clusters": int(labels.max()) + 1,
        **{f"seconds_{name}": round(value, 3) for name, value in seconds.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", type=Path, help="the job's input (a JSONL file, a folder, ...)")
    parser.add_argument("--threads", type=int, default=2, help="PyTorch and FAISS threads")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.input, args.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
