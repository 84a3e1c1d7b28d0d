"""``newsdedup`` command line."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
from pathlib import Path

from jobs.config import ConfigError, load_config

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
    for command in (run, export):
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
    run.add_argument("--output", help="output folder (overrides output.path)")
    run.add_argument("--run-date", help="YYYY-MM-DD the run is for (overrides run_date; default: today, UTC)")
    run.add_argument(
        "--executor", choices=["local", "ray"], help="where the parallel steps run (overrides executor)"
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
    except Exception as exc:
        log.debug("failure", exc_info=True)
        print(
            f"newsdedup: failed: {type(exc).__name__}: {exc} (earlier output is untouched; "
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


if __name__ == "__main__":
    sys.exit(main())
