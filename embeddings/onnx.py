"""The ONNX Runtime encoder backend: the same model, exported locally to ONNX (fp32 or dynamic int8).

Why: onnxruntime embeds faster than PyTorch on the CPU (int8 most) and starts in a fraction of a second,
because a run whose export exists never imports torch. The export happens once per model, adapter and
precision, offline, from the same sentence-transformers folder the torch backend loads; it needs torch.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from embeddings.encoder import BatchedEncoder, check_max_seq_length
from embeddings.models import (
    ModelError,
    adapter_digest,
    model_identity,
    require_torch,
    resolve_adapter,
    resolve_model_path,
)

log = logging.getLogger(__name__)

# An export is a folder holding these three files.
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "meta.json"  # inputs, dim, the model's max_seq_length and its transformer config

# ONNX input name -> the tokenizers.Encoding field that fills it.
_INPUT_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


def default_export_dir() -> Path:
    """``$XDG_CACHE_HOME/newsdedup/onnx``, else ``~/.cache/newsdedup/onnx``."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says a relative path is invalid and must be ignored.
    base = Path(cache) if os.path.isabs(cache) else Path.home() / ".cache"
    return base / "newsdedup" / "onnx"


def export_onnx(model: str, export_dir: Path, *, adapter: str | Path | None, quantize: bool) -> Path:
    """The folder of ``model``'s ONNX export under ``export_dir``, exported first if it is not there.

    The folder is named by the model's content identity, the adapter's digest and the precision, so a
    changed model or adapter gets a new export and never reuses a stale one. It appears by one rename,
    complete or not at all, so an interrupted or concurrent export never leaves a half-written one.

    Args:
        model: a packaged model name or a local sentence-transformers folder, as for the torch backend.
        export_dir: where exports live.
        adapter: a low-rank adapter (embeddings/finetune.py), merged into the weights before export.
        quantize: dynamic int8 (per-channel signed weights, activations quantized per batch) instead of fp32.
    """
    folder = resolve_model_path(model)
    adapter_file = resolve_adapter(adapter) if adapter is not None else None
    # The graph and the tokenizer read any sequence length, so one export serves every max_seq_length.
    name = model_identity(folder, 0)
    if adapter_file is not None:
        name += f"+adapter-{adapter_digest(adapter_file)}"
    target = export_dir / f"{name}+onnx-{'int8' if quantize else 'fp32'}"
    if target.is_dir():
        return target
    # Before anything is written: the image's export folder is read-only, and its install has no torch.
    require_torch(f"the ONNX export of {model} (newsdedup export-model, or a run whose export is missing)")
    export_dir.mkdir(parents=True, exist_ok=True)
    # Said before it starts: the first run waits on it (about 10 s, once per model, adapter and precision).
    log.info(
        "exporting %s to ONNX (%s) under %s: once, before the first embedding",
        model,
        "int8" if quantize else "fp32",
        export_dir,
    )
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=export_dir))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the export from other users of a shared export_dir
    try:
        _export(model, folder, adapter_file, staging, quantize)
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():
                raise
            # Another process finished the same export first: theirs is as good, ours is dropped.
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s to %s in %.1f s", model, target, time.perf_counter() - started)
    return target


def _export(model: str, folder: Path, adapter_file: Path | None, out: Path, quantize: bool) -> None:
    """Write model.onnx, tokenizer.json and meta.json of the model in ``folder`` into ``out``."""
    import torch
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    modules = [type(module).__name__ for module in st]
    # OnnxEncoder.encode pools and normalises by itself, so that must be all the model's own modules do.
    if modules not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]) or (
        getattr(st[1], "pooling_mode", None) != "mean"
    ):
        raise ModelError(
            f"model {model!r} is {' -> '.join(modules)}: the onnx backend runs Transformer -> mean Pooling "
            "(-> Normalize) models only; use the torch backend for it"
        )
    if adapter_file is not None:
        from embeddings.finetune import apply_adapter

        apply_adapter(st, adapter_file)
    transformer = st[0].auto_model.eval()
    tokenizer = st.tokenizer
    inputs = [name for name in _INPUT_FIELDS if name in tokenizer.model_input_names]

    class TokenEmbeddings(torch.nn.Module):
        """The transformer with positional inputs and one output, as torch.onnx.export wants it."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.transformer(**dict(zip(inputs, args, strict=True))).last_hidden_state

    # Two texts of different lengths, so the traced graph sees a real padding mask.
    example = tokenizer(["A short text.", "A somewhat longer text to pad the other one."], padding=True)
    args = tuple(torch.tensor(example[name]) for name in inputs)
    axes = {0: "batch", 1: "sequence"}
    fp32 = out / ("fp32.onnx" if quantize else MODEL_FILE)
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter needs no onnxscript and writes one self-contained file (the dynamo
        # exporter needs onnxscript, takes 7x longer and splits off the weights); torch is pinned to 2.13,
        # where it is deprecated but works. Its tracer warns about the mask's padding check and the
        # mask's index arithmetic, which hold for every input: tests compare the export with torch.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(
            TokenEmbeddings(),
            args,
            str(fp32),
            input_names=inputs,
            output_names=["token_embeddings"],
            dynamic_axes={name: axes for name in [*inputs, "token_embeddings"]},
            opset_version=17,
            dynamo=False,
        )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        # The quantizer logs a line per tensor on the root logger, which the job's log shows, and warns
        # to pre-process the model first: pre-processing gives this graph the same vectors at the same speed.
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(fp32, out / MODEL_FILE, per_channel=True, weight_type=QuantType.QInt8)
        finally:
            logging.disable(previous)
        fp32.unlink()
    # The tokenizer as sentence-transformers set it up (e.g. do_lower_case), not the file as shipped.
    tokenizer.backend_tokenizer.save(str(out / TOKENIZER_FILE))
    meta = {
        "inputs": inputs,
        "dim": st.get_embedding_dimension(),
        "max_seq_length": st.max_seq_length,
        "config": json.loads(transformer.config.to_json_string()),
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1))


class OnnxEncoder(BatchedEncoder):
    """The model's ONNX export on onnxruntime (CPU), with the tokenizer from the ``tokenizers`` library.

    fp32 vectors match the torch backend's up to float rounding, int8 ones closely; each backend and
    precision has its own ``identity``, so the embedding cache never mixes them.

    Every setting is required: the job's embed config holds their defaults (``jobs.embed.load_encoder``).

    Args:
        model, batch_size, max_seq_length, progress, adapter: as for SentenceTransformerEncoder.
        threads: onnxruntime intra-op threads; None leaves onnxruntime's default (one per physical core).
        quantize: run the dynamic int8 export instead of fp32. Its activations are quantized per batch,
            so a text's vector depends on its batch-mates: the same text embedded in another batch (another
            run's, or alone) moves by about as much as int8 differs from fp32.
        export_dir: where exports live; None is default_export_dir(). A missing export is made on first
            use (a few seconds; it needs torch), later runs load it without torch.
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
        quantize: bool,
        export_dir: Path | None,
    ) -> None:
        export = export_onnx(model, export_dir or default_export_dir(), adapter=adapter, quantize=quantize)
        meta = json.loads((export / META_FILE).read_text())
        if max_seq_length is not None:
            check_max_seq_length(model, max_seq_length, meta["config"])
        max_seq_length = int(meta["max_seq_length"] if max_seq_length is None else max_seq_length)
        self._inputs: list[str] = meta["inputs"]
        self._tokenizer = Tokenizer.from_file(str(export / TOKENIZER_FILE))
        # The shipped tokenizer.json truncates at 128 and pads every text to 128 tokens: truncate where
        # the model does, and never pad, because batches hold texts of one length.
        self._tokenizer.enable_truncation(max_seq_length)
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default
        # One model call at a time: parallel branches would only compete for the same cores.
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            str(export / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        super().__init__(
            model,
            identity=f"{export.name}+max_seq_length-{max_seq_length}",
            dim=int(meta["dim"]),
            max_seq_length=max_seq_length,
            batch_size=batch_size,
            progress=progress,
            source=f"as {export}",
        )

    def _batches(self, texts: Sequence[str]) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
        encodings = self._tokenizer.encode_batch(list(texts))

        def encode_batch(batch: np.ndarray) -> np.ndarray:
            feeds = {
                name: np.array([getattr(encodings[i], _INPUT_FIELDS[name]) for i in batch], dtype=np.int64)
                for name in _INPUT_FIELDS
            }
            (tokens,) = self._session.run(None, {name: feeds[name] for name in self._inputs})
            # Mean pooling over the attention mask, then L2 normalisation, as sentence-transformers does.
            mask = feeds["attention_mask"][:, :, None].astype(np.float32)
            pooled = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        return lengths, encode_batch

    def count_tokens(self, texts: Sequence[str]) -> np.ndarray:
        """Tokens per text including special tokens; a truncated text counts ``max_seq_length + 1``."""
        # A truncated text has overflow: counting it as max + 1 matches the torch backend's count.
        encodings = self._tokenizer.encode_batch(list(texts))
        return np.fromiter(
            (len(e.ids) + bool(e.overflowing) for e in encodings), dtype=np.int32, count=len(encodings)
        )
