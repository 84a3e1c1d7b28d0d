"""Throughput of the real job on Reuters-21578 paragraphs: cold, warm, and against the plain pipeline.

    python -m benchmarks.performance [--sizes 10000 50000 all] [--repeats 3] [--config configs/default.yaml]
                                     [--against REV] [--work /tmp/newsdedup-performance] [--out docs/performance.md]

For each size (paragraphs, whole stories taken in file order until the size is reached; ``all`` is the whole
collection), in one invocation:

- **cold**: ``newsdedup run`` with an empty embedding cache, in a fresh process (imports and model loading
  count);
- **warm**: the same run again on the unchanged corpus, reusing the cache (a scheduled rerun);
- **reference**: the plain pipeline of ``benchmarks/reference.py`` on the same input;
- **against** (``--against REV``): the cold run of the job as it was at commit ``REV`` (a temporary git
  worktree, its own default config), alternating with this commit's cold runs, so a change's cost is a
  ratio measured in one invocation on one machine.

Every run is its own process; its wall seconds and peak RSS (``wait4``) are measured from outside and its
per-stage seconds read back from the ``runs`` table it wrote. Each figure is the median of ``--repeats``
runs, since these machines are shared and noisy. A one-time model export (the onnxruntime backends) happens
before any timing, as it does at set-up. Reuters-21578 (Lewis, 1997) is research-only data: read in place
from ``$NEWSDEDUP_DATA/reuters21578``, never copied.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpora import DATA, load_stories, write_jsonl
from jobs import tables
from jobs.config import load_config
from jobs.embed import load_encoder
from jobs.sizing import default_threads

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "paragraphs", "embed", "index", "match", "cluster", "write")


@dataclass(frozen=True)
class Measured:
    """One process: wall seconds, peak resident memory, and what it reported about itself."""

    seconds: float
    peak_rss_gib: float
    report: dict[str, float | int]


def reuters_articles(size: int | None) -> list[dict]:
    """Reuters stories as job input, in file order, until they hold ``size`` paragraphs (None: all)."""
    articles, n_paragraphs = [], 0
    for story in load_stories(DATA / "reuters21578"):
        if size is not None and n_paragraphs >= size:
            break
        articles.append(
            {
                "article_id": story.story_id,
                "outlet": "reuters",
                "title": story.title,
                "published_at": story.date.isoformat(),
                "text": "\n".join(story.paragraphs),
            }
        )
        n_paragraphs += len(story.paragraphs)
    return articles


def measure(command: Sequence[str], checkout: Path = ROOT) -> tuple[float, float, str]:
    """Run ``command`` in ``checkout`` (its code first on the path): its wall seconds, peak RSS in GiB (wait4:
    that process and its children), stdout."""
    # Output goes to files, not pipes: a full pipe would block the child while we wait for it.
    env = os.environ | {"PYTHONPATH": str(checkout)}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=checkout, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{err.read().decode()[-3000:]}")
        return seconds, usage.ru_maxrss / 2**20, out.read().decode()  # ru_maxrss is in KiB on Linux


def measure_job(
    config: Path,
    input_path: Path,
    output: Path,
    cache: Path,
    overrides: Sequence[str] = (),
    checkout: Path = ROOT,
) -> Measured:
    """``newsdedup run`` in its own process; the report is the row it appended to the runs table.

    ``overrides`` are more ``--set key=value`` settings; ``checkout`` is the code that runs.
    """
    command = [
        sys.executable,
        "-m",
        "jobs.cli",
        "run",
        "--config",
        str(config),
        "--input",
        str(input_path),
        "--output",
        str(output),
        "--set",
        f"embed.cache_path={cache}",
        "--set",
        "embed.progress=false",
        "--log-level",
        "WARNING",
        *(arg for setting in overrides for arg in ("--set", setting)),
    ]
    seconds, rss, _ = measure(command, checkout)
    runs = tables.open_table(output, "runs").to_table()
    last = runs.sort_by([("started_at", "descending")]).slice(0, 1).to_pylist()[0]
    return Measured(seconds, rss, last)


def run_reference(input_path: Path, threads: int) -> Measured:
    seconds, rss, out = measure(
        [sys.executable, "-m", "benchmarks.reference", str(input_path), "--threads", str(threads)]
    )
    return Measured(seconds, rss, json.loads(out.strip().splitlines()[-1]))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def bench_size(
    size: int | None,
    config: Path,
    work: Path,
    repeats: int,
    reference: bool,
    threads: int,
    against: Path | None = None,
) -> dict:
    """Cold, warm and reference runs on one subset (and cold runs of the ``against`` checkout, alternating
    with this one's); medians and the per-stage split."""
    label = "all" if size is None else str(size)
    folder = work / label
    shutil.rmtree(folder, ignore_errors=True)
    input_path = write_jsonl(reuters_articles(size), folder / "reuters.jsonl")
    cold, warm, ref, old = [], [], [], []
    for i in range(repeats):
        cache, output = folder / f"cache-{i}", folder / f"output-{i}"
        cold.append(measure_job(config, input_path, output, cache))
        print(f"{label}: cold {i + 1}/{repeats} {cold[-1].seconds:.1f} s", flush=True)
        if against is not None:
            old_config = against / "configs" / "default.yaml"
            old.append(
                measure_job(
                    old_config,
                    input_path,
                    folder / f"against-{i}",
                    folder / f"against-cache-{i}",
                    checkout=against,
                )
            )
            print(f"{label}: against cold {i + 1}/{repeats} {old[-1].seconds:.1f} s", flush=True)
    for i in range(repeats):  # reruns of the last cold run: same cache, same output folder
        warm.append(
            measure_job(config, input_path, folder / f"output-{repeats - 1}", folder / f"cache-{repeats - 1}")
        )
        print(f"{label}: warm {i + 1}/{repeats} {warm[-1].seconds:.1f} s", flush=True)
    for i in range(repeats if reference else 0):
        ref.append(run_reference(input_path, threads))
        print(f"{label}: reference {i + 1}/{repeats} {ref[-1].seconds:.1f} s", flush=True)
    report = cold[0].report
    result = {
        "size": label,
        "paragraphs": int(report["n_paragraphs"]),
        "candidates": int(report["n_clustered_candidates"]),
        "distinct": int(report["n_unique_texts"]),
        "cold_s": median([m.seconds for m in cold]),
        "cold_spread": (min(m.seconds for m in cold), max(m.seconds for m in cold)),
        "cold_rss": max(m.peak_rss_gib for m in cold),
        "warm_s": median([m.seconds for m in warm]),
        "warm_rss": max(m.peak_rss_gib for m in warm),
        "cold_stages": {s: median([float(m.report[f"seconds_{s}"]) for m in cold]) for s in STAGES},
        "warm_stages": {s: median([float(m.report[f"seconds_{s}"]) for m in warm]) for s in STAGES},
        "warm_encoded": max(int(m.report["n_embedded"]) for m in warm),
    }
    if old:
        result |= {
            "against_s": median([m.seconds for m in old]),
            "against_rss": max(m.peak_rss_gib for m in old),
        }
    if ref:
        result |= {
            "ref_s": median([m.seconds for m in ref]),
            "ref_rss": max(m.peak_rss_gib for m in ref),
            "ref_stages": {
                s: median([float(m.report[f"seconds_{s}"]) for m in ref])
                for s in ("embed", "index", "cluster")
            },
        }
    shutil.rmtree(folder)  # caches and outputs of a whole-collection run take gigabytes
    return result


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = next(
        int(line.split()[1]) / 2**20
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return f"{cpu}, {len(os.sched_getaffinity(0))} cores usable, {memory:.0f} GiB RAM, Python {platform.python_version()}"


def markdown(
    results: Sequence[dict], config: Path, repeats: int, command: str, against: str | None = None
) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    lines = [
        "# Performance",
        "",
        f"Generated by `{command}` on {dt.date.today().isoformat()} at commit `{commit.strip() or 'unknown'}`, "
        f"config `{config.relative_to(ROOT) if config.is_relative_to(ROOT) else config}`.",
        f"Machine: {machine()}. Medians of {repeats} runs (each a fresh process); the spread of cold runs is shown.",
        "",
        "Input: Reuters-21578, Distribution 1.0 (Lewis, 1997), whole stories in file order until the size is "
        "reached, one outlet. *Paragraphs/s* counts every paragraph the job read; *embedded* are those not "
        "too short and not boilerplate, *distinct* those left after the exact-duplicate short-circuit.",
        "",
        "| size | paragraphs | embedded | distinct | cold s (spread) | cold para/s | cold peak RSS | warm s | "
        "warm para/s | cold / warm | reference s | reference para/s | job / reference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        n = r["paragraphs"]
        ref = (
            f"{r['ref_s']:.1f} | {n / r['ref_s']:.0f} | **{r['ref_s'] / r['cold_s']:.2f}x**"
            if "ref_s" in r
            else "- | - | -"
        )
        lines.append(
            f"| {r['size']} | {n:,} | {r['candidates']:,} | {r['distinct']:,} | {r['cold_s']:.1f} "
            f"({r['cold_spread'][0]:.1f}-{r['cold_spread'][1]:.1f}) | **{n / r['cold_s']:.0f}** | "
            f"{r['cold_rss']:.2f} GiB | {r['warm_s']:.1f} | {n / r['warm_s']:.0f} | **{r['cold_s'] / r['warm_s']:.1f}x** | "
            f"{ref} |"
        )
    if against is not None:
        lines += [
            "",
            f"Against commit `{against}` (its own default config, cold, the same input, runs alternating with "
            "this commit's): *throughput ratio* is this commit's cold paragraphs/s over that commit's.",
            "",
            "| size | this commit cold s | against cold s | throughput ratio | against peak RSS |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['size']} | {r['cold_s']:.1f} | {r['against_s']:.1f} | **{r['against_s'] / r['cold_s']:.2f}** | "
            f"{r['against_rss']:.2f} GiB |"
            for r in results
            if "against_s" in r
        ]
    lines += [
        "",
        "Seconds per stage (medians; from the `runs` table of each run; the rest of the wall time is Python "
        "start-up and imports):",
        "",
        "| size | run | " + " | ".join(STAGES) + " |",
        "|---|---|" + "---|" * len(STAGES),
    ]
    for r in results:
        for kind in ("cold", "warm"):
            cells = " | ".join(f"{r[f'{kind}_stages'][s]:.1f}" for s in STAGES)
            lines.append(f"| {r['size']} | {kind} | {cells} |")
        if "ref_stages" in r:
            s = r["ref_stages"]
            lines.append(
                f"| {r['size']} | reference | - | - | {s['embed']:.1f} | {s['index']:.1f} | - | {s['cluster']:.1f} | - |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", nargs="+", default=["10000", "50000", "all"], help="paragraph counts, or all"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind per size (medians)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    parser.add_argument("--work", type=Path, default=Path("/tmp/newsdedup-performance"))
    parser.add_argument(
        "--no-reference", dest="reference", action="store_false", help="skip the reference runs"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="also write the tables here (docs/performance.md)"
    )
    parser.add_argument(
        "--against", default=None, help="a commit whose job's cold runs alternate with this one's (a ratio)"
    )
    args = parser.parse_args(argv)
    config = args.config.resolve()
    threads = load_config(config).threads or default_threads()
    load_encoder(load_config(config).embed, threads)  # a one-time export happens here, before any timing
    command = "python -m benchmarks.performance " + " ".join(argv if argv is not None else sys.argv[1:])
    with contextlib.ExitStack() as stack:
        against = stack.enter_context(_checkout(args.against, args.work)) if args.against else None
        if against is not None:  # its one-time export too, before any timing
            measure([sys.executable, "-c", "from jobs.cli import main; main(['export-model'])"], against)
        results = []
        for size in args.sizes:
            results.append(
                bench_size(
                    None if size == "all" else int(size),
                    config,
                    args.work,
                    args.repeats,
                    args.reference,
                    threads,
                    against,
                )
            )
            text = markdown(results, config, args.repeats, command.strip(), args.against)
            if args.out:  # after every size: a long invocation that is stopped keeps what it measured
                args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


@contextlib.contextmanager
def _checkout(rev: str, work: Path) -> Iterator[Path]:
    """A temporary git worktree of ``rev``, removed afterwards."""
    folder = work / f"checkout-{rev}"
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), rev], cwd=ROOT, check=True, capture_output=True
    )
    try:
        yield folder
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, check=False, capture_output=True
        )


if __name__ == "__main__":
    sys.exit(main())
