from pathlib import Path

import numpy as np
import pytest
import torch

from embeddings.encoder import SentenceTransformerEncoder
from embeddings.finetune import AdapterParams, apply_adapter, save_adapter, train_adapter
from embeddings.models import ADAPTER_DIR, ModelError, adapter_digest, resolve_adapter
from tests.conftest import DIFFERENT, SAME, configured_encoder


@pytest.fixture(scope="module")
def plain() -> SentenceTransformerEncoder:
    return configured_encoder(model="all-MiniLM-L6-v2", backend="torch")


def test_shipped_adapter_resolves_and_names_the_alternatives(tmp_path: Path) -> None:
    shipped = resolve_adapter("all-MiniLM-L6-v2-mrpc-reuters")
    assert shipped.parent == ADAPTER_DIR and shipped.is_file()
    assert resolve_adapter(str(shipped)) == shipped
    with pytest.raises(ModelError, match=r"all-MiniLM-L6-v2-mrpc-reuters.*or null"):
        resolve_adapter(str(tmp_path / "missing.safetensors"))


def test_adapter_trains_saves_and_merges(plain: SentenceTransformerEncoder, tmp_path: Path) -> None:
    pairs = [(a, b, True) for a, b in SAME] + [(a, b, False) for a, b in DIFFERENT]
    params = AdapterParams(rank=2, epochs=1, batch_size=4, learning_rate=1e-3, seed=1)
    before = plain.encode([t for pair in pairs for t in pair[:2]])
    tensors = train_adapter(plain.model, pairs, params)
    # The base model is left as it was: training swaps its layers back.
    np.testing.assert_array_equal(plain.encode([t for pair in pairs for t in pair[:2]]), before)
    assert len(tensors) == 2 * 6 * 6  # A and B for 6 linear layers in each of 6 blocks
    assert any(float(t.abs().max()) > 0 for name, t in tensors.items() if name.endswith(".B"))
    again = train_adapter(plain.model, pairs, params)
    assert all(again[name].equal(t) for name, t in tensors.items()), "same seed, same adapter"

    path = tmp_path / "tiny.safetensors"
    save_adapter(tensors, path, {"params": "test"})
    adapted = configured_encoder(model="all-MiniLM-L6-v2", backend="torch", adapter=str(path))
    assert adapted.identity == f"{plain.identity}+adapter-{adapter_digest(path)}"
    after = adapted.encode([t for pair in pairs for t in pair[:2]])
    assert not np.allclose(after, before, atol=1e-4)


def test_adapter_for_another_model_is_refused(plain: SentenceTransformerEncoder, tmp_path: Path) -> None:
    path = tmp_path / "wrong.safetensors"
    save_adapter(
        {"encoder.layer.0.other.A": torch.zeros(1, 384), "encoder.layer.0.other.B": torch.zeros(384, 1)},
        path,
        {},
    )
    before = plain.encode([SAME[0][0]])
    with pytest.raises(ValueError, match=r"does not fit this model.*embed.adapter: null"):
        apply_adapter(plain.model, path)
    np.testing.assert_array_equal(plain.encode([SAME[0][0]]), before)
