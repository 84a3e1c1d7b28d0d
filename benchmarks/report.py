"""How long ``newsdedup report`` takes, and how big its page is, on the whole Reuters-21578 run.

    python -m benchmarks.report [--output DIR] [--work /tmp/newsdedup-report] [--desks 8] [--repeats 3]
                                [--out docs/report.md]

Without ``--output`` it first runs the job once (default config, a fresh embedding cache) on every
Reuters-21578 story with a body, each story published by one of ``--desks`` outlets picked by a hash of its
id: the collection's repeats and updates of a story then mostly span outlets, so most clusters are
cross-outlet ones, the report's worst case (with one outlet, as in docs/performance.md, the page would hold
no cluster at all). The output folder is kept, so ``--output`` can reuse it. Then ``newsdedup report`` runs
``--repeats`` times, each in a fresh process (imports count); the page's size and the median seconds go to
``--out``. Reuters-21578 (Lewis, 1997) is research-only data: read in place from
``$NEWSDEDUP_DATA/reuters21578``, never copied.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import statistics
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc

from benchmarks.corpora import write_jsonl
from benchmarks.performance import machine, measure, measure_job, reuters_articles
from jobs import tables
from jobs.config import load_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "default.yaml"


def desk_articles(desks: int) -> list[dict]:
    """Every Reuters story as job input, its outlet one of ``desks`` picked by a hash of its id."""
    return [
        article
        | {"outlet": f"desk-{int(hashlib.sha256(article['article_id'].encode()).hexdigest(), 16) % desks}"}
        for article in reuters_articles(None)
    ]


def run_job(work: Path, desks: int) -> Path:
    """Run the job once on the desk input under ``work``; the output folder."""
    input_path = write_jsonl(desk_articles(desks), work / "reuters-desks.jsonl")
    output = work / "output"
    measured = measure_job(CONFIG, input_path, output, work / "cache", ("report.enabled=false",))
    print(f"job: {measured.seconds:.0f} s, run {measured.report['run_id']} -> {output}", flush=True)
    return output


def markdown(run: dict, n_outlets: int, seconds: list[float], size: int, command: str) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    cap = load_config(CONFIG).report.max_clusters
    return "\n".join(
        [
            "# The HTML report on a large run",
            "",
            f"Written by `{command}` on {dt.date.today().isoformat()} at commit `{commit or 'unknown'}`; "
            "rerun it to update, do not edit by hand.",
            f"Machine: {machine()} (shared with other work).",
            "",
            "Input: Reuters-21578, Distribution 1.0 (Lewis, 1997), every story with a body, each published by "
            f"one of {n_outlets} outlets (`desk-0`, ...) picked by a hash of its id (benchmarks/report.py says "
            "why); the job's default config.",
            "",
            f"Run `{run['run_id']}`: {run['n_articles']:,} articles, {run['n_paragraphs']:,} paragraphs, "
            f"{run['n_clusters']:,} clusters, {run['n_cross_outlet_clusters']:,} of them cross-outlet; the page "
            f"embeds the first {cap} (`report.max_clusters`).",
            "",
            "| what | value | bar |",
            "|---|---|---|",
            f"| `newsdedup report`, seconds (median of {len(seconds)} fresh processes; "
            f"{min(seconds):.1f}-{max(seconds):.1f}) | **{statistics.median(seconds):.1f}** | under 30 |",
            f"| page size, MB | **{size / 1e6:.2f}** | under 10 |",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="an output folder of the Reuters run to reuse")
    parser.add_argument("--work", type=Path, default=Path("/tmp/newsdedup-report"))
    parser.add_argument("--desks", type=int, default=8, help="outlets the stories are spread over")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.md")
    args = parser.parse_args()
    output = args.output or run_job(args.work, args.desks)
    page = args.work / "report.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "jobs.cli", "report", "--output", str(output), "--out", str(page)]
    seconds = []
    for i in range(args.repeats):
        seconds.append(measure(command)[0])
        print(
            f"report {i + 1}/{args.repeats}: {seconds[-1]:.1f} s, {page.stat().st_size / 1e6:.2f} MB",
            flush=True,
        )
    runs = tables.open_table(output, "runs").to_table().to_pylist()
    run = max(runs, key=lambda r: r["finished_at"])
    shown = "python -m benchmarks.report" + (" --output DIR" if args.output else "")
    shown += f" --desks {args.desks}" if args.desks != 8 else ""
    shown += f" --repeats {args.repeats}" if args.repeats != 3 else ""
    articles = tables.open_table(output, "articles").to_table(filter=pc.field("run_id") == run["run_id"])
    n_outlets = len(articles["outlet"].unique())
    args.out.write_text(markdown(run, n_outlets, seconds, page.stat().st_size, shown), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
