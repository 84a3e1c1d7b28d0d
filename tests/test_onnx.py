"""The onnxruntime backend against the torch backend: real model, real exports (each made once here)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from embeddings.encoder import SentenceTransformerEncoder
from embeddings.models import ModelError
from embeddings.onnx import MODEL_FILE, OnnxEncoder, export_onnx
from tests.conftest import configured_encoder

MODEL = "all-MiniLM-L6-v2"
ADAPTER = "all-MiniLM-L6-v2-mrpc-reuters"
ROOT = Path(__file__).resolve().parents[1]

LONG = " ".join(
    [
        "The central bank left its benchmark rate unchanged on Thursday but signalled that it could cut "
        "borrowing costs as early as next quarter if inflation keeps easing, sending the currency lower "
        "against the dollar and lifting shares of the country's largest lenders."
    ]
    * 6
)
TEXTS = [
    "Oil fell.",
    "Since September 2025, US strikes have targeted 21 boats, killing at least 83 people.",
    "The US has struck 21 boats since September 2025, killing at least 83 people.",
    "Maduro's political journey began as a Caracas bus driver and union activist.",
    "Shares of the carmaker rose 5 percent in early trading after it reported quarterly earnings above "
    "analysts' forecasts and raised its outlook for the year, citing strong demand in Europe and Asia.",
    "Officials said the airspace over Venezuela should be treated as fully closed until further notice.",
    LONG,  # longer than the model's 256 tokens: truncated
]


@pytest.fixture(scope="module")
def torch_encoder() -> SentenceTransformerEncoder:
    return configured_encoder(model=MODEL, backend="torch")


@pytest.fixture(scope="module")
def fp32(export_dir: Path) -> OnnxEncoder:
    return configured_encoder(model=MODEL, export_path=export_dir)


@pytest.fixture(scope="module")
def int8(export_dir: Path) -> OnnxEncoder:
    return configured_encoder(model=MODEL, backend="onnx-int8", export_path=export_dir)


def test_fp32_matches_torch(fp32: OnnxEncoder, torch_encoder: SentenceTransformerEncoder) -> None:
    assert torch_encoder.count_tokens([LONG])[0] == torch_encoder.max_seq_length + 1
    assert (fp32.dim, fp32.max_seq_length) == (torch_encoder.dim, torch_encoder.max_seq_length)
    ours, theirs = fp32.encode(TEXTS), torch_encoder.encode(TEXTS)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * theirs).sum(axis=1).min() > 0.9999
    assert fp32.encode([]).shape == (0, 384)


def test_int8_stays_close_to_fp32(int8: OnnxEncoder, fp32: OnnxEncoder) -> None:
    vectors = int8.encode(TEXTS)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * fp32.encode(TEXTS)).sum(axis=1).mean() > 0.98


def test_token_counts_match_torch(fp32: OnnxEncoder, torch_encoder: SentenceTransformerEncoder) -> None:
    # "a " * n is n tokens plus [CLS] and [SEP]: 255, 256 (the limit) and 257 tokens.
    texts = [*TEXTS, "", "a " * 253, "a " * 254, "a " * 255, "word " * 1000]
    counts = fp32.count_tokens(texts)
    np.testing.assert_array_equal(counts, torch_encoder.count_tokens(texts))
    assert list(counts[-4:]) == [255, 256, 257, 257]
    assert fp32.count_tokens([]).shape == (0,)


def test_identities_keep_backends_apart(
    fp32: OnnxEncoder, int8: OnnxEncoder, torch_encoder: SentenceTransformerEncoder, export_dir: Path
) -> None:
    shorter = configured_encoder(model=MODEL, max_seq_length=128, export_path=export_dir)
    assert shorter.count_tokens([LONG])[0] == 129
    identities = {fp32.identity, int8.identity, torch_encoder.identity, shorter.identity}
    assert len(identities) == 4


def test_an_existing_export_is_reused(fp32: OnnxEncoder, export_dir: Path) -> None:
    exports = sorted(export_dir.iterdir())
    stamps = [(folder / MODEL_FILE).stat().st_mtime_ns for folder in exports]
    again = configured_encoder(model=MODEL, export_path=export_dir)
    assert again.identity == fp32.identity
    assert sorted(export_dir.iterdir()) == exports  # no new export, no staging folder left behind
    assert [(folder / MODEL_FILE).stat().st_mtime_ns for folder in exports] == stamps


def test_unusable_models_and_lengths_raise_model_error(export_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not available offline"):
        configured_encoder(model="intfloat/e5-large-v2", export_path=tmp_path)
    with pytest.raises(ModelError, match="reads at most 512 tokens"):
        configured_encoder(model=MODEL, max_seq_length=1000, export_path=export_dir)


def test_adapter_is_merged_before_export(fp32: OnnxEncoder, export_dir: Path) -> None:
    onnx = configured_encoder(model=MODEL, adapter=ADAPTER, export_path=export_dir)
    torch_encoder = configured_encoder(model=MODEL, adapter=ADAPTER, backend="torch")
    assert onnx.identity not in {fp32.identity, torch_encoder.identity}
    vectors = onnx.encode(TEXTS)
    assert (vectors * torch_encoder.encode(TEXTS)).sum(axis=1).min() > 0.9999
    assert (vectors * fp32.encode(TEXTS)).sum(axis=1).min() < 0.99  # the adapter did change the model


def test_the_one_time_export_says_when_it_starts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A first run waits on the export: the log says so before, not only after."""
    caplog.set_level(logging.INFO, logger="embeddings.onnx")
    export_onnx(MODEL, tmp_path, adapter=None, quantize=False)
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith(f"exporting {MODEL} to ONNX (fp32) under {tmp_path}: once")
    assert messages[-1].startswith(f"exported {MODEL}")
