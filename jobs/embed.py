"""The embed stage: vectors and token counts of the paragraphs to cluster, each distinct text embedded once
and kept in the embedding cache; and the encoder factory executors load the model with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.cache import EmbeddingCache, Embeddings, embed_texts
from embeddings.encoder import Encoder, SentenceTransformerEncoder
from embeddings.index import on_grid
from jobs.config import EmbedConfig
from jobs.paragraphs import Paragraph
from jobs.parallel import Encode
from jobs.records import Article


def load_encoder(embed: EmbedConfig, threads: int) -> Encoder:
    """The encoder ``embed`` configures (an onnxruntime backend exports the model on first use)."""
    common = {
        "adapter": embed.adapter,
        "batch_size": embed.batch_size,
        "max_seq_length": embed.max_seq_length,
        "threads": threads,
        "progress": embed.progress,
    }
    if embed.backend == "torch":
        return SentenceTransformerEncoder(embed.model, **common)
    from embeddings.onnx import OnnxEncoder  # onnxruntime: imported only when configured

    return OnnxEncoder(
        embed.model, quantize=embed.backend == "onnx-int8", export_dir=embed.export_path, **common
    )


class ConfiguredEncoder:
    """The encoder ``embed`` configures, as the factory an executor loads it with: ``factory(threads)``.

    In this process it loads the model once, with ``threads`` threads, or hands out ``loaded`` (the tests
    pass one model to many runs). Pickled, it is the config alone: every worker an executor ships it to
    loads its own model, without a progress bar (it would only reach the worker's log).
    """

    def __init__(self, embed: EmbedConfig, loaded: Encoder | None = None) -> None:
        self.embed = embed
        self._loaded = loaded

    def __call__(self, threads: int) -> Encoder:
        if self._loaded is None:
            self._loaded = load_encoder(self.embed, threads)
        return self._loaded

    def __reduce__(self) -> tuple[type[ConfiguredEncoder], tuple[EmbedConfig]]:
        return ConfiguredEncoder, (self.embed.model_copy(update={"progress": False}),)


@dataclass(frozen=True)
class Embedded:
    """The paragraphs that are clustered, one row each: row ``j`` of every array is paragraph ``rows[j]``.

    Later stages read what they need of a paragraph here, by row (the text the verifier judges, the
    publication time the date window compares), and turn rows into paragraph indices once, after clustering.
    """

    rows: np.ndarray  # index among all paragraphs, ascending
    texts: list[str]  # the text the model read: the normalised paragraph, cut at paragraphs.max_chars
    articles: np.ndarray  # its article's index
    published: np.ndarray  # its article's publication time, seconds since the epoch; NaN when undated
    vectors: np.ndarray
    n_tokens: np.ndarray
    truncated: np.ndarray
    n_unique: int = 0
    n_cache_hits: int = 0
    n_encoded: int = 0
    model_identity: str | None = None
    max_copies: int = 1  # most paragraphs sharing one text (and so one vector)

    def token_columns(self, n: int) -> tuple[list[int | None], list[bool | None]]:
        """``n_tokens`` and ``truncated`` of paragraphs ``0 .. n-1``, None where a paragraph was not embedded."""
        n_tokens: list[int | None] = [None] * n
        truncated: list[bool | None] = [None] * n
        for j in np.flatnonzero(self.rows < n).tolist():
            n_tokens[int(self.rows[j])] = int(self.n_tokens[j])
            truncated[int(self.rows[j])] = bool(self.truncated[j])
        return n_tokens, truncated


class Embedder:
    """Texts to vectors with the configured model, as every stage that embeds needs it: each distinct text
    once, through the embedding cache, by the executor's ``encode`` (which loads the model where it runs).

    ``encoder``, when given, is the model this process uses; workers elsewhere load the configured one. The
    model loads on first use, so a run with nothing to embed never loads it. ``cache_folder`` holds the
    embedding cache when ``config.cache`` is on.
    """

    def __init__(
        self,
        config: EmbedConfig,
        encode: Encode,
        *,
        cache_folder: Path,
        threads: int,
        encoder: Encoder | None,
    ) -> None:
        self.config = config
        self._encode = encode
        self._cache_folder = cache_folder
        self._threads = threads
        self._factory = ConfiguredEncoder(config, loaded=encoder)

    @property
    def encoder(self) -> Encoder:
        return self._factory(self._threads)

    def __call__(self, texts: Sequence[str]) -> Embeddings:
        encoder = self.encoder
        cache = (
            EmbeddingCache(self._cache_folder, encoder.identity, encoder.dim) if self.config.cache else None
        )
        try:
            return embed_texts(texts, encoder, cache, lambda missing: self._encode(missing, self._factory))
        finally:
            if cache is not None:
                cache.close()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts`` on the grid of exact dot products (on_grid), as paragraphs' are."""
        if not texts:
            return np.zeros((0, self.encoder.dim), np.float32)
        return on_grid(self(texts).vectors())


def embed_paragraphs(
    articles: Sequence[Article],
    paragraphs: Sequence[Paragraph],
    excluded: Sequence[str | None],
    embedder: Embedder,
    *,
    max_chars: int,
) -> Embedded:
    """Embed the paragraphs ``excluded`` gives no reason for, their text cut at ``max_chars``, and keep what
    later stages need of them (``articles`` are the paragraphs' own: their publication times)."""
    rows = np.array([i for i, reason in enumerate(excluded) if reason is None], dtype=np.int64)
    texts = [paragraphs[i].norm_text[:max_chars] for i in rows]
    article_of = np.array([paragraphs[i].article_index for i in rows], dtype=np.int64)
    dates = [articles[i].published_at for i in article_of.tolist()]
    published = np.array([np.nan if t is None else t.timestamp() for t in dates], dtype=np.float64)
    if rows.size == 0:  # nothing to cluster: do not even load the model
        empty = (np.zeros((0, 1), np.float32), np.zeros(0, np.int32), np.zeros(0, bool))
        return Embedded(rows, texts, article_of, published, *empty)
    cut = np.array([len(paragraphs[i].norm_text) > max_chars for i in rows], dtype=bool)
    result = embedder(texts)
    encoder = embedder.encoder
    n_tokens = result.n_tokens()
    truncated = cut | (n_tokens > encoder.max_seq_length)
    return Embedded(
        rows,
        texts,
        article_of,
        published,
        # Exact dot products: the same neighbours and similarities on every executor (on_grid says why).
        on_grid(result.vectors()),
        n_tokens,
        truncated,
        result.n_unique,
        result.n_cache_hits,
        result.n_encoded,
        encoder.identity,
        int(np.bincount(result.inverse).max()),
    )
