from pathlib import Path

import numpy as np
import pytest

from embeddings import models
from embeddings.cache import EmbeddingCache, embed_texts, text_key
from embeddings.encoder import SentenceTransformerEncoder
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


def test_encoder_gives_unit_vectors_that_rank_the_copy_first(encoder: SentenceTransformerEncoder) -> None:
    vectors = encoder.encode([WIRE, EDITED, OTHER])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.8 > 0.3 > sims[0, 2]


def test_token_counts_show_truncation(encoder: SentenceTransformerEncoder) -> None:
    counts = encoder.count_tokens(["short text", "word " * 1000])
    assert counts[0] == 4  # [CLS] short text [SEP]
    assert counts[1] == encoder.max_seq_length + 1


def test_duplicates_encoded_once_and_cache_reused(
    encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
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
