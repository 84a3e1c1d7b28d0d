"""Fit the knobs that need labeled data, on MRPC **train** only, reproducibly (fixed seeds).

MRPC train is split once (seed 0): 85% trains the embedding adapter (embeddings/finetune.py), the other
15% (dev) picks the cosine threshold that the default config uses. MRPC test is never read here.

Usage: ``python -m benchmarks.fit [--data ../shared/data] [--out embeddings/adapters/...safetensors]``
(about 10 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.corpora import mrpc_pairs, mrpc_texts
from embeddings.encoder import SentenceTransformerEncoder
from embeddings.finetune import AdapterParams, adapter_digest, params_metadata, save_adapter, train_adapter
from embeddings.index import set_threads
from jobs.paragraphs import normalize

ROOT = Path(__file__).resolve().parents[1]
DEV_SHARE = 0.15


def best_threshold(similarity: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The cut that maximises accuracy of ``similarity >= cut`` (midpoint between neighbouring scores)."""
    order = np.argsort(-similarity)
    s, y = similarity[order], same[order].astype(np.int64)
    # Accuracy when the first i (highest) are called same: positives among them + negatives after them.
    correct = np.concatenate([[0], np.cumsum(y)]) + (np.sum(1 - y) - np.concatenate([[0], np.cumsum(1 - y)]))
    i = int(np.argmax(correct))
    cut = 1.0 if i == 0 else float(s[i - 1] if i == len(s) else (s[i - 1] + s[i]) / 2)
    return cut, float(correct[i] / len(s))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "embeddings" / "adapters" / "all-MiniLM-L6-v2-mrpc.safetensors"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    train = mrpc_pairs(args.data / "mrpc", "train")
    text = mrpc_texts(args.data / "mrpc")
    pairs = [
        (normalize(text[a]), normalize(text[b]), y)
        for a, b, y in zip(train.a, train.b, train.label, strict=True)
    ]
    order = np.random.default_rng(0).permutation(len(pairs))
    cut = round((1 - DEV_SHARE) * len(pairs))
    fit, dev = [pairs[i] for i in order[:cut]], [pairs[i] for i in order[cut:]]
    encoder = SentenceTransformerEncoder(args.model, threads=args.threads, progress=False)
    params = AdapterParams()
    start = time.perf_counter()
    tensors = train_adapter(encoder.model, fit, params)
    print(f"trained on {len(fit)} MRPC train pairs in {time.perf_counter() - start:.0f} s")
    save_adapter(
        tensors, args.out, params_metadata(params, base_model=args.model, data="MRPC train, 85% (seed 0)")
    )
    tuned = SentenceTransformerEncoder(args.model, adapter=args.out, threads=args.threads, progress=False)
    y = np.array([p[2] for p in dev])
    for label, enc in (("base", encoder), ("adapted", tuned)):
        va, vb = enc.encode([p[0] for p in dev]), enc.encode([p[1] for p in dev])
        threshold, accuracy = best_threshold((va * vb).sum(axis=1), y)
        print(f"{label}: dev ({len(dev)} pairs) accuracy {accuracy:.4f} at cosine threshold {threshold:.4f}")
    print(f"adapter {args.out} (digest {adapter_digest(args.out)}): set cluster.threshold to the adapted cut")
    return 0


if __name__ == "__main__":
    sys.exit(main())
