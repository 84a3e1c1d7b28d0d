"""Scheduled runs that remember: the syndication benchmark spread over days, one run per day into one output
folder, against one batch run over all days' articles.

    python -m benchmarks.history [--stories 140] [--repeats 3] [--out docs/history.md]

The corpus is the syndication benchmark's (Reuters-21578 wire stories, Lewis 1997, republished by 8 outlets
by ``benchmarks/syndication.py``, seed 0), re-dated: the wire stories, in date order, spread over days 1-8,
each outlet's copy published 1 or 2 days after its wire story (the same time of day). Each day's run reads
the articles published that day (``run_date`` = that day, ``output.mode: replace_date``, default config
otherwise: ``history.days: 7``). What it measures:

- ARI (against the generator's truth, over the content paragraphs) of the cluster ids the day-by-day runs
  wrote (each paragraph's id in the latest run that wrote it), of the same runs with ``history.days: 0``,
  and of one batch run over all the articles.
- Rerun stability: days 3 and 8 rerun after every later day ran; every paragraph's cluster id compared.
- Cost: day 8 (a full 7 days of history) against the same input run with an empty history, wall seconds of
  a fresh process each (cold embedding cache), medians of ``--repeats``, alternating.
- Ray: days 1-4 run again with ``executor: ray`` (a local instance of 2 CPUs) into another folder; the tables
  compared with the local ones row by row (run ids aside).

Reuters-21578 is research-only data: read in place from ``$NEWSDEDUP_DATA/reuters21578``, never copied.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds

from benchmarks import syndication
from benchmarks.corpora import DATA, load_stories, write_jsonl
from benchmarks.metrics import partition_scores
from benchmarks.performance import ROOT, Measured, machine, measure_job, median
from jobs import tables

FIRST = dt.date(2025, 3, 1)  # day 1
WIRE_DAYS = 8
TIMED_DAY = 8  # the first day with a full 7 days of history
RERUN_DAYS = (3, 8)
RAY_DAYS = 4
COMPARED = ("articles", "paragraphs", "clusters", "pairs", "rejects", "cluster_changes")


def spread(corpus: syndication.Corpus) -> dict[int, list[dict]]:
    """Day number -> the articles published that day: wire stories over days 1..WIRE_DAYS in date order,
    copies 1 or 2 days after their story's wire article."""
    wire = sorted(
        (a for a in corpus.articles if a["outlet"] == syndication.WIRE),
        key=lambda a: (a["published_at"], a["article_id"]),
    )
    day_of = {a["article_id"].partition("/")[2]: 1 + k * WIRE_DAYS // len(wire) for k, a in enumerate(wire)}
    days: dict[int, list[dict]] = {}
    for article in corpus.articles:
        story = article["article_id"].partition("/")[2]
        later = (
            0
            if article["outlet"] == syndication.WIRE
            else random.Random(article["article_id"]).choice((1, 2))
        )
        day = day_of[story] + later
        clock = dt.datetime.fromisoformat(article["published_at"]).time()
        published = dt.datetime.combine(FIRST + dt.timedelta(days=day - 1), clock)
        days.setdefault(day, []).append(article | {"published_at": published.isoformat(timespec="seconds")})
    return dict(sorted(days.items()))


def run_date(day: int) -> dt.date:
    return FIRST + dt.timedelta(days=day - 1)


def read(output: Path, name: str) -> pa.Table:
    partitioning = ds.partitioning(pa.schema([tables.PARTITION]), flavor="hive")
    return ds.dataset(output / name, format="parquet", partitioning=partitioning).to_table()


def latest_ids(output: Path) -> dict[tuple[str, int], str]:
    """(article id, position) -> the paragraph's cluster id in the latest run that wrote it (its own id
    when unclustered)."""
    rows = sorted(
        read(output, "paragraphs").select(["run_date", "article_id", "position", "cluster_id"]).to_pylist(),
        key=lambda r: r["run_date"],
    )
    found = {}
    for r in rows:
        key = (r["article_id"], r["position"])
        found[key] = r["cluster_id"] or f"alone:{key}"
    return found


def day_ids(output: Path, day: int) -> dict[str, str | None]:
    table = read(output, "paragraphs")
    return {r["paragraph_id"]: r["cluster_id"] for r in table.to_pylist() if r["run_date"] == run_date(day)}


def ari(corpus: syndication.Corpus, ids: dict[tuple[str, int], str]) -> float:
    truth, predicted = [], []
    for article_id, labels in corpus.labels.items():
        for position, label in enumerate(labels):
            if label is not None:
                truth.append(label)
                predicted.append(ids.get((article_id, position), f"missing:{article_id}:{position}"))
    return partition_scores(truth, predicted)["ari"]


def comparable(output: Path, name: str, days: int) -> list[dict]:
    table = read(output, name)
    rows = [r for r in table.to_pylist() if r["run_date"] <= run_date(days)]
    volatile = {"run_id", "origin_run_id"}
    return sorted(
        ({k: v for k, v in r.items() if k not in volatile} for r in rows),
        key=lambda r: repr(sorted(r.items())),
    )


def bench(stories: int, repeats: int, config: Path, work: Path) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    corpus = syndication.generate(load_stories(DATA / "reuters21578"), n_stories=stories, seed=0)
    days = spread(corpus)
    inputs = {
        day: write_jsonl(articles, work / "input" / f"day-{day}.jsonl") for day, articles in days.items()
    }
    cache = work / "cache"  # one cache per folder of runs, as a scheduled job keeps it

    def run(day: int, output: Path, *settings: str, cache: Path = cache) -> Measured:
        measured = measure_job(
            config,
            inputs[day],
            output,
            cache,
            [f"run_date={run_date(day)}", "output.mode=replace_date", "threads=2", *settings],
        )
        print(f"day {day} -> {output.name} {' '.join(settings)}: {measured.seconds:.1f} s", flush=True)
        return measured

    daily = {day: run(day, work / "daily") for day in days}
    for day in days:
        run(day, work / "alone", "history.days=0", cache=work / "cache-alone")
    result = {
        "stories": stories,
        "articles": len(corpus.articles),
        "paragraphs": sum(int(m.report["n_paragraphs"]) for m in daily.values()),
        "per_day": {day: (len(days[day]), int(m.report["n_paragraphs"])) for day, m in daily.items()},
        "ari_daily": ari(corpus, latest_ids(work / "daily")),
        "ari_alone": ari(corpus, latest_ids(work / "alone")),
    }
    batch_input = write_jsonl([a for d in days.values() for a in d], work / "input" / "all.jsonl")
    measure_job(
        config, batch_input, work / "batch", work / "cache-batch", [f"run_date={run_date(max(days))}"]
    )
    result["ari_batch"] = ari(corpus, latest_ids(work / "batch"))

    stable = {}
    for day in RERUN_DAYS:
        before = day_ids(work / "daily", day)
        run(day, work / "daily")
        stable[day] = (before == day_ids(work / "daily", day), len(before))
    result["stable"] = stable

    with_history, without = [], []
    for i in range(repeats):  # alternating, so a noisy minute hurts both alike
        with_history.append(run(TIMED_DAY, work / "daily", cache=work / f"cache-timed-{i}"))
        without.append(run(TIMED_DAY, work / f"empty-{i}", cache=work / f"cache-empty-{i}"))
    result["timed"] = {
        "with": median([m.seconds for m in with_history]),
        "without": median([m.seconds for m in without]),
        "with_spread": (min(m.seconds for m in with_history), max(m.seconds for m in with_history)),
        "without_spread": (min(m.seconds for m in without), max(m.seconds for m in without)),
        "history_s": median([float(m.report["seconds_history"]) for m in with_history]),
        "stages": {
            label: {
                s: median([float(m.report[f"seconds_{s}"]) for m in measured])
                for s in ("embed", "history", "index", "match", "cluster", "write")
            }
            for label, measured in (("with", with_history), ("without", without))
        },
        "paragraphs": int(with_history[0].report["n_paragraphs"]),
    }

    for day in range(1, RAY_DAYS + 1):
        run(day, work / "ray", "executor=ray", "ray.num_cpus=2", cache=work / "cache-ray")
    result["ray_identical"] = all(
        comparable(work / "daily", name, RAY_DAYS) == comparable(work / "ray", name, RAY_DAYS)
        for name in COMPARED
    )
    return result


def markdown(r: dict, repeats: int, command: str) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    t = r["timed"]
    ratio = t["with"] / t["without"]
    lines = [
        "# Scheduled runs that remember (history)",
        "",
        f"Generated by `{command}` on {dt.date.today().isoformat()} at commit `{commit or 'unknown'}`; do not "
        "edit by hand. What history does: README, Scheduled runs.",
        f"Machine: {machine()}.",
        "",
        f"Corpus: the syndication benchmark ({r['stories']} Reuters-21578 wire stories, Lewis 1997, republished "
        f"by 8 outlets, seed 0: {r['articles']:,} articles, {r['paragraphs']:,} paragraphs), the wire stories "
        f"spread over days 1-{WIRE_DAYS} and each copy published 1 or 2 days after its wire story; one run per "
        "day into one output folder (`output.mode: replace_date`, default config: `history.days: 7`).",
        "",
        "Articles (paragraphs) per day: "
        + ", ".join(f"day {d}: {a} ({p:,})" for d, (a, p) in r["per_day"].items())
        + ".",
        "",
        "| | ARI |",
        "|---|---|",
        f"| one run per day, history on (each paragraph's id in the latest run that wrote it) | "
        f"**{r['ari_daily']:.3f}** |",
        f"| one run per day, `history.days: 0` (every run alone) | {r['ari_alone']:.3f} |",
        f"| one batch run over all the articles | {r['ari_batch']:.3f} |",
        "",
        f"Day by day with history against batch: {r['ari_daily'] - r['ari_batch']:+.3f} (bar: ARI >= 0.9 and "
        "within 0.02 of batch).",
        "",
        "Rerun stability (a day rerun after every later day ran; every paragraph of its partition compared): "
        + "; ".join(
            f"day {d}: {n:,} paragraphs, {'every cluster id unchanged' if same else '**ids changed**'}"
            for d, (same, n) in r["stable"].items()
        )
        + ".",
        "",
        f"Cost: day {TIMED_DAY} ({t['paragraphs']:,} paragraphs) with its full 7 days of history against the "
        f"same input with an empty history; fresh process and cold embedding cache each, medians of {repeats} "
        "(alternating):",
        "",
        "| | wall s (spread) | embed | history | index | match | cluster | write |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, name in (("with", "7 days of history"), ("without", "empty history")):
        spread_ = t[f"{label}_spread"]
        cells = " | ".join(
            f"{t['stages'][label][s]:.1f}" for s in ("embed", "history", "index", "match", "cluster", "write")
        )
        lines.append(f"| {name} | {t[label]:.1f} ({spread_[0]:.1f}-{spread_[1]:.1f}) | {cells} |")
    lines += [
        "",
        f"Ratio: **{ratio:.2f}x** (bar: at most 1.5x). Stage seconds from the `runs` table; the rest of the "
        "wall time is start-up (imports, the model).",
        "",
        f"Ray: days 1-{RAY_DAYS} run again with `executor: ray` (a local instance of 2 CPUs) give "
        + ("**the same tables**" if r["ray_identical"] else "**different tables**")
        + f" as the local runs ({', '.join(COMPARED)}; run ids aside).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=140, help="wire stories of the syndication corpus")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs each way (medians)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    parser.add_argument("--work", type=Path, default=Path("/tmp/newsdedup-history"))
    parser.add_argument("--out", type=Path, default=None, help="also write the report here (docs/history.md)")
    args = parser.parse_args(argv)
    command = "python -m benchmarks.history " + " ".join(argv if argv is not None else sys.argv[1:])
    result = bench(args.stories, args.repeats, args.config.resolve(), args.work)
    text = markdown(result, args.repeats, command.strip())
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    ok = (
        result["ari_daily"] >= 0.9
        and abs(result["ari_daily"] - result["ari_batch"]) <= 0.02
        and all(same for same, _ in result["stable"].values())
        and result["timed"]["with"] <= 1.5 * result["timed"]["without"]
        and result["ray_identical"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
