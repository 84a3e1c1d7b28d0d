"""The pair verifier: a cross-encoder that reads two paragraphs together and gives the probability that they
report the same thing.

Why: cosine between two separately embedded paragraphs cannot tell "the same reported fact" from "the same
story" well (MRPC test accuracy 0.72 at the best cut for all-MiniLM-L6-v2). A cross-encoder attends across
both texts, so a number, a name or a claim that one paragraph adds or contradicts changes its answer
(Reimers & Gurevych, EMNLP 2019, compare bi- and cross-encoders). It runs on the kNN pairs only, so its cost
grows with the pairs, not with all pairs of paragraphs.

The verifier is the packaged model with a low-rank adapter and a linear head on the mean of its tokens,
stored in one small safetensors file (embeddings/finetune.py trains it; ``python -m benchmarks.fit
--verifier``). Its metadata names the base model, which is loaded from disk as the embedding model is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from embeddings.models import ModelError, require_torch, resolve_adapter, resolve_model_path
from embeddings.progress import Progress


class PairVerifier:
    """Probability that each pair of texts reports the same thing; symmetric in the two texts.

    Args:
        verifier: a shipped verifier's name (embeddings/adapters/<name>.safetensors) or a verifier file.
        threads: PyTorch CPU threads.
        batch_size: pairs per forward pass; pairs are batched by length, so padding stays small.
    """

    def __init__(self, verifier: str | Path, *, threads: int, batch_size: int) -> None:
        require_torch("the pair verifier (verify.model)", ("torch", "transformers", "safetensors"))
        import torch
        from safetensors import safe_open
        from transformers import AutoModel, AutoTokenizer

        from embeddings.finetune import apply_adapter

        self.path = resolve_adapter(verifier, key="verify.model")
        with safe_open(str(self.path), "pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("newsdedup", "{}"))
            names = handle.keys()
            if "head.weight" not in names:
                raise ModelError(
                    f"{self.path} is an embedding adapter, not a verifier (it has no head): set verify.model to "
                    "a verifier file (python -m benchmarks.fit --verifier) or null"
                )
        self.base_model = str(meta.get("base_model", "all-MiniLM-L6-v2"))
        self.max_seq_length = int(meta.get("params", {}).get("max_seq_length", 256))
        self.batch_size = batch_size
        torch.set_num_threads(threads)
        folder = resolve_model_path(self.base_model)
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self._model = AutoModel.from_pretrained(str(folder)).eval()
        apply_adapter(self._model, self.path)
        with safe_open(str(self.path), "pt") as handle:
            weight, bias = handle.get_tensor("head.weight"), handle.get_tensor("head.bias")
        self._head = torch.nn.Linear(weight.shape[1], 1)
        with torch.no_grad():
            self._head.weight.copy_(weight)
            self._head.bias.copy_(bias)

    def probabilities(self, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
        """P(same) of each pair (a[i], b[i]), read in one fixed order of the two texts (the lesser string
        first), so swapping them changes nothing. Averaging both orders was as accurate on MRPC dev (0.799
        against 0.795 on 611 pairs) at twice the cost."""
        import torch

        from embeddings.finetune import pair_logits

        out = np.empty(len(a), dtype=np.float32)
        if not len(a):
            return out
        # Batches of similar length: a pair's score must not depend on which pairs share its batch more
        # than float rounding does, and padding to a batch's longest pair wastes time.
        lengths = np.array([len(x) + len(y) for x, y in zip(a, b, strict=True)])
        order = np.argsort(lengths, kind="stable")
        with torch.inference_mode(), Progress(len(order), "verify", "pair") as progress:
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                texts = [(min(a[i], b[i]), max(a[i], b[i])) for i in rows]
                logits = pair_logits(self._model, self._tokenizer, self._head, texts, self.max_seq_length)
                out[rows] = torch.sigmoid(logits).numpy()
                progress.update(len(rows))
        return out
