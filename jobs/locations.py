"""Where the input is: a local path, or a path in the pyarrow filesystem a URI (``s3://``, ``gs://``,
``hdfs://``, ``file://``) names; sources and rejects name a file by its local path or by its URI."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath
from typing import NamedTuple

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jobs.records import InputError


@dataclass(frozen=True)
class Location:
    """A file or folder of the input: a local path, or a path in a pyarrow filesystem named by a URI.

    It pickles (pyarrow filesystems do), so the readers it is handed to can run in other processes.
    """

    path: str  # the local path, or the path inside ``filesystem``
    # None: the local disk, through pathlib and Python's io so that local paths are read and named as they
    # always were (pyarrow's LocalFileSystem would refuse a relative path such as "news:2025/a.txt" as a URI).
    filesystem: pafs.FileSystem | None = None
    uri: str | None = None  # what sources and rejects call a location read through a URI

    def __str__(self) -> str:
        return self.path if self.uri is None else self.uri

    @property
    def _pure(self) -> PurePath:
        return Path(self.path) if self.filesystem is None else PurePosixPath(self.path)

    @property
    def suffix(self) -> str:
        return self._pure.suffix

    @property
    def parent(self) -> Location:
        uri = None if self.uri is None else self.uri.removesuffix("/").rpartition("/")[0]
        return Location(str(self._pure.parent), self.filesystem, uri)

    @property
    def key(self) -> tuple[str, str]:
        """What tells two locations apart: the filesystem and the path, symlinks resolved on the local disk."""
        if self.filesystem is None:
            return "local", str(Path(self.path).resolve())
        return self.filesystem.type_name, self.path

    def joinpath(self, relative: str) -> Location:
        """The location ``relative`` (a POSIX path) names under this folder."""
        uri = None if self.uri is None else f"{self.uri.removesuffix('/')}/{relative}"
        return Location(str(self._pure / relative), self.filesystem, uri)

    def relative_to(self, folder: Location) -> str:
        """This location's path under ``folder``, as a POSIX path (what a manifest's ``file`` column holds)."""
        return self._pure.relative_to(folder._pure).as_posix()

    def file_type(self) -> pafs.FileType:
        """File, Directory, NotFound, or Unknown (something else that exists)."""
        if self.filesystem is not None:
            try:
                return self.filesystem.get_file_info(self.path).type
            except OSError as exc:
                raise _cannot_open(self, exc) from None
        path = Path(self.path)
        if path.is_file():
            return pafs.FileType.File
        if path.is_dir():
            return pafs.FileType.Directory
        return pafs.FileType.Unknown if path.exists() else pafs.FileType.NotFound

    def is_file(self) -> bool:
        return self.file_type() == pafs.FileType.File

    def open(self) -> io.BufferedReader:
        """The file's bytes, read front to back: object stores serve that without a request per seek."""
        if self.filesystem is None:
            return open(self.path, "rb")
        # compression=None: a file's bytes are what it holds, as on the local disk (pyarrow would gunzip .gz).
        return io.BufferedReader(self.filesystem.open_input_stream(self.path, compression=None))

    def parquet(self) -> pq.ParquetFile:
        return pq.ParquetFile(self.path, filesystem=self.filesystem)


def locate(path: Path | str) -> Location:
    """Where ``path`` is; a string is a URI (InputConfig keeps only URIs as strings)."""
    if isinstance(path, Path):
        return Location(str(path))
    try:
        filesystem, inner = pafs.FileSystem.from_uri(path)
    except (pa.ArrowException, OSError) as exc:
        raise _cannot_open(path, exc) from None
    # The query (region=..., endpoint_override=...) configures the filesystem; names of files leave it out.
    return Location(inner, filesystem, path.partition("?")[0])


def _cannot_open(uri: Location | str, exc: Exception) -> InputError:
    # pyarrow's message can run to pages (HDFS lists every libjvm it looked for): its first line says enough.
    reason = next(iter(str(exc).strip().splitlines()), type(exc).__name__)
    return InputError(
        f"cannot open {uri}: {reason}: check the URI (s3://, gs://, hdfs://, file:// or a local path) "
        "and credentials"
    )


class Listing(NamedTuple):
    files: list[Location]  # sorted
    folder_links: list[Location]  # symlinks to folders, not followed (on the local disk), sorted


def walk(root: Location) -> Listing:
    """All files under root, skipping hidden and underscore-prefixed files and folders."""
    if root.filesystem is None:
        # os.walk, as ever on the local disk: unlike a FileSelector, it does not descend into symlinked folders.
        files, links = [], []
        for folder, subfolders, names in os.walk(root.path):
            subfolders[:] = [name for name in subfolders if not name.startswith((".", "_"))]
            links.extend(
                Path(folder, name) for name in subfolders if os.path.islink(os.path.join(folder, name))
            )
            files.extend(Path(folder, name) for name in names if not name.startswith((".", "_")))
        return Listing([Location(str(f)) for f in sorted(files)], [Location(str(f)) for f in sorted(links)])
    try:
        infos = root.filesystem.get_file_info(pafs.FileSelector(root.path, recursive=True))
    except OSError as exc:
        raise _cannot_open(root, exc) from None
    # Sorted as paths (by folder, then name), as the local files are.
    relatives = sorted(PurePosixPath(info.path).relative_to(root.path) for info in infos if info.is_file)
    files = [
        root.joinpath(relative.as_posix())
        for relative in relatives
        if not any(part.startswith((".", "_")) for part in relative.parts)
    ]
    return Listing(files, [])
