"""Fit the knobs that need labeled data, on MRPC **train** only, reproducibly (fixed seeds).

MRPC train is split once (seed 0): 85% trains the embedding adapter (embeddings/finetune.py), the other
15% (dev) picks the cosine threshold that configs/adapter.yaml uses. MRPC test is never read here.

``--verifier`` trains the pair verifier (embeddings/verifier.py) on the same 85% instead, and picks on the
dev 15% the cosine that candidate pairs need (``cluster.threshold``) before the verifier judges them.

MRPC judges single sentences and calls a sentence that adds a fact "not equivalent"; trained on it alone,
the adapter also pulls a one-sentence report away from a paragraph that contains it (the seeds' airspace
pair). ``--reuters N`` adds pairs from N Reuters-21578 stories that the syndication benchmark does not
use (none shares an 8-word run with its stories): a paragraph and one of its sentences, a paragraph and
itself less a sentence (same), and two paragraphs of one story (same story, another fact: different).

Usage: ``python -m benchmarks.fit [--verifier] [--data ../shared/data] [--out embeddings/adapters/...]``
(1,245 s of training on 2 cores for the shipped adapter). The shipped verifier: ``--verifier --reuters 0``
(556 s); ``--verifier --no-train --reuters 0`` re-evaluates it on dev, and with ``--adapter NAME`` picks the cut
on the cosine of that embedding adapter instead of the base model's.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks import syndication
from benchmarks.corpora import DATA, Story, is_prose, load_stories, mrpc_pairs, mrpc_texts
from embeddings.encoder import SentenceTransformerEncoder
from embeddings.finetune import (
    AdapterParams,
    VerifierParams,
    params_metadata,
    save_adapter,
    train_adapter,
    train_verifier,
)
from embeddings.index import set_threads
from embeddings.models import adapter_digest, resolve_model_path
from embeddings.verifier import PairVerifier
from jobs.config import EmbedConfig, VerifyConfig
from jobs.embed import load_encoder
from jobs.text import normalize, split_sentences

ROOT = Path(__file__).resolve().parents[1]
DEV_SHARE = 0.15


def best_threshold(similarity: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The cut that maximises accuracy of ``similarity >= cut``, midway between two distinct scores."""
    order = np.argsort(-similarity, kind="stable")
    s, y = similarity[order], same[order].astype(np.int64)
    # Accuracy when the first i (highest) are called same: positives among them + negatives after them.
    correct = np.concatenate([[0], np.cumsum(y)]) + (np.sum(1 - y) - np.concatenate([[0], np.cumsum(1 - y)]))
    # A cut can only fall between distinct scores: tied scores are called the same way.
    allowed = np.concatenate([[True], s[:-1] != s[1:], [True]])
    i = int(np.argmax(np.where(allowed, correct, -1)))
    cut = float(s[0]) + 1e-6 if i == 0 else float(s[-1] if i == len(s) else (s[i - 1] + s[i]) / 2)
    return cut, float(correct[i] / len(s))


def _grams(text: str, n: int = 8) -> set[str]:
    # Whitespace words, unlike corpora.word_ngrams: the shipped adapter's training pairs were drawn with this.
    words = text.lower().split()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def reuters_pairs(stories: Sequence[Story], n_stories: int, seed: int = 0) -> list[tuple[str, str, bool]]:
    """Same-fact and same-story pairs from Reuters stories outside the syndication benchmark (seed 0)."""
    used = {
        label.split(":")[0]
        for labels in syndication.generate(stories, seed=0).labels.values()
        for label in labels
        if label
    }
    held_out = set().union(*(_grams(p) for s in stories if s.story_id in used for p in s.paragraphs))
    rng = random.Random(seed)
    pairs: list[tuple[str, str, bool]] = []
    for story in rng.sample(stories, len(stories)):
        if len(pairs) >= 3 * n_stories:
            break
        prose = [normalize(p) for p in story.paragraphs if is_prose(p)]
        if story.story_id in used or len(prose) < 2 or any(_grams(p) & held_out for p in prose):
            continue
        first, second = rng.sample(prose, 2)
        parts = [x for x in split_sentences(first) if len(x.split()) >= 8]
        if len(parts) < 2:
            continue
        drop = rng.randrange(len(parts))
        pairs += [
            (parts[rng.randrange(len(parts))], first, True),
            (first, " ".join(x for i, x in enumerate(parts) if i != drop), True),
            (first, second, False),
        ]
    return pairs


def torch_encoder(model: str, adapter: str | None, threads: int) -> SentenceTransformerEncoder:
    """``model`` (with ``adapter``) on PyTorch, what adapters are trained on, loaded as the job loads it."""
    encoder = load_encoder(
        EmbedConfig(model=model, backend="torch", adapter=adapter, progress=False), threads
    )
    assert isinstance(encoder, SentenceTransformerEncoder)
    return encoder


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="default: ../shared/data or $NEWSDEDUP_DATA")
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: embeddings/adapters/<model>-mrpc-reuters.safetensors, or <model>-verifier with --verifier",
    )
    parser.add_argument(
        "--no-train", action="store_true", help="with --verifier: only evaluate the verifier at --out on dev"
    )
    parser.add_argument(
        "--verifier", action="store_true", help="train the pair verifier, not an embedding adapter"
    )
    parser.add_argument(
        "--adapter",
        default=None,
        help="with --verifier: the embedding adapter (embed.adapter) whose cosine picks the cut in front of it",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--reuters", type=int, default=800, help="Reuters stories to add pairs from (0: MRPC only)"
    )
    args = parser.parse_args(argv)
    if args.adapter and not (args.verifier and args.no_train):
        parser.error(
            "--adapter goes with --verifier --no-train: it picks the cut in front of a trained verifier "
            "(an embedding adapter is trained on the base model; the verifier reads texts, not vectors)"
        )
    set_threads(args.threads)
    train = mrpc_pairs(args.data / "mrpc", "train")
    text = mrpc_texts(args.data / "mrpc")
    pairs = [
        (normalize(text[a]), normalize(text[b]), y)
        for a, b, y in zip(train.a, train.b, train.label, strict=True)
    ]
    order = np.random.default_rng(0).permutation(len(pairs))
    cut = round((1 - DEV_SHARE) * len(pairs))
    fit, dev = [pairs[i] for i in order[:cut]], [pairs[i] for i in order[cut:]]
    stories = load_stories(args.data / "reuters21578") if args.reuters else []
    extra = reuters_pairs(stories, args.reuters) if args.reuters else []
    print(f"{len(fit)} MRPC train pairs + {len(extra)} Reuters pairs")
    fit = fit + extra
    data = (
        f"{len(fit) - len(extra)} pairs of MRPC train (85%, seed-0 split); {len(extra)} pairs from "
        f"{args.reuters} Reuters-21578 stories outside the syndication benchmark (seed 0)"
    )
    encoder = torch_encoder(args.model, args.adapter, args.threads)
    if args.verifier:
        out = args.out or ROOT / "embeddings" / "adapters" / f"{args.model}-verifier.safetensors"
        return fit_verifier(args.model, encoder, fit, dev, data, out, args.threads, train=not args.no_train)
    args.out = args.out or ROOT / "embeddings" / "adapters" / f"{args.model}-mrpc-reuters.safetensors"
    params = AdapterParams()
    start = time.perf_counter()
    tensors = train_adapter(encoder.model, fit, params)
    print(f"trained on {len(fit)} pairs in {time.perf_counter() - start:.0f} s")
    save_adapter(tensors, args.out, params_metadata(params, base_model=args.model, data=data))
    tuned = torch_encoder(args.model, str(args.out), args.threads)
    y = np.array([p[2] for p in dev])
    for label, enc in (("base", encoder), ("adapted", tuned)):
        va, vb = enc.encode([p[0] for p in dev]), enc.encode([p[1] for p in dev])
        threshold, accuracy = best_threshold((va * vb).sum(axis=1), y)
        print(f"{label}: dev ({len(dev)} pairs) accuracy {accuracy:.4f} at cosine threshold {threshold:.4f}")
    print(f"adapter {args.out} (digest {adapter_digest(args.out)}): set cluster.threshold to the adapted cut")
    return 0


def fit_verifier(
    model: str,
    encoder: SentenceTransformerEncoder,
    fit: Sequence[tuple[str, str, bool]],
    dev: Sequence[tuple[str, str, bool]],
    data: str,
    out: Path,
    threads: int,
    train: bool = True,
) -> int:
    """Train the verifier on ``fit`` (unless ``train`` is False: evaluate the one at ``out``); on ``dev``, its
    accuracy and the best candidate cosine in front of it."""
    if train:
        from transformers import AutoModel, AutoTokenizer

        folder = resolve_model_path(model)
        params = VerifierParams()
        start = time.perf_counter()
        tensors = train_verifier(
            AutoModel.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder)), fit, params
        )
        print(f"trained on {len(fit)} pairs in {time.perf_counter() - start:.0f} s")
        save_adapter(tensors, out, params_metadata(params, base_model=model, data=data))
    verifier = PairVerifier(out, threads=threads, batch_size=VerifyConfig().batch_size)
    y = np.array([p[2] for p in dev])
    same = verifier.probabilities([p[0] for p in dev], [p[1] for p in dev]) >= 0.5
    cosine = (encoder.encode([p[0] for p in dev]) * encoder.encode([p[1] for p in dev])).sum(axis=1)
    print(f"verifier alone: dev ({len(dev)} pairs) accuracy {np.mean(same == y):.4f}")
    # A pair reaches the verifier only when its cosine is at least cluster.threshold. Accuracy of "cosine >=
    # cut and verified" for cuts from 0.50 up (lower cuts let nearly every kNN pair reach the verifier); the
    # pick is the highest cut within one standard error of the best accuracy (the one-standard-error rule,
    # Breiman et al. 1984): as accurate as dev can tell, and fewer pairs to judge.
    cuts = np.round(np.arange(0.50, 0.96, 0.01), 2)
    accuracy = np.array([np.mean(((cosine >= c) & same) == y) for c in cuts])
    best = int(np.argmax(accuracy))
    error = np.sqrt(accuracy[best] * (1 - accuracy[best]) / len(dev))
    pick = int(np.flatnonzero(accuracy >= accuracy[best] - error).max())
    print(f"best cut: cosine >= {cuts[best]:.2f}, then verified: dev accuracy {accuracy[best]:.4f}")
    print(
        f"highest cut within one standard error ({error:.4f}): {cuts[pick]:.2f}, accuracy {accuracy[pick]:.4f}"
    )
    print(f"verifier {out} (digest {adapter_digest(out)}): set cluster.threshold to {cuts[pick]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
