"""How a stage hands out its parallel pieces: the executor protocol, and the data-parallel map of no executor.

The stages (ingest, paragraphs, embed, index, cluster) say *what* to compute and split their work into
independent pieces; an executor (jobs/executors.py) only decides *where and how* the pieces run, as
datatrove's local, Slurm and Ray executors run the same pipeline steps. Every stage may import this module;
it imports no stage, and no executor. Every executor returns results in input order, so a run's tables do
not depend on which one ran it.

- ``map_data(fn, items)``: a data-parallel transform over records (input files, articles). ``fn`` takes a
  list of items and returns a list of results; Ray runs it as Ray Data ``map_batches`` tasks.
- ``map(fn, items, shared)``: one task per item (index shards, groups of graph components); ``shared`` is
  a large read-only argument every task gets (Ray puts it in the object store once).
- ``encode(texts, make_encoder)``: the embedding model over texts. The stage hands over a picklable factory,
  ``make_encoder(threads)``, not a loaded model: the local executor calls it here, Ray ships it to a pool of
  actors that each load the model once (``map_batches`` on an actor pool).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from embeddings.encoder import Encoder

T = TypeVar("T")
R = TypeVar("R")


MapData = Callable[[Callable[[list[Any]], list[Any]], Sequence[Any]], list[Any]]
# ``make_encoder(threads)``: the model loaded where it is called, with that many threads; picklable.
EncoderFactory = Callable[[int], Encoder]
# An executor's ``encode``: vectors and token counts of texts, by the model a factory loads.
Encode = Callable[[Sequence[str], EncoderFactory], tuple[np.ndarray, np.ndarray]]


def in_process(fn: Callable[[list[T]], list[R]], items: Sequence[T]) -> list[R]:
    """The ``map_data`` of no executor: ``fn`` over all items at once, here."""
    return fn(list(items))


class Executor(Protocol):
    name: str
    parallelism: int  # how many pieces a stage should split its work into for ``map``

    def map_data(self, fn: Callable[[list[T]], list[R]], items: Sequence[T]) -> list[R]:
        """``fn`` over ``items`` in batches, results concatenated in input order."""
        ...

    def map(self, fn: Callable[[T, Any], R], items: Sequence[T], shared: Any = None) -> list[R]:
        """``[fn(item, shared) for item in items]``, possibly in parallel."""
        ...

    def encode(self, texts: Sequence[str], make_encoder: EncoderFactory) -> tuple[np.ndarray, np.ndarray]:
        """Vectors and token counts of ``texts`` by the model ``make_encoder`` loads."""
        ...

    def resources(self) -> dict[str, Any]:
        """What the run had to work with, for the runs table."""
        ...

    def close(self) -> None: ...
