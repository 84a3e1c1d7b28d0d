"""Low-rank adapters (LoRA, Hu et al., ICLR 2022) that fine-tune a packaged sentence-transformer on
judged sentence pairs, and their application at load time. The same adapters, with a linear head, turn the
packaged model into the pair verifier's cross-encoder (embeddings/verifier.py).

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

from embeddings.models import require_torch

# Before torch's import, so a runtime-only install (the container image) says what to install.
require_torch("fine-tuning (embeddings/finetune.py)", ("torch", "safetensors"))
import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

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


def _wrap(model: torch.nn.Module, rank: int, scale: float, seed: int) -> dict[str, _LoRALinear]:
    """Seed every random choice, freeze ``model`` and put a fresh LoRA around each target layer."""
    torch.manual_seed(seed)
    random.seed(seed)
    generator = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = {
        name: _LoRALinear(base, rank, scale, generator) for name, base in _target_layers(model).items()
    }
    for name, module in wrapped.items():
        _swap(model, name, module)
    return wrapped


def _warmup_decay(
    optimizer: torch.optim.Optimizer, steps: int, warmup: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` of the ``steps``, then linear decay to zero."""
    warm = max(1, int(warmup * steps))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, (steps - s) / max(1, steps - warm))
    )


def _unwrap(model: torch.nn.Module, wrapped: dict[str, _LoRALinear], scale: float) -> dict[str, torch.Tensor]:
    """Put the base layers back into ``model`` and return the trained update as ``A`` and scaled ``B``."""
    for name, module in wrapped.items():
        _swap(model, name, module.base)
    return {
        **{f"{name}.A": m.A.detach().clone() for name, m in wrapped.items()},
        **{f"{name}.B": (m.B.detach() * scale).clone() for name, m in wrapped.items()},
    }


def train_adapter(
    model: torch.nn.Module, pairs: Sequence[tuple[str, str, bool]], params: AdapterParams = AdapterParams()
) -> dict[str, torch.Tensor]:
    """Train an adapter of ``model`` (a SentenceTransformer, left unchanged) on (text, text, same) pairs."""
    scale = params.alpha / params.rank
    wrapped = _wrap(model, params.rank, scale, params.seed)
    order_rng = np.random.default_rng(params.seed)
    saved_length = model.max_seq_length
    model.max_seq_length = params.max_seq_length
    trainable = [p for m in wrapped.values() for p in (m.A, m.B)]
    optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate)
    schedule = _warmup_decay(optimizer, params.epochs * -(-len(pairs) // params.batch_size), params.warmup)
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
    return _unwrap(model, wrapped, scale)


@dataclass(frozen=True)
class VerifierParams:
    """How a pair verifier (a cross-encoder: LoRA on the packaged model plus a linear head) is trained.

    rank, alpha: LoRA rank and scale. epochs, batch_size, learning_rate, warmup, weight_decay: AdamW with
    linear warm-up then decay, binary cross-entropy on same / not same. Each pair is shown in a random
    order (at run time the verifier reads a pair in one fixed order, the lesser text first). max_seq_length: tokens of the two texts together.
    seed: every random choice. Defaults are the ones the shipped verifier was trained with.
    """

    rank: int = 16
    alpha: float = 32.0
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-4
    warmup: float = 0.1
    weight_decay: float = 0.01
    max_seq_length: int = 256
    seed: int = 0


def pair_logits(
    transformer: torch.nn.Module,
    tokenizer: object,
    head: torch.nn.Linear,
    pairs: Sequence[tuple[str, str]],
    max_seq_length: int,
) -> torch.Tensor:
    """The cross-encoder's logit of each (text, text): the head on the mean of the joint encoding's tokens."""
    enc = tokenizer(  # type: ignore[operator]
        [p[0] for p in pairs],
        [p[1] for p in pairs],
        padding=True,
        truncation="longest_first",
        max_length=max_seq_length,
        return_tensors="pt",
    )
    tokens = transformer(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(tokens.dtype)
    return head((tokens * mask).sum(1) / mask.sum(1)).squeeze(-1)


def train_verifier(
    transformer: torch.nn.Module,
    tokenizer: object,
    pairs: Sequence[tuple[str, str, bool]],
    params: VerifierParams = VerifierParams(),
) -> dict[str, torch.Tensor]:
    """Train a verifier on ``transformer`` (a Hugging Face encoder, left unchanged): LoRA tensors and ``head.*``."""
    scale = params.alpha / params.rank
    wrapped = _wrap(transformer, params.rank, scale, params.seed)
    head = torch.nn.Linear(transformer.config.hidden_size, 1)
    rng = np.random.default_rng(params.seed)
    trainable = [p for m in wrapped.values() for p in (m.A, m.B)] + list(head.parameters())
    optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate, weight_decay=params.weight_decay)
    schedule = _warmup_decay(optimizer, params.epochs * -(-len(pairs) // params.batch_size), params.warmup)
    try:
        transformer.train()
        for _ in range(params.epochs):
            order = rng.permutation(len(pairs))
            for start in range(0, len(pairs), params.batch_size):
                batch = [pairs[i] for i in order[start : start + params.batch_size]]
                # Either order: the verifier must not care which paragraph comes first.
                texts = [(a, b) if rng.random() < 0.5 else (b, a) for a, b, _ in batch]
                same = torch.tensor([y for _, _, y in batch], dtype=torch.float32)
                logits = pair_logits(transformer, tokenizer, head, texts, params.max_seq_length)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, same)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
    finally:
        transformer.eval()
    tensors = _unwrap(transformer, wrapped, scale)
    tensors["head.weight"] = head.weight.detach().clone()
    tensors["head.bias"] = head.bias.detach().clone()
    return tensors


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
    tensors = {k: v for k, v in load_file(str(path)).items() if k.endswith((".A", ".B"))}
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
