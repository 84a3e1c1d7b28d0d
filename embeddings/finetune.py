"""Low-rank adapters (LoRA, Hu et al., ICLR 2022) that fine-tune a packaged sentence-transformer on
judged sentence pairs, and their application at load time.

Why: off-the-shelf all-MiniLM-L6-v2 puts "the same story" as close as "the same reported fact" (MRPC test
accuracy 0.72 with a fitted threshold). Fine-tuning on pairs judged same / not same moves them apart. An
adapter is the difference to the packaged weights in low-rank form: about 1 MB instead of a 90 MB model,
so it lives in the repository, and it is merged into the weights once at load time, so encoding costs
exactly what the base model costs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

# The linear layers of every transformer block (attention projections and the feed-forward pair).
_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")


@dataclass(frozen=True)
class AdapterParams:
    """How an adapter is trained. Defaults are the ones the shipped adapter was trained with.

    rank, alpha: LoRA rank and scale (the update is ``alpha / rank * B @ A``).
    epochs, batch_size, learning_rate, warmup: AdamW with linear warm-up then linear decay.
    margin: contrastive loss margin on cosine distance: pairs judged different are pushed at least this far.
    in_batch_weight: weight of a multiple-negatives ranking loss (Henderson et al., 2017) over the batch:
        each pair judged same must outscore its text against the batch's other texts, which are mostly
        other stories. Judged pairs alone are all same-story, so without it the adapter learns nothing
        about other stories and draws same-topic paragraphs together. 0 turns it off.
    scale: the ranking loss's similarity scale (inverse temperature).
    max_seq_length: tokens per sentence while training.
    seed: every random choice (initialisation, dropout, batch order).
    """

    rank: int = 8
    alpha: float = 16.0
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 3e-4
    warmup: float = 0.1
    margin: float = 0.5
    in_batch_weight: float = 1.0
    scale: float = 20.0
    max_seq_length: int = 128
    seed: int = 0


class _LoRALinear(torch.nn.Module):
    """``base(x) + scale * x @ A.T @ B.T``; B starts at zero so training starts from the base model."""

    def __init__(self, base: torch.nn.Linear, rank: int, scale: float, generator: torch.Generator) -> None:
        super().__init__()
        self.base, self.scale = base, scale
        self.A = torch.nn.Parameter(
            torch.randn(rank, base.in_features, generator=generator) / base.in_features**0.5
        )
        self.B = torch.nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.A.T @ self.B.T) * self.scale


def _target_layers(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and ".layer." in name and name.endswith(_TARGETS)
    }


def _swap(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent), child, module)


def train_adapter(
    model: torch.nn.Module, pairs: Sequence[tuple[str, str, bool]], params: AdapterParams = AdapterParams()
) -> dict[str, torch.Tensor]:
    """Train an adapter of ``model`` (a SentenceTransformer, left unchanged) on (text, text, same) pairs."""
    torch.manual_seed(params.seed)
    random.seed(params.seed)
    generator = torch.Generator().manual_seed(params.seed)
    order_rng = np.random.default_rng(params.seed)
    for p in model.parameters():
        p.requires_grad_(False)
    layers = _target_layers(model)
    scale = params.alpha / params.rank
    wrapped = {name: _LoRALinear(base, params.rank, scale, generator) for name, base in layers.items()}
    for name, module in wrapped.items():
        _swap(model, name, module)
    saved_length = model.max_seq_length
    model.max_seq_length = params.max_seq_length
    trainable = [p for m in wrapped.values() for p in (m.A, m.B)]
    optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate)
    steps = params.epochs * -(-len(pairs) // params.batch_size)
    warm = max(1, int(params.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, (steps - s) / max(1, steps - warm))
    )
    try:
        model.train()
        for _ in range(params.epochs):
            order = order_rng.permutation(len(pairs))
            for start in range(0, len(pairs), params.batch_size):
                batch = [pairs[i] for i in order[start : start + params.batch_size]]
                a = model(model.tokenize([x[0] for x in batch]))["sentence_embedding"]
                b = model(model.tokenize([x[1] for x in batch]))["sentence_embedding"]
                distance = 1 - torch.nn.functional.cosine_similarity(a, b)
                same = torch.tensor([x[2] for x in batch], dtype=torch.float32)
                # Contrastive loss (Hadsell et al., 2006) on cosine distance.
                loss = (
                    same * distance.pow(2) + (1 - same) * torch.relu(params.margin - distance).pow(2)
                ).mean()
                if params.in_batch_weight and bool(same.any()):
                    loss = loss + params.in_batch_weight * _in_batch_loss(a, b, same.bool(), params.scale)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
    finally:
        model.eval()
        model.max_seq_length = saved_length
        for name, module in wrapped.items():
            _swap(model, name, module.base)
    return {
        **{f"{name}.A": m.A.detach().clone() for name, m in wrapped.items()},
        **{f"{name}.B": (m.B.detach() * scale).clone() for name, m in wrapped.items()},
    }


def _in_batch_loss(a: torch.Tensor, b: torch.Tensor, same: torch.Tensor, scale: float) -> torch.Tensor:
    """Cross-entropy of each same pair's text ``a[i]`` picking ``b[i]`` among all of the batch's ``b``."""
    scores = scale * torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T
    rows = torch.nonzero(same).flatten()
    return torch.nn.functional.cross_entropy(scores[rows], rows)


def save_adapter(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, object]) -> None:
    """Write the adapter as safetensors; ``metadata`` (how it was trained) is stored as JSON inside."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.contiguous() for k, v in tensors.items()},
        str(path),
        metadata={"newsdedup": json.dumps(metadata)},
    )


def apply_adapter(model: torch.nn.Module, path: Path) -> None:
    """Merge the adapter at ``path`` into ``model``'s weights (``W += B @ A``), in place."""
    tensors = load_file(str(path))
    layers = _target_layers(model)
    names = {key.rsplit(".", 1)[0] for key in tensors}
    fits = names == set(layers) and all(
        tensors[f"{name}.B"].shape[0] == layer.out_features
        and tensors[f"{name}.A"].shape[1] == layer.in_features
        for name, layer in layers.items()
    )
    if not fits:
        raise ValueError(
            f"adapter {path} does not fit this model (its layers or shapes differ): use an adapter trained for "
            "embed.model (python -m benchmarks.fit --model ...) or set embed.adapter: null"
        )
    with torch.no_grad():
        for name, layer in layers.items():
            layer.weight += tensors[f"{name}.B"] @ tensors[f"{name}.A"]


def params_metadata(params: AdapterParams, **extra: object) -> dict[str, object]:
    return {"params": asdict(params), **extra}
