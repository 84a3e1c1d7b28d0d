"""Embed texts once: identical texts share one vector, and vectors persist across runs in a SQLite cache.

The cache is keyed by (model identity, text key), so an unchanged paragraph is never embedded twice and a
changed model never reuses stale vectors. It also keeps each text's token count, so a rerun whose texts are
all cached needs neither the model nor the tokenizer's time. SQLite gives atomic writes and indexed look-ups with nothing to
install; one file per model identity keeps models apart and lets a user delete one model's vectors.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.encoder import Encoder

log = logging.getLogger(__name__)

_LOOKUP_CHUNK = 900  # below SQLite's default limit on bound parameters


def text_key(text: str) -> str:
    """128-bit BLAKE2b of the text, hex: the exact-duplicate key and the cache key."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class EmbeddingCache:
    """Vectors of one model, stored as float32 bytes keyed by text key, with each text's token count."""

    def __init__(self, folder: Path, model_identity: str, dim: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{model_identity}.sqlite"
        self.dim = dim
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL, n_tokens INTEGER)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(vectors)")}
        if "n_tokens" not in columns:  # a cache written before token counts were kept: counts fill in as met
            with self._db:
                self._db.execute("ALTER TABLE vectors ADD COLUMN n_tokens INTEGER")

    def get_many(self, keys: Sequence[str]) -> dict[str, tuple[np.ndarray, int | None]]:
        """Key -> (vector, token count or None where an older cache lacks it), for the keys present."""
        found: dict[str, tuple[np.ndarray, int | None]] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            rows = self._db.execute(
                f"SELECT key, vector, n_tokens FROM vectors WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for key, blob, n_tokens in rows:
                vector = np.frombuffer(blob, dtype=np.float32)
                if vector.shape[0] == self.dim:  # a wrong-sized row is ignored and re-embedded, never used
                    found[key] = (vector, n_tokens)
        return found

    def put_many(self, keys: Sequence[str], vectors: np.ndarray, n_tokens: Sequence[int]) -> None:
        rows = (
            (key, np.ascontiguousarray(v, dtype=np.float32).tobytes(), int(t))
            for key, v, t in zip(keys, vectors, n_tokens, strict=True)
        )
        with self._db:  # one transaction: all or nothing
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors (key, vector, n_tokens) VALUES (?, ?, ?)", rows
            )

    def put_token_counts(self, keys: Sequence[str], n_tokens: Sequence[int]) -> None:
        with self._db:
            self._db.executemany(
                "UPDATE vectors SET n_tokens = ? WHERE key = ?",
                ((int(t), key) for key, t in zip(keys, n_tokens, strict=True)),
            )

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True)
class Embeddings:
    """Vectors and token counts for a list of texts, stored once per distinct text.

    ``unique_vectors[inverse[i]]`` is the vector of text ``i``, ``unique_n_tokens[inverse[i]]`` its tokens
    (special tokens included, capped at the encoder's ``max_seq_length + 1``).
    """

    unique_vectors: np.ndarray
    unique_n_tokens: np.ndarray
    inverse: np.ndarray
    n_unique: int
    n_cache_hits: int
    n_encoded: int

    def vectors(self) -> np.ndarray:
        return self.unique_vectors[self.inverse]

    def n_tokens(self) -> np.ndarray:
        return self.unique_n_tokens[self.inverse]


def encode_with_counts(texts: Sequence[str], encoder: Encoder) -> tuple[np.ndarray, np.ndarray]:
    """Vectors and token counts of ``texts``, here."""
    return encoder.encode(texts), encoder.count_tokens(texts)


def embed_texts(
    texts: Sequence[str],
    encoder: Encoder,
    cache: EmbeddingCache | None = None,
    encode: Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray]] | None = None,
) -> Embeddings:
    """Embed ``texts``, encoding (and tokenizing) each distinct text at most once and only when the cache lacks it.

    ``encode(texts)`` gives the vectors and token counts of the texts to encode by ``encoder``'s model: an
    executor's, which may run that model elsewhere (e.g. on Ray actors); None encodes them here.
    """
    keys = [text_key(t) for t in texts]
    slot: dict[str, int] = {}
    inverse = np.fromiter((slot.setdefault(k, len(slot)) for k in keys), dtype=np.int64, count=len(keys))
    unique_keys = list(slot)
    first_text = dict(zip(keys, texts, strict=True))
    vectors = np.zeros((len(unique_keys), encoder.dim), dtype=np.float32)
    n_tokens = np.zeros(len(unique_keys), dtype=np.int32)

    cached = cache.get_many(unique_keys) if cache is not None else {}
    for key, (vector, count) in cached.items():
        vectors[slot[key]] = vector
        n_tokens[slot[key]] = -1 if count is None else count
    uncounted = [k for k, (_, count) in cached.items() if count is None]
    if uncounted:
        counts = encoder.count_tokens([first_text[k] for k in uncounted])
        n_tokens[[slot[k] for k in uncounted]] = counts
        cache.put_token_counts(uncounted, counts)
    # Shortest first, ties by key: batches are the same on every run, so vectors are too.
    missing = sorted((k for k in unique_keys if k not in cached), key=lambda k: (len(first_text[k]), k))
    if missing:
        missing_texts = [first_text[k] for k in missing]
        if encode is None:
            encoded, counts = encode_with_counts(missing_texts, encoder)
        else:
            encoded, counts = encode(missing_texts)
        vectors[[slot[k] for k in missing]] = encoded
        n_tokens[[slot[k] for k in missing]] = counts
        if cache is not None:
            cache.put_many(missing, encoded, counts)
    log.info(
        "%d texts, %d distinct, %d from cache, %d encoded",
        len(texts),
        len(unique_keys),
        len(cached),
        len(missing),
    )
    return Embeddings(vectors, n_tokens, inverse, len(unique_keys), len(cached), len(missing))
