"""The same job on the local and the ray executor, on one corpus and one machine: what Ray costs and gives.

    python -m benchmarks.ray_vs_local [--stories 180 400] [--repeats 3] [--cpus 2] [--out docs/executors.md]

For each corpus size (stories of the syndication benchmark: Reuters-21578 wire stories republished by 8
outlets, ``benchmarks/syndication.py``, seed 0), ``newsdedup run`` runs ``--repeats`` times with each
executor, every run a fresh process with an empty embedding cache: Ray's start-up (a local instance with
``--cpus`` CPUs, its workers, one model per embedding actor) counts, as it would for a scheduled job that
starts its own instance. The tables of the two executors are compared row by row. Wall seconds are medians;
stage seconds come from the ``runs`` table. Peak memory is not compared: Ray's work happens in worker
processes that are not the job's children. Reuters-21578 (Lewis, 1997) is research-only data: read in place
from ``$NEWSDEDUP_DATA/reuters21578``, never copied.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from benchmarks import syndication
from benchmarks.corpora import DATA, load_stories, write_jsonl
from benchmarks.performance import ROOT, STAGES, Measured, machine, measure_job, median
from jobs import tables

EXECUTORS = ("local", "ray")
COMPARED = ("articles", "paragraphs", "clusters", "pairs", "rejects")


def read_rows(output: Path, name: str) -> list[dict]:
    """A table's rows without the columns that differ between any two runs."""
    partitioning = ds.partitioning(pa.schema([tables.PARTITION]), flavor="hive")
    table = ds.dataset(output / name, format="parquet", partitioning=partitioning).to_table()
    return table.drop_columns(["run_id"]).to_pylist()


def bench(stories: int, repeats: int, cpus: int, config: Path, work: Path) -> dict:
    folder = work / f"stories-{stories}"
    shutil.rmtree(folder, ignore_errors=True)
    corpus = syndication.generate(load_stories(DATA / "reuters21578"), n_stories=stories, seed=0)
    input_path = write_jsonl(corpus.articles, folder / "articles.jsonl")
    runs: dict[str, list[Measured]] = {name: [] for name in EXECUTORS}
    for i in range(repeats):
        for name in EXECUTORS:  # alternating, so a noisy minute hurts both alike
            settings = [f"executor={name}", f"threads={cpus}", f"run_date={dt.date(2025, 1, 1)}"]
            if name == "ray":
                settings.append(f"ray.num_cpus={cpus}")
            output = folder / f"{name}-{i}"
            runs[name].append(measure_job(config, input_path, output, folder / f"cache-{name}-{i}", settings))
            print(f"{stories} stories: {name} {i + 1}/{repeats} {runs[name][-1].seconds:.1f} s", flush=True)
    identical = all(
        read_rows(folder / f"local-{i}", name) == read_rows(folder / f"ray-{i}", name)
        for i in range(repeats)
        for name in COMPARED
    )
    report = runs["local"][0].report
    result = {
        "stories": stories,
        "paragraphs": int(report["n_paragraphs"]),
        "distinct": int(report["n_unique_texts"]),
        "identical": identical,
    }
    for name, measured in runs.items():
        result[name] = {
            "seconds": median([m.seconds for m in measured]),
            "spread": (min(m.seconds for m in measured), max(m.seconds for m in measured)),
            "stages": {s: median([float(m.report[f"seconds_{s}"]) for m in measured]) for s in STAGES},
            "resources": measured[0].report["executor_resources"],
        }
    shutil.rmtree(folder)
    return result


def actor_memory(texts: list[str], cpus: int, config: Path) -> list[float]:
    """Peak RSS (MiB, VmHWM) of each embedding actor after embedding ``texts`` on a local Ray instance."""
    import ray

    from jobs.config import load_config
    from jobs.embed import ConfiguredEncoder
    from jobs.executors import RayExecutor

    job = load_config(config)
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        executor = RayExecutor(job.ray, cpus)
        with ThreadPoolExecutor(1) as pool:
            # Watched while it runs: Ray Data ends the actors as soon as the dataset is done.
            done = pool.submit(executor.encode, texts, ConfiguredEncoder(job.embed))
            peaks: dict[int, float] = {}
            while not done.done():
                peaks |= {pid: max(peaks.get(pid, 0.0), mib) for pid, mib in _actor_peaks().items()}
                time.sleep(0.2)
            done.result()
        return sorted(peaks.values())
    finally:
        ray.shutdown()


def _actor_peaks() -> dict[int, float]:
    """Peak RSS (MiB) of each live embedding actor process, by pid."""
    peaks = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            # Ray names a worker process after what it runs: ray::MapWorker(MapBatches(_EncodeActor)).
            if b"EncodeActor" in (proc / "cmdline").read_bytes():
                status = (proc / "status").read_text()
                peaks[int(proc.name)] = int(status.split("VmHWM:")[1].split()[0]) / 1024
        except (OSError, IndexError):  # a process that ended meanwhile
            continue
    return peaks


def markdown(
    results: list[dict], repeats: int, cpus: int, command: str, memory: tuple[int, list[float]] | None = None
) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# Local and Ray executors on one machine",
        "",
        f"Generated by `{command}` on {dt.date.today().isoformat()} at commit `{commit or 'unknown'}`; do not "
        "edit by hand. How to run on a cluster: [ray.md](ray.md).",
        f"Machine: {machine()}. Each run is a fresh process with an empty embedding cache, {cpus} CPUs for "
        f"either executor (Ray: a local instance started by the run); medians of {repeats} runs, spread shown.",
        "",
        "Input: the syndication benchmark's corpus (Reuters-21578 wire stories, Lewis 1997, republished by 8 "
        "outlets by `benchmarks/syndication.py`, seed 0).",
        "",
        "| stories | paragraphs | distinct embedded | local s (spread) | ray s (spread) | ray / local | "
        "tables identical |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        local, ray = r["local"], r["ray"]
        lines.append(
            f"| {r['stories']} | {r['paragraphs']:,} | {r['distinct']:,} | {local['seconds']:.1f} "
            f"({local['spread'][0]:.1f}-{local['spread'][1]:.1f}) | {ray['seconds']:.1f} "
            f"({ray['spread'][0]:.1f}-{ray['spread'][1]:.1f}) | **{ray['seconds'] / local['seconds']:.2f}x** | "
            f"{'yes' if r['identical'] else '**no**'} |"
        )
    lines += [
        "",
        "Seconds per stage (medians, from the `runs` table; the rest of the wall time is start-up: imports, "
        "and for Ray starting the instance):",
        "",
        "| stories | executor | " + " | ".join(STAGES) + " |",
        "|---|---|" + "---|" * len(STAGES),
    ]
    for r in results:
        for name in EXECUTORS:
            cells = " | ".join(f"{r[name]['stages'][s]:.1f}" for s in STAGES)
            lines.append(f"| {r['stories']} | {name} | {cells} |")
    lines += ["", f"Ray's resources as the runs table recorded them: `{results[-1]['ray']['resources']}`."]
    if memory:
        lines += [
            "",
            f"Peak RSS of each embedding actor (one model each, {cpus} actors) after embedding {memory[0]:,} "
            f"paragraphs of the corpus: {', '.join(f'{m:.0f} MiB' for m in memory[1])}.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", nargs="+", type=int, default=[180, 400], help="corpus sizes, in stories")
    parser.add_argument("--repeats", type=int, default=3, help="runs per executor and size (medians)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs for either executor")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    parser.add_argument("--work", type=Path, default=Path("/tmp/newsdedup-ray-vs-local"))
    parser.add_argument(
        "--out", type=Path, default=None, help="also write the tables here (docs/executors.md)"
    )
    args = parser.parse_args(argv)
    command = "python -m benchmarks.ray_vs_local " + " ".join(argv if argv is not None else sys.argv[1:])
    results = []
    for stories in args.stories:
        results.append(bench(stories, args.repeats, args.cpus, args.config.resolve(), args.work))
        text = markdown(results, args.repeats, args.cpus, command.strip())
        if args.out:  # after every size: a stopped invocation keeps what it measured
            args.out.write_text(text, encoding="utf-8")
    corpus = syndication.generate(load_stories(DATA / "reuters21578"), n_stories=args.stories[0], seed=0)
    texts = [p for a in corpus.articles for p in a["text"].split("\n") if len(p.split()) >= 8]
    memory = (len(texts), actor_memory(texts, args.cpus, args.config.resolve()))
    text = markdown(results, args.repeats, args.cpus, command.strip(), memory)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0 if all(r["identical"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
