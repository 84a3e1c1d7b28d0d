"""Compare the latest run's tables in two output folders, e.g. `make run`'s and the container image's run on
the seeds (docs/container.md), leaving out what differs between any two runs by design: run ids, start and
finish times, stage timings, the environment (versions, threads, the executor's resources), the day the run
is for, and where the input and output were (paths in the config and the articles' sources).

    python scripts/compare_outputs.py output output-image

Prints one line per table and exits 1 when a table differs (its first differing rows are printed).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from jobs import tables

# Columns that differ between two runs of the same job on the same input.
_PER_RUN = {"run_id", "run_date", "started_at", "finished_at", "config_hash", "input_path", "threads"}
# What names or dates the run a paragraph or cluster was first seen in (history): per run too.
_PER_RUN |= {"origin_run_id", "origin_run_date", "first_seen_at"}
_ENVIRONMENT = {"versions", "executor_resources"}
# Floats are compared to this absolute tolerance: two builds of the same libraries may round differently.
TOLERANCE = 1e-6


def latest_run(output: Path) -> dict[str, Any]:
    """The runs row of the last run committed under ``output``."""
    runs = tables.open_table(output, "runs").to_table()
    if runs.num_rows == 0:
        raise SystemExit(f"{output}: no committed run")
    return runs.take([pc.index(runs["started_at"], pc.max(runs["started_at"])).as_py()]).to_pylist()[0]


def comparable_rows(output: Path, name: str, run: dict[str, Any]) -> list[dict[str, Any]]:
    """Table ``name`` of ``run``, without the per-run columns, paths made relative to the input, sorted."""
    table: pa.Table = tables.open_table(output, name).to_table(filter=pc.field("run_id") == run["run_id"])
    keep = [
        c for c in table.column_names if c not in _PER_RUN | _ENVIRONMENT and not c.startswith("seconds_")
    ]
    rows = table.select(keep).to_pylist()
    prefix = str(run["input_path"]).rstrip("/") + "/"
    for row in rows:
        if "source" in row and row["source"].startswith(prefix):
            row["source"] = row["source"][len(prefix) :]
        if "config_json" in row:
            config = json.loads(row["config_json"])
            del config["input"]["path"], config["output"]["path"]
            row["config_json"] = json.dumps(config, sort_keys=True)
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, abs_tol=TOLERANCE) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def compare(left: Path, right: Path) -> bool:
    """Print how each table of the two folders' latest runs compares; True when every table is the same."""
    runs = latest_run(left), latest_run(right)
    print(f"{left}: run {runs[0]['run_id']}; {right}: run {runs[1]['run_id']}")
    equal = True
    for name in tables.SCHEMAS:
        a, b = (comparable_rows(output, name, run) for output, run in zip((left, right), runs, strict=True))
        differing = [(x, y) for x, y in zip(a, b, strict=False) if not all(same(x[c], y[c]) for c in x)]
        if len(a) == len(b) and not differing:
            print(f"{name}: {len(a)} rows, the same")
            continue
        equal = False
        print(f"{name}: {len(a)} rows against {len(b)}, {len(differing)} of the sorted rows differ")
        for x, y in differing[:3]:
            columns = sorted(c for c in x if not same(x[c], y[c]))
            print(f"  {', '.join(columns)}:")
            for row in (x, y):
                print("   ", "; ".join(f"{c}={str(row[c])[:60]}" for c in columns))
    return equal


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("left", type=Path, help="an output folder, e.g. output (make run)")
    parser.add_argument("right", type=Path, help="another, e.g. output-image (the container image's run)")
    args = parser.parse_args()
    return 0 if compare(args.left, args.right) else 1


if __name__ == "__main__":
    sys.exit(main())
