"""Encoders: texts to L2-normalised float32 vectors, on the CPU."""

from __future__ import annotations

import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from embeddings.models import (
    ModelError,
    adapter_digest,
    model_identity,
    require_torch,
    resolve_adapter,
    resolve_model_path,
)
from embeddings.progress import Progress

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """What the job needs from an embedding backend."""

    name: str
    identity: str  # changes whenever the vectors would change: the cache's namespace
    dim: int
    max_seq_length: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit length."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text including special tokens, capped at ``max_seq_length + 1``."""
        ...


class BatchedEncoder(ABC):
    """What both backends share: the model's name, identity and sizes, and encoding in batches of texts with
    the same token count, shortest first, showing progress in tokens.

    Padding changes a vector in its last bits, so unpadded batches keep a vector independent of longer
    batch-mates, and spend no compute on padding. A backend says how many tokens each text has and how to
    encode a batch (``_batches``).
    """

    def __init__(
        self,
        model: str,
        *,
        identity: str,
        dim: int,
        max_seq_length: int,
        batch_size: int,
        progress: bool,
        source: str,
    ) -> None:
        self.name = model
        self.identity = identity
        self.dim = dim
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self.progress = progress
        log.info("model %s %s (dim %d, max_seq_length %d)", model, source, dim, max_seq_length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit length."""
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        lengths, encode_batch = self._batches(texts)
        # Counted in tokens: batches run shortest first, so a count of texts would promise too little time left.
        with Progress(int(lengths.sum()), "embed", "token", enabled=self.progress) as progress:
            for batch in same_length_batches(lengths, self.batch_size):
                vectors[batch] = encode_batch(batch)
                progress.update(int(lengths[batch].sum()))
        return vectors

    @abstractmethod
    def _batches(self, texts: Sequence[str]) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        """Each text's token count, and the unit vectors of the texts at some indices (all of one count)."""


class SentenceTransformerEncoder(BatchedEncoder):
    """sentence-transformers on PyTorch, loaded from a local folder.

    Every setting is required: the job's embed config holds their defaults (``jobs.embed.load_encoder``).

    Args:
        model: a packaged model name (``all-MiniLM-L6-v2``) or a local sentence-transformers folder.
        batch_size: texts per forward pass; 32 is as fast as 64 on two cores and uses less memory.
        max_seq_length: tokens kept per text; None keeps the model's own limit (256 for all-MiniLM-L6-v2).
            Longer texts are truncated by the model, and the job records which ones.
        threads: PyTorch intra-op threads; None leaves PyTorch's default (one per core).
        progress: show a progress bar while encoding.
        adapter: a low-rank adapter (embeddings/finetune.py), by shipped name or file, merged into the
            weights at load time; None uses the model as packaged.
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int,
        max_seq_length: int | None,
        threads: int | None,
        progress: bool,
        adapter: str | Path | None,
    ) -> None:
        folder = resolve_model_path(model)
        require_torch("embed.backend torch")
        import torch
        from sentence_transformers import SentenceTransformer

        if threads is not None:
            torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        if max_seq_length is not None:
            config = getattr(getattr(self._model[0], "auto_model", None), "config", None)
            check_max_seq_length(model, max_seq_length, config.to_dict() if config is not None else {})
            self._model.max_seq_length = max_seq_length
        adapter_file = resolve_adapter(adapter) if adapter is not None else None
        if adapter_file is not None:
            from embeddings.finetune import apply_adapter  # torch: imported only with a model to load

            apply_adapter(self._model, adapter_file)
        identity = model_identity(folder, int(self._model.max_seq_length))
        if adapter_file is not None:
            identity += f"+adapter-{adapter_digest(adapter_file)}"
        super().__init__(
            model,
            identity=identity,
            dim=int(self._model.get_embedding_dimension()),
            max_seq_length=int(self._model.max_seq_length),
            batch_size=batch_size,
            progress=progress,
            source=f"from {folder}",
        )

    def _batches(self, texts: Sequence[str]) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        # The BLAS can still take another code path for another batch size, which moves some short texts'
        # vectors in the last bits.
        def encode_batch(batch: np.ndarray) -> np.ndarray:
            return self._model.encode(
                [texts[i] for i in batch],
                batch_size=len(batch),
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )

        return np.minimum(self.count_tokens(texts), self.max_seq_length), encode_batch

    @property
    def model(self) -> object:
        """The loaded SentenceTransformer (what an adapter is trained on)."""
        return self._model

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text including special tokens, capped at ``max_seq_length + 1``."""
        if not texts:
            return np.zeros(0, dtype=np.int32)
        # Truncating at max + 1 keeps the count cheap and still tells which texts the model truncates.
        encoded = self._model.tokenizer(
            list(texts), truncation=True, max_length=self.max_seq_length + 1, add_special_tokens=True
        )
        return np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int32, count=len(texts))


def check_max_seq_length(model: str, max_seq_length: int, config: Mapping[str, object]) -> None:
    """Raise ModelError if ``max_seq_length`` exceeds the positions of the transformer ``config`` (a dict).

    Past its position embeddings a transformer crashes on long inputs instead of truncating.
    """
    limit = config.get("max_position_embeddings")
    if not isinstance(limit, int):
        return
    if "roberta" in str(config.get("model_type", "")):
        limit -= 2  # RoBERTa-style position ids start after the padding index: 514 positions, 512 tokens
    if max_seq_length > limit:
        raise ModelError(
            f"model {model!r} reads at most {limit} tokens: set embed.max_seq_length to {limit} or less"
        )


def same_length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices of the texts with token counts ``lengths``, in batches of equal length.

    Shortest first, input order within a length, at most ``batch_size`` per batch.
    """
    order = np.lexsort((np.arange(len(lengths)), lengths))
    lengths = lengths[order]
    starts = np.flatnonzero(np.diff(lengths, prepend=-1))
    bounds = np.append(starts, len(order))
    return [
        order[start : min(start + batch_size, end)]
        for begin, end in itertools.pairwise(bounds)
        for start in range(begin, end, batch_size)
    ]
