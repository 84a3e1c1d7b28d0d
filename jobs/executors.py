"""The executors: this process (``local``) or a Ray cluster (``ray``), each running the pieces a stage hands
it (jobs/parallel.py says how) and returning their results in input order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from embeddings.cache import encode_with_counts
from jobs.config import ConfigError, RayConfig
from jobs.parallel import EncoderFactory, Executor, R, T, in_process

log = logging.getLogger(__name__)


class LocalExecutor:
    """Everything in this process; stages use their own threads (FAISS, onnxruntime) for parallelism."""

    name = "local"
    parallelism = 1  # stages shard nothing: their own threads use the cores

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def map_data(self, fn: Callable[[list[T]], list[R]], items: Sequence[T]) -> list[R]:
        return in_process(fn, items)

    def map(self, fn: Callable[[T, Any], R], items: Sequence[T], shared: Any = None) -> list[R]:
        return [fn(item, shared) for item in items]

    def encode(self, texts: Sequence[str], make_encoder: EncoderFactory) -> tuple[np.ndarray, np.ndarray]:
        return encode_with_counts(texts, make_encoder(self.threads))

    def resources(self) -> dict[str, Any]:
        return {"cpus": self.threads, "nodes": 1}

    def close(self) -> None:
        pass


class _EncodeActor:
    """One Ray actor holding one loaded model; Ray Data calls it with batches of texts."""

    def __init__(self, make_encoder: EncoderFactory, threads: int) -> None:
        self.encoder = make_encoder(threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors, counts = encode_with_counts(batch["text"].tolist(), self.encoder)
        return {"vector": vectors, "n_tokens": counts}


class RayExecutor:
    """Ray tasks for ``map``, Ray Data for ``map_data`` and ``encode``; results come back in input order.

    A ``map`` task whose worker dies (a lost node, the OOM killer) or that raises ``OSError`` is retried up
    to ``max_retries`` times; Ray Data retries its tasks and restarts its actors when their workers die.
    Any other error fails the run, which then leaves earlier output untouched.
    """

    name = "ray"

    def __init__(self, config: RayConfig, threads: int) -> None:
        try:
            import ray
            import ray.data
        except ImportError:
            raise ConfigError(
                "executor ray needs Ray: pip install 'newsdedup[ray]' (or set executor: local)"
            ) from None
        self._ray = ray
        self.config = config
        self._started = not ray.is_initialized()
        if self._started:
            # No dashboard and no usage stats: nothing listens or phones home; a local instance is started
            # for the run when no address is given.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(
                address=config.address,
                num_cpus=(config.num_cpus or threads) if config.address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
            )
        # Ray Data logs each dataset's plan and progress at INFO; the job's own stage lines say enough.
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        # Articles and paragraphs are Python objects, which Ray Data pickles after warning that Arrow cannot
        # hold them: expected here, so not worth a warning per stage.
        logging.getLogger("ray.data._internal.tensor_extensions.arrow").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # results in input order, on every run
        context.enable_progress_bars = False
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.cpus = self.parallelism = cpus
        self.actors = config.embed_actors or max(1, cpus // config.cpus_per_actor)
        self._retry = {"max_retries": config.max_retries, "retry_exceptions": [OSError]}
        log.info(
            "ray executor: %d CPUs on %d nodes, %d embedding actors",
            cpus,
            len(ray.nodes()),
            self.actors,
        )

    def map_data(self, fn: Callable[[list[T]], list[R]], items: Sequence[T]) -> list[R]:
        if not items:
            return []
        ray = self._ray
        # One block per CPU so each CPU gets a share; items travel pickled, as Ray stores Python objects.
        dataset = ray.data.from_items([{"item": item} for item in items], override_num_blocks=self.cpus)

        def apply(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            try:
                results = fn(list(batch["item"]))
            except ConfigError as exc:
                # A problem the user can fix (e.g. a missing column): Ray Data would wrap it beyond
                # recognition, so it travels as data and is raised as itself below.
                results = [_Raised(exc)]
            out = np.empty(len(results), dtype=object)
            out[:] = results
            return {"item": out}

        rows = dataset.map_batches(apply, batch_size=None)  # Ray Data retries a task whose worker died
        results = [row["item"] for row in _unwrapped(rows.take_all)]
        raised = next((r.error for r in results if isinstance(r, _Raised)), None)
        if raised is not None:
            raise raised
        return results

    def map(self, fn: Callable[[T, Any], R], items: Sequence[T], shared: Any = None) -> list[R]:
        if not items:
            return []
        task = self._ray.remote(**self._retry)(_call)
        shared_ref = self._ray.put(shared)  # stored once; tasks on the same node read it without copying
        return _unwrapped(lambda: self._ray.get([task.remote(fn, item, shared_ref) for item in items]))

    def encode(self, texts: Sequence[str], make_encoder: EncoderFactory) -> tuple[np.ndarray, np.ndarray]:
        ray = self._ray
        if not texts:  # nothing to ship: the model's dimension, here
            return encode_with_counts(texts, make_encoder(self.config.cpus_per_actor))
        dataset = ray.data.from_items([{"text": text} for text in texts])
        # Ray Data restarts an actor whose worker died and retries its batches on the pool. (Ray then logs
        # once that actors with constructor arguments may fail to restart if those are lost: ray#53727.)
        encoded = dataset.map_batches(
            _EncodeActor,
            fn_constructor_kwargs={"make_encoder": make_encoder, "threads": self.config.cpus_per_actor},
            batch_size=self.config.embed_batch_size,
            compute=ray.data.ActorPoolStrategy(size=self.actors),
            num_cpus=self.config.cpus_per_actor,
        )
        batches = _unwrapped(lambda: list(encoded.iter_batches(batch_size=None, batch_format="numpy")))
        vectors = [batch["vector"] for batch in batches]
        counts = [batch["n_tokens"] for batch in batches]
        return np.concatenate(vectors).astype(np.float32), np.concatenate(counts).astype(np.int32)

    def resources(self) -> dict[str, Any]:
        ray = self._ray
        return {
            "address": self.config.address or "local",
            "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
            "cpus": self.cpus,
            "memory_gib": round(ray.cluster_resources().get("memory", 0) / 2**30, 1),
            "embed_actors": self.actors,
            "cpus_per_actor": self.config.cpus_per_actor,
            "ray": ray.__version__,
        }

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()


@dataclass(frozen=True)
class _Raised:
    """An error a data-parallel step raised, carried back as its result."""

    error: ConfigError


def _call(fn: Callable[[T, Any], R], item: T, shared: Any) -> R:
    """A Ray task running ``fn`` (Ray's decorator takes functions, not partials or callables)."""
    return fn(item, shared)


def _unwrapped(call: Callable[[], R]) -> R:
    """``call()``, raising a Ray task's own exception (an InputError stays an InputError), not Ray's wrapper."""
    from ray.exceptions import RayTaskError

    try:
        return call()
    except RayTaskError as exc:
        raise exc.as_instanceof_cause() from None


def make_executor(name: str, ray: RayConfig, threads: int) -> Executor:
    """The executor a config names."""
    if name == "ray":
        return RayExecutor(ray, threads)
    return LocalExecutor(threads)
