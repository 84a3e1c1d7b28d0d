"""Encoders: texts to L2-normalised float32 vectors, on the CPU."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from embeddings.models import model_identity, resolve_model_path

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


class SentenceTransformerEncoder:
    """sentence-transformers on PyTorch, loaded from a local folder.

    Args:
        model: a packaged model name (``all-MiniLM-L6-v2``) or a local sentence-transformers folder.
        batch_size: texts per forward pass; 32 is as fast as 64 on two cores and uses less memory.
        max_seq_length: tokens kept per text; None keeps the model's own limit (256 for all-MiniLM-L6-v2).
            Longer texts are truncated by the model, and the job records which ones.
        threads: PyTorch intra-op threads; None leaves PyTorch's default (one per core).
        progress: show a progress bar while encoding.
    """

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        batch_size: int = 32,
        max_seq_length: int | None = None,
        threads: int | None = None,
        progress: bool = False,
    ) -> None:
        folder = resolve_model_path(model)
        import torch
        from sentence_transformers import SentenceTransformer

        if threads is not None:
            torch.set_num_threads(threads)
        self._model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        if max_seq_length is not None:
            self._model.max_seq_length = max_seq_length
        self.name = model
        self.max_seq_length = int(self._model.max_seq_length)
        self.dim = int(self._model.get_embedding_dimension())
        self.identity = model_identity(folder, self.max_seq_length)
        self.batch_size = batch_size
        self.progress = progress
        log.info("model %s from %s (dim %d, max_seq_length %d)", model, folder, self.dim, self.max_seq_length)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=self.progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.int32)
        # Truncating at max + 1 keeps the count cheap and still tells which texts the model truncates.
        encoded = self._model.tokenizer(
            list(texts), truncation=True, max_length=self.max_seq_length + 1, add_special_tokens=True
        )
        return np.fromiter((len(ids) for ids in encoded["input_ids"]), dtype=np.int32, count=len(texts))
