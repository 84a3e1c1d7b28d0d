"""``newsdedup`` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import logging
import sys
from pathlib import Path

from jobs import commit
from jobs.config import ConfigError, JobConfig, load_config

log = logging.getLogger("newsdedup")

# Exit codes: 0 success, 1 an unexpected failure, 2 a config or input problem the user can fix,
# 3 the run committed but no article passed ingest (every record was rejected).
EXIT_FAILED, EXIT_USAGE, EXIT_EMPTY = 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsdedup", description="Find the same reporting across news outlets."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the batch job and write the Parquet tables")
    export = commands.add_parser(
        "export-model",
        help="prepare the configured model ahead of a run (the ONNX export of embed.backend onnx / onnx-int8)",
    )
    repair = commands.add_parser(
        "repair",
        help="repair what killed runs left in the output folder (as every run does first) and report its state",
    )
    report = commands.add_parser(
        "report",
        help="write the HTML report of a committed run (default: the latest) from the output folder's tables",
    )
    for command in (run, export, repair, report):
        command.add_argument(
            "--config",
            type=Path,
            default=None,
            help="YAML config (default: built-in defaults, as in configs/default.yaml)",
        )
        command.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override any config key, e.g. --set match.min_probability=0.6 (repeatable)",
        )
        command.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.add_argument("--input", help="input path (overrides input.path)")
    for command in (run, repair, report):
        command.add_argument("--output", help="output folder (overrides output.path)")
    run.add_argument("--run-date", help="YYYY-MM-DD the run is for (overrides run_date; default: today, UTC)")
    run.add_argument(
        "--executor", choices=["local", "ray"], help="where the parallel steps run (overrides executor)"
    )
    which = report.add_mutually_exclusive_group()
    which.add_argument("--run-id", help="the run to report on (default: the latest committed run)")
    which.add_argument(
        "--run-date", dest="report_date", help="YYYY-MM-DD: report on the latest committed run of that day"
    )
    report.add_argument(
        "--out",
        type=Path,
        help="HTML file to write (default: <output>/report/run_date=YYYY-MM-DD/<run_id>.html)",
    )
    return parser


def _version() -> str:
    try:
        return importlib.metadata.version("newsdedup")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # faiss logs at INFO which SIMD module it loads; its AVX2 code is built in (dynamic dispatch).
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    given = {
        k: getattr(args, a, None)
        for k, a in (
            ("input.path", "input"),
            ("output.path", "output"),
            ("run_date", "run_date"),
            ("executor", "executor"),
        )
    }
    try:
        config = load_config(args.config, args.overrides, {k: v for k, v in given.items() if v is not None})
        if args.command == "repair":
            return _repair(config)
        if args.command == "report":
            return _report(config, args.run_id, args.report_date, args.out)
        # Imported here so that `--help` and config errors answer without loading torch.
        from embeddings.models import ModelError
        from jobs.embed import load_encoder
        from jobs.pipeline import run_job
        from jobs.sizing import default_threads

        try:
            if args.command == "export-model":
                encoder = load_encoder(config.embed, config.threads or default_threads())
                print(
                    f"model {config.embed.model} ready for backend {config.embed.backend}: {encoder.identity}"
                )
                return 0
            result = run_job(config)
        except ModelError as exc:
            raise ConfigError(str(exc)) from None
    except ConfigError as exc:
        print(f"newsdedup: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("newsdedup: interrupted; earlier output is untouched", file=sys.stderr)
        return EXIT_FAILED
    except commit.OutputError as exc:  # its message names the path, what to do, and what became of the output
        log.debug("failure", exc_info=True)
        print(f"newsdedup: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        log.debug("failure", exc_info=True)
        advice = f"{commit.advice(exc)}; " if isinstance(exc, OSError) else ""
        print(
            f"newsdedup: failed: {type(exc).__name__}: {exc} ({advice}earlier output is untouched; "
            "rerun with --log-level DEBUG for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if result.status == "empty":
        print(
            f"newsdedup: no article passed ingest ({result.counts['n_rejects']} rejects): "
            f"see {result.output / 'rejects'}",
            file=sys.stderr,
        )
        return EXIT_EMPTY
    print(
        f"run {result.run_id}: {result.counts['n_articles']} articles, {result.counts['n_paragraphs']} paragraphs, "
        f"{result.counts['n_clusters']} clusters ({result.counts['n_cross_outlet_clusters']} cross-outlet) "
        f"-> {result.output}"
    )
    return 0


def _report(config: JobConfig, run_id: str | None, run_date: str | None, out: Path | None) -> int:
    """``newsdedup report``: the HTML page of one committed run."""
    from jobs.report import write_report  # Jinja2 and the tables only: no model, no torch

    try:
        day = dt.date.fromisoformat(run_date) if run_date else None
    except ValueError:
        raise ConfigError(f"--run-date {run_date!r} is not a date: use YYYY-MM-DD") from None
    path = write_report(
        config.output.path,
        config.report,
        lock_timeout=config.output.lock_timeout,
        run_id=run_id,
        run_date=day,
        out=out,
    )
    print(f"report: {path}")
    return 0


def _repair(config: JobConfig) -> int:
    """``newsdedup repair``: settle what killed runs left, then report; exit 1 if something is still wrong."""
    root = config.output.path
    if not root.is_dir():
        raise ConfigError(f"output folder {root} does not exist: pass --output or set output.path")
    done = commit.repair(root, lock_timeout=config.output.lock_timeout, holder="newsdedup repair")
    state = commit.inspect(root)
    for line in done.lines() or ["nothing to repair"]:
        print(f"repaired: {line}")
    days = ", ".join(f"{day}: {n}" for day, n in state.runs_per_day.items())
    live = f"; {len(done.staging_in_use)} run(s) in progress" if done.staging_in_use else ""
    print(
        f"{root}: {sum(state.runs_per_day.values())} committed run(s) over {len(state.runs_per_day)} day(s)"
        f"{f' ({days})' if days else ''}{live}"
    )
    for problem in state.problems:
        print(f"problem: {problem}")
    if not state.problems:
        print("every committed run is complete")
    return EXIT_FAILED if state.problems else 0


if __name__ == "__main__":
    sys.exit(main())
