"""Sizing a run: the CPU threads this process may use, and what a run of a given size should cost."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

LARGE_RUN = 100_000  # paragraphs from which a run says what it expects to cost before it starts embedding

# Costs measured on 2 cores (AMD EPYC, AVX2) on Reuters-21578 paragraphs (about 38 tokens): embedding
# paragraphs/s per backend by benchmarks/performance.py (docs/performance.md); the index and cluster stages
# and their peak memory per vector by benchmarks/scale.py (docs/scale.md, 313 s and 3.96 GiB at 1M); the
# rest of the job's memory (texts, tables) from the whole-Reuters run: about 8 KB per paragraph.
# torch: the reference pipeline's sentence-transformers encode (70/s); onnx: the job's cold run (141/s);
# onnx-int8: not yet in docs/performance.md, about 200/s in quiet rounds of the backend comparison.
_EMBED_PER_SECOND = {"torch": 70.0, "onnx": 140.0, "onnx-int8": 200.0}
_INDEX_CLUSTER_SECONDS_PER_VECTOR = 3.2e-4
_BYTES_PER_VECTOR = 3.8e3
_BYTES_PER_PARAGRAPH = 8e3
_BASE_BYTES = 0.5 * 2**30  # libraries and the model


def estimate(n_paragraphs: int, n_to_embed: int, backend: str, threads: int) -> str:
    """What a run of this size should cost on this machine, worst case (an empty cache), as one line.

    Seconds scale with 2 / ``threads`` from the 2-core measurements; memory is compared with this
    machine's RAM so a run that cannot fit says so before the hour of embedding, not after.
    """
    speed = threads / 2
    embed_s = n_to_embed / (_EMBED_PER_SECOND[backend] * speed)
    rest_s = n_to_embed * _INDEX_CLUSTER_SECONDS_PER_VECTOR / speed
    peak = _BASE_BYTES + n_paragraphs * _BYTES_PER_PARAGRAPH + n_to_embed * _BYTES_PER_VECTOR
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    fits = "fits" if peak < 0.8 * ram else "DOES NOT FIT: split the input or use a larger machine"
    return (
        f"{n_paragraphs:,} paragraphs, {n_to_embed:,} to embed: about {embed_s / 60:.1f} min embedding "
        f"with an empty cache ({backend}, {threads} threads) and {rest_s / 60:.1f} min indexing and "
        f"clustering; peak memory about {peak / 2**30:.1f} GiB of {ram / 2**30:.0f} GiB ({fits})"
    )


def default_threads(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """CPU cores this process may use: its affinity mask, capped by a cgroup CPU quota (v2 or v1).

    A container limited to 2 CPUs on a 64-core host still sees 64 cores in its affinity mask; threads
    beyond the quota only add throttling, so a fractional quota rounds down (at least one thread).
    """
    cores = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        if (cgroup / "cpu.max").is_file():
            quota, period = (cgroup / "cpu.max").read_text().split()
        else:
            quota = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        if quota not in ("max", "-1"):
            cores = min(cores, max(1, int(quota) // int(period)))
    return cores
