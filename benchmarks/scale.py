"""How the index and cluster stages grow with the number of paragraphs: seconds and peak memory per stage at
10k, 100k and 1M paragraphs, on real vectors (written to ``docs/scale.md``).

The vectors: the first ``N_REAL`` distinct Reuters-21578 paragraphs of 8+ words, embedded once with the
default model (cached under ``--work``), then tiled to N. Tile 0 is the real vectors. Every further tile is
the real set turned by a random rotation that moves each vector by the same angle (cos ``TILE_COS``), plus
Gaussian jitter of relative size ``JITTER``, re-normalised. A rotation keeps every cosine within a tile, so
each tile holds the corpus's real near-duplicate structure, while a tile's copy of a paragraph lies at cos
0.72 from the original and about 0.72^2 = 0.52 from other tiles' copies: below the 0.75 threshold, so the
tiles of one paragraph never cluster together. Isotropic Gaussian noise cannot do both: noise that keeps
the copies of a paragraph below 0.75 of each other scales every cosine within a tile by the same factor
(below 0.75), so the tiles would hold no pairs and the cluster stage would only see the first tile's.

Each (size, repeat) runs in a fresh process, so its peak memory (VmHWM) is its own; VmHWM is reset before
each stage (``/proc/self/clear_refs``) to give stage peaks. The stages call the job's functions with the
job's config and thread count, as ``jobs.pipeline.run_job`` does.

Usage: ``python -m benchmarks.scale [--sizes 10000 100000 1000000] [--repeats 3] [--out docs/scale.md]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from benchmarks.corpora import DATA
from benchmarks.quality import _commit
from embeddings.index import Neighbours, build_index, index_kind, search, set_threads
from jobs.clusters import cluster_pairs
from jobs.config import JobConfig, load_config
from jobs.neighbours import index_options
from jobs.pairs import threshold_pairs
from jobs.sizing import default_threads
from jobs.text import count_words

ROOT = Path(__file__).resolve().parents[1]
N_REAL = 20_000
TILE_COS = 0.72
JITTER = 0.05
RECALL_MAX = 100_000  # exact search for the recall columns: ~1 min at 100k, over an hour at 1M
STAGES = ("build", "search", "pairs", "cluster")


def real_vectors(work: Path) -> np.ndarray:
    """The first ``N_REAL`` distinct Reuters-21578 paragraphs of 8+ words, embedded once and cached."""
    path = work / f"reuters-{N_REAL}.npy"
    if not path.exists():
        from benchmarks.corpora import load_stories
        from jobs.config import EmbedConfig
        from jobs.embed import load_encoder

        stories = load_stories(DATA / "reuters21578")
        texts = dict.fromkeys(p for s in stories for p in s.paragraphs if count_words(p) >= 8)
        encoder = load_encoder(EmbedConfig(backend="torch", progress=False), 2)
        vectors = encoder.encode(list(texts)[:N_REAL])
        work.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return np.load(path)


def tiled(real: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors: ``real``, then rotated, jittered copies of it (see the module docstring)."""
    rng = np.random.default_rng(seed)
    m, dim = real.shape
    out = np.empty((n, dim), dtype=np.float32)
    out[: min(n, m)] = real[:n]
    sin = np.sqrt(1 - TILE_COS**2)
    for start in range(m, n, m):
        part = real[: n - start]
        # J pairs up the coordinates at random and turns each pair by 90 degrees: skew-symmetric with
        # J^2 = -I, so v.Jv = 0, and cos*I + sin*J is a rotation moving every vector by arccos(TILE_COS).
        i, j = rng.permutation(dim).reshape(2, -1)
        block = TILE_COS * part
        block[:, i] -= sin * part[:, j]
        block[:, j] += sin * part[:, i]
        block += (JITTER / np.sqrt(dim)) * rng.standard_normal(block.shape, dtype=np.float32)
        out[start : start + block.shape[0]] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _status(key: str) -> int:
    """A memory figure of ``/proc/self/status`` (VmRSS, VmHWM), in bytes."""
    found = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no {key} in /proc/self/status: this benchmark needs Linux")
    return int(found.group(1)) * 1024


@contextmanager
def _stage(name: str, stats: dict[str, dict[str, float]]) -> Iterator[None]:
    """Record a stage's wall and CPU seconds (all threads) and its peak RSS."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    stats[name] = {
        "s": time.perf_counter() - wall,
        "cpu": time.process_time() - cpu,
        "peak": _status("VmHWM"),
    }


def measure(n: int, config: JobConfig, work: Path, recall: bool) -> dict:
    """The index and cluster stages on ``n`` tiled vectors: per-stage stats and what they found."""
    set_threads(config.threads or default_threads())
    vectors = tiled(real_vectors(work), n)
    before = _status("VmRSS")
    stats: dict[str, dict[str, float]] = {}
    c = config.cluster
    with _stage("build", stats):
        index = build_index(vectors, **index_options(config.index))
    with _stage("search", stats):
        neighbours = search(index, vectors, config.index.k)
    with _stage("pairs", stats):
        pairs = threshold_pairs(neighbours, c.threshold)
    with _stage("cluster", stats):
        clusters = cluster_pairs(pairs, vectors, c)
    _, component = connected_components(
        sp.coo_matrix((np.ones(len(pairs)), (pairs.a, pairs.b)), shape=(n, n)), directed=False
    )
    sizes = np.bincount(component)
    result = {
        "n": n,
        "kind": index_kind(index),
        "stats": stats,
        "rss_before": before,
        "pairs": len(pairs),
        "components": int((sizes >= 2).sum()),
        "largest_component": int(sizes.max()),
        "clusters": len(clusters),
        "clustered": sum(int(cl.members.shape[0]) for cl in clusters),
    }
    if recall and result["kind"] != "flat":
        result |= _recall(neighbours, vectors, config)
    return result


def _recall(neighbours: Neighbours, vectors: np.ndarray, config: JobConfig) -> dict[str, float]:
    """recall@k against exact search, and the share of the exact pairs at the threshold that were found."""
    flat = index_options(config.index.model_copy(update={"kind": "flat"}))
    exact = search(build_index(vectors, **flat), vectors, config.index.k)
    found = (neighbours.ids[:, :, None] == exact.ids[:, None, :]).any(axis=1)
    n = vectors.shape[0]
    truth, got = (threshold_pairs(x, config.cluster.threshold) for x in (exact, neighbours))
    in_both = np.isin(truth.a * n + truth.b, got.a * n + got.b)
    return {"recall": float(found.mean()), "pair_recall": float(in_both.mean()) if len(truth) else 1.0}


def _run_child(n: int, config_path: Path, work: Path, recall: bool) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.scale", "--child", str(n), "--config", str(config_path)]
    cmd += ["--work", str(work), *(["--recall"] if recall else [])]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def _values(reps: Sequence[dict], key: str, stages: Sequence[str] = STAGES) -> list[float]:
    """One value per repeat: ``key`` ("s", "cpu" or "peak") summed over ``stages``, or for peaks their max."""
    combine = max if key == "peak" else sum
    return [combine(r["stats"][s][key] for s in stages) for r in reps]


def _median(values: Sequence[float], digits: int) -> str:
    """The median, with the range when there were repeats."""
    mid = f"{statistics.median(values):,.{digits}f}"
    return mid if len(values) == 1 else f"{mid} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def markdown(runs: Sequence[Sequence[dict]]) -> tuple[str, str]:
    """Two tables, one row per size: seconds and memory (medians over repeats), and what was found."""
    gib = 1024**3
    head = ["N", "index", *(f"{s} s" for s in STAGES), "index+cluster s", "CPU s", "peak RSS GiB"]
    times = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    head = ["N", "vectors GiB", *(f"{s} peak GiB" for s in STAGES), "pairs", "components", "largest"]
    head += ["clusters", "clustered", "recall@k", "pair recall"]
    found = ["| " + " | ".join(head) + " |", "|" + " ---: |" * len(head)]
    for reps in runs:
        first = reps[0]
        cells = [f"{first['n']:,}", first["kind"], *(_median(_values(reps, "s", [s]), 1) for s in STAGES)]
        cells += [_median(_values(reps, "s"), 1), _median(_values(reps, "cpu"), 0)]
        cells.append(_median([v / gib for v in _values(reps, "peak")], 2))
        times.append("| " + " | ".join(cells) + " |")
        cells = [f"{first['n']:,}", f"{first['rss_before'] / gib:.2f}"]
        cells += [_median([v / gib for v in _values(reps, "peak", [s])], 2) for s in STAGES]
        keys = ("pairs", "components", "largest_component", "clusters", "clustered")
        cells += [f"{first[k]:,}" for k in keys]
        cells += [f"{first[k]:.3f}" if k in first else "-" for k in ("recall", "pair_recall")]
        found.append("| " + " | ".join(cells) + " |")
    return "\n".join(times), "\n".join(found)


def fit(runs: Sequence[Sequence[dict]]) -> str:
    """Least-squares cost models over the sizes' medians, for estimating a run before it starts.

    An IVF index costs O(N) k-means (a sample of 64 per list, 4 sqrt(N) lists) plus O(N^1.5) assignment and
    search (each vector meets 4 sqrt(N) centroids and nprobe lists of sqrt(N) / 4 vectors); clustering
    costs O(N) at a fixed share of near-duplicates; memory is the vectors, the index's own copy of them
    and the neighbour arrays, O(N).
    """
    if len(runs) < 2:
        return "- (needs two sizes or more)"
    n = np.array([r[0]["n"] for r in runs], dtype=np.float64)
    ivf = np.array([r[0]["kind"] == "ivf" for r in runs])
    index, cluster, peak = (
        np.array([statistics.median(_values(r, key, stages)) for r in runs])
        for key, stages in (("s", ("build", "search")), ("s", ("pairs", "cluster")), ("peak", STAGES))
    )
    lines = []
    if ivf.sum() >= 2:
        (a, b), *_ = np.linalg.lstsq(np.c_[n[ivf], n[ivf] ** 1.5], index[ivf], rcond=None)
        off = np.abs(a * n[ivf] + b * n[ivf] ** 1.5 - index[ivf]).max()
        lines.append(
            f"- index (IVF, N > exact_max): {a:.3g} N + {b:.3g} N^1.5 seconds (off by {off:.1f} s at most)"
        )
    c = float(cluster @ n / (n @ n))
    lines.append(
        f"- pairs + cluster: {c:.3g} N seconds (off by {np.abs(c * n - cluster).max():.1f} s at most)"
    )
    (m0, m1), *_ = np.linalg.lstsq(np.c_[np.ones_like(n), n], peak, rcond=None)
    gib, off = 1024**3, np.abs(m0 + m1 * n - peak).max()
    lines.append(
        f"- peak RSS: {m0 / gib:.2f} GiB + {m1:,.0f} bytes N (off by {off / gib:.2f} GiB at most): "
        f"8 GiB at N = {(8 * gib - m0) / m1:,.0f}, 24 GiB at N = {(24 * gib - m0) / m1:,.0f}"
    )
    return "\n".join(lines)


def _machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    flags = re.search(r"^flags\s*:(.*)$", cpuinfo, re.MULTILINE)
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni") if flags and f" {f} " in f"{flags.group(1)} "]
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    cpu = model.group(1) if model else "unknown CPU"
    return (
        f"{len(os.sched_getaffinity(0))} cores of {cpu} ({', '.join(simd) or 'no AVX2'}), {ram:.0f} GiB RAM"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per size; medians reported")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    parser.add_argument("--work", type=Path, default=Path("/tmp/newsdedup-scale"), help="the cached vectors")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables here (docs/scale.md)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)  # one measurement
    parser.add_argument("--recall", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    if args.child is not None:
        print(json.dumps(measure(args.child, config, args.work, args.recall)))
        return 0
    real_vectors(args.work)  # embed once, before any child needs the vectors
    runs = []
    for n in args.sizes:
        # Recall needs an exact search: once per size, after the first repeat's timed stages.
        runs.append(
            [_run_child(n, args.config, args.work, r == 0 and n <= RECALL_MAX) for r in range(args.repeats)]
        )
        print(markdown(runs[-1:])[0].splitlines()[-1], file=sys.stderr, flush=True)
    times, found = markdown(runs)
    estimate = fit(runs)
    print(times, estimate, found, sep="\n\n")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(_doc(times, found, estimate, args, config), encoding="utf-8")
    return 0


def _doc(times: str, found: str, estimate: str, args: argparse.Namespace, config: JobConfig) -> str:
    command = f"python -m benchmarks.scale --sizes {' '.join(map(str, args.sizes))} --repeats {args.repeats}"
    threshold = config.cluster.threshold
    return f"""# Scale: the index and cluster stages from {args.sizes[0]:,} to {args.sizes[-1]:,} paragraphs

Written by `{command} --out {args.out}`: rerun it to update, do not edit by hand.

Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC at commit {_commit()} with `{args.config.name}` (hash
{config.config_hash()}) and {config.threads or default_threads()} threads, on {_machine()}. The machine was
shared with other work, so times are medians over {args.repeats} fresh processes, range in brackets; CPU s
(all threads, index + cluster) shows the work done, which varies less with the load than wall seconds.

What runs: the job's index and cluster stages, called as `run_job` calls them: `build_index` (build; a cold
build, no IVF centroids cached), `search` for each vector's {config.index.k} nearest neighbours (search),
`threshold_pairs` (pairs) and `cluster_pairs` (cluster). Peak RSS is the process's high-water mark during
the stages, the N x 384 float32 vectors included (vectors GiB: the process before the stages).

The vectors: the first {N_REAL:,} distinct paragraphs of 8+ words of Reuters-21578, Distribution 1.0
(D. D. Lewis, 1997; the text is Reuters Ltd's, free for research use only), embedded with the default
model, then tiled to N. Tile 0 is the real vectors. Every further tile is the real set turned by a random
rotation that moves every vector by the same angle (cos {TILE_COS}), plus Gaussian jitter of relative size
{JITTER}, re-normalised. A rotation keeps every cosine within a tile, so each tile holds the corpus's real
near-duplicate structure and pairs, components and clusters grow in proportion to N, as in a larger corpus.
A copy lies at cos {TILE_COS} from its original and about {TILE_COS**2:.2f} from other tiles' copies, below the
threshold {threshold}, so the tiles of one paragraph never cluster together (the largest component stays
the real one's). Isotropic Gaussian noise cannot do both: noise that keeps the copies of a paragraph below
{threshold} of each other scales every cosine within a tile by the same factor, and the tiles would hold no
pairs at all.

## Time and memory

{times}

## Estimate for a run of N paragraphs

Fitted to the medians above (`benchmarks.scale.fit`, which says why these shapes); wall seconds on this
shared machine, so on an idle one they are an upper bound.

{estimate}

## Stage peaks and what was found

pairs: neighbour pairs at or above the threshold; components: connected components of 2+ paragraphs in
their graph (largest: the biggest); clusters and clustered: clusters found and the paragraphs in them.
recall@k: the share of the exact {config.index.k} nearest neighbours the index returns; pair recall: the
share of the exact search's pairs at or above the threshold it finds (measured up to {RECALL_MAX:,}
paragraphs; - where the index is exact). Approximate search may find tiled vectors more easily than a real
corpus of that size.

{found}
"""


if __name__ == "__main__":
    sys.exit(main())
