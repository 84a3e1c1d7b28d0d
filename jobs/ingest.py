"""The ingest stage: find the input files (a folder of text files, JSONL, CSV or Parquet), read them
(jobs/readers.py) and validate every record into an article or a reject (jobs/records.py).

The input is a local path or a URI (``s3://``, ``gs://``, ``hdfs://``, ``file://``) read through the pyarrow
filesystem it names; sources and rejects name a file by its local path or by its URI.

A bad record or file never stops the run and is never dropped silently: it becomes a ``Reject`` saying what
is wrong, where (the file, and the line of the file), and what to do. Only input that cannot be read at all
(a missing path, no input files, a required column that is not there) raises ``InputError``, before anything
is written.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pyarrow.fs as pafs

from jobs.config import InputConfig
from jobs.locations import Location, locate, walk
from jobs.parallel import MapData, in_process
from jobs.readers import manifest_path, manifest_rows, read_files, read_text_files
from jobs.records import Article, IngestResult, InputError, Record, Reject, build_article

_KINDS = {
    ".txt": "text",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
}


def read_articles(config: InputConfig, map_data: MapData = in_process) -> IngestResult:
    """Read all input articles (files in sorted order, records in file order), rejecting invalid ones.

    ``map_data(fn, files)`` runs the reading of the files (an executor's data-parallel map; by default in
    this process); checking ids across files happens here, in file order, whatever ran the reading.
    """
    root = locate(config.path)
    root_type = root.file_type()
    folder = root if root_type == pafs.FileType.Directory else root.parent
    manifest = manifest_path(folder, config.manifest)
    kind, files, link_rejects = _input_files(config, root, root_type, manifest)
    # Files found in a folder must stay in it (a symlink may not lead out); a file given as the input may be one.
    inside = root if root_type == pafs.FileType.Directory else None
    if kind == "text":
        # Reading a single file, the rows for other files are none of its business: they go unchecked.
        check_all = root_type == pafs.FileType.Directory
        manifest_rejects, rows = manifest_rows(config, folder, manifest, files, check_all)
        read = functools.partial(
            read_text_files, config=config, folder=folder, manifest=manifest, rows=rows, inside=inside
        )
    else:
        read = functools.partial(read_files, kind=kind, config=config, folder=inside)
        manifest_rejects = []
    records = [*link_rejects, *manifest_rejects, *map_data(read, files)]
    articles: list[Article] = []
    rejects: list[Reject] = []
    first_seen: dict[str, str] = {}
    for item in records:
        result = build_article(item, config, first_seen) if isinstance(item, Record) else item
        if isinstance(result, Article):
            articles.append(result)
        else:
            rejects.append(result)
    return IngestResult(articles=articles, rejects=rejects, files=len(files))


def _input_files(
    config: InputConfig, path: Location, path_type: pafs.FileType, manifest: Location
) -> tuple[str, list[Location], list[Reject]]:
    """The format to read and the files to read with it, sorted (the manifest is not one of them), and the
    rejects of symlinked folders that lead out of the input folder (they are not read)."""
    if path_type == pafs.FileType.NotFound:
        raise InputError(f"input path {path} does not exist: set input.path or pass --input")
    if path_type == pafs.FileType.File:
        kind = _KINDS.get(path.suffix.lower()) if config.format == "auto" else config.format
        if kind is None:
            raise InputError(
                f"cannot tell the format of {path} from its extension: name it .txt, .json, .jsonl, .ndjson, "
                ".csv or .parquet, or set input.format"
            )
        return kind, [path], []
    manifest_key = manifest.key
    listing = walk(path)
    inside = Path(os.path.realpath(path.path))
    rejects = [
        Reject(
            str(link),
            "",
            f"a symbolic link to the folder {target}, outside the input folder {path}: not read; move the files "
            "into the input folder, or point input.path at the folder that holds them",
        )
        for link in listing.folder_links
        if not (target := Path(os.path.realpath(link.path))).is_relative_to(inside)
    ]
    by_kind: dict[str, list[Location]] = {}
    for file in listing.files:
        kind = _KINDS.get(file.suffix.lower())
        if kind is not None and not (kind == "csv" and file.key == manifest_key):
            by_kind.setdefault(kind, []).append(file)
    if config.format != "auto":
        if config.format not in by_kind:
            extensions = " or ".join(ext for ext, name in _KINDS.items() if name == config.format)
            raise InputError(
                f"no {extensions} files in {path} (input.format is {config.format}): "
                "point input.path at them or set input.format to auto"
            )
        return config.format, by_kind[config.format], rejects
    if not by_kind:
        raise InputError(
            f"no input files in {path}: expected .txt files (with an optional manifest.csv), .jsonl, .csv "
            "or .parquet"
        )
    if len(by_kind) > 1:
        found = ", ".join(f"{len(paths)} {name}" for name, paths in sorted(by_kind.items()))
        raise InputError(
            f"{path} holds more than one kind of data file ({found}): set input.format to the one to read"
        )
    kind, files = next(iter(by_kind.items()))
    return kind, files, rejects
