"""Fit the same-fact model (jobs/same_fact.py) on training data only, reproducibly.

Labeled pairs, each with the evidence the job computes (jobs/evidence.py: the job's own encoder, texts
normalised as the job normalises them, each corpus's articles as the context):
- ECB+ as provided (the odd-numbered topics): annotated sentences of different documents of one topic, at a
  cosine of match.candidate_similarity or more (the pairs the job would judge): the same event instance is
  the same fact; a sister event, or another event of the same story, is not.
- MRPC train (Dolan & Brockett, 2005): its judges' labels.
- STS-B train (Cer et al., SemEval 2017), news pairs: a score of 4 or more (the same meaning, details aside)
  is the same fact, 2.5 or less is not; the pairs between are left out as undecided.
- Reuters-21578 stories outside the syndication benchmark (benchmarks/fit.py reuters_pairs): a paragraph and
  one of its sentences, a paragraph and itself less a sentence (same), two paragraphs of one story (another
  fact of the story: not the same).
MRPC test, BASIL, the syndication benchmark and the seeds are never read here. The cross-validated accuracy
of each source (ECB+ grouped by topic) is printed, so what the model learned is measured on pairs it did not
see.

Usage: ``python -m benchmarks.fit_same_fact [--data ../shared/data] [--out jobs/models/same-fact.json]``
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold

from benchmarks import ecbplus
from benchmarks.corpora import DATA, load_stories, mrpc_pairs, mrpc_texts
from benchmarks.fit import reuters_pairs
from embeddings.encoder import Encoder
from jobs.config import EmbedConfig, MatchConfig
from jobs.embed import load_encoder
from jobs.evidence import ArticleContext, Signature, pair_features, sentence_cosine
from jobs.same_fact import MODEL_DIR, SameFactModel
from jobs.text import normalize, strip_wire_marks

ROOT = Path(__file__).resolve().parents[1]
STS_SAME, STS_DIFFERENT = 4.0, 2.5


def _clean(text: str) -> str:
    return strip_wire_marks(normalize(text))


class Labeled:
    """Pairs of texts, each with its article (an index into ``articles``), a label and a group for CV."""

    def __init__(self) -> None:
        self.articles: list[list[str]] = []
        self.text: list[str] = []
        self.article_of: list[int] = []
        self.a: list[int] = []
        self.b: list[int] = []
        self.same: list[bool] = []
        self.group: list[int] = []

    def add_article(self, paragraphs: Sequence[str]) -> list[int]:
        """Add an article; returns the text indices of its paragraphs."""
        index = len(self.articles)
        self.articles.append([_clean(p) for p in paragraphs])
        start = len(self.text)
        self.text.extend(self.articles[-1])
        self.article_of.extend([index] * len(paragraphs))
        return list(range(start, start + len(paragraphs)))

    def add_pair(self, i: int, j: int, same: bool, group: int) -> None:
        self.a.append(i)
        self.b.append(j)
        self.same.append(same)
        self.group.append(group)

    def features(self, encoder: Encoder) -> np.ndarray:
        """The evidence of every pair, the best sentence pair included (the job weighs it for the pairs the
        model leaves undecided: jobs/pairs.py judge_same_fact)."""
        vectors = encoder.encode(self.text)
        a, b = np.array(self.a), np.array(self.b)
        cosine = np.einsum("ij,ij->i", vectors[a], vectors[b])
        best = sentence_cosine(a, b, self.text, vectors, encoder.encode)
        signatures = [Signature.of(t) for t in self.text]
        return pair_features(a, b, cosine, best, signatures, self.article_of, ArticleContext(self.articles))


def ecb_pairs(folder: Path, encoder: Encoder, candidate_similarity: float) -> Labeled:
    documents = ecbplus.load(folder)
    out = Labeled()
    index = {}
    for d in documents:
        for position, text_index in enumerate(out.add_article(d.sentences)):
            index[(d.name, position)] = text_index
    vectors = encoder.encode(out.text)
    topic = {d.name: d.topic for d in documents}
    for x, y, label in ecbplus.labeled_pairs(documents):
        i, j = index[x], index[y]
        if float(vectors[i] @ vectors[j]) >= candidate_similarity:
            out.add_pair(i, j, label == "same", topic[x[0]])
    return out


def sentence_pairs(pairs: Sequence[tuple[str, str, bool]]) -> Labeled:
    """Pairs of single texts, each its own article (MRPC, STS-B, Reuters pairs)."""
    out = Labeled()
    for k, (x, y, same) in enumerate(pairs):
        (i,), (j,) = out.add_article([x]), out.add_article([y])
        out.add_pair(i, j, same, k)
    return out


def sts_pairs(folder: Path) -> list[tuple[str, str, bool]]:
    with (folder / "sts-train.csv").open(encoding="utf-8", newline="") as handle:
        rows = [r for r in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if len(r) >= 7]
    return [
        (r[5], r[6], float(r[4]) >= STS_SAME)
        for r in rows
        if r[0] == "main-news" and (float(r[4]) >= STS_SAME or float(r[4]) <= STS_DIFFERENT)
    ]


def _balanced_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float((np.mean(predicted[truth]) + np.mean(~predicted[~truth])) / 2)


def _model(x: np.ndarray, y: np.ndarray) -> SameFactModel:
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    fitted = LogisticRegression(C=1.0, class_weight="balanced", max_iter=5000).fit((x - mean) / scale, y)
    return SameFactModel(mean, scale, fitted.coef_[0], float(fitted.intercept_[0]), 0.5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.fit_same_fact", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=DATA, help="default: ../shared/data or $NEWSDEDUP_DATA")
    parser.add_argument("--out", type=Path, default=MODEL_DIR / "same-fact.json")
    parser.add_argument("--reuters", type=int, default=1500, help="Reuters stories to draw pairs from")
    args = parser.parse_args(argv)
    encoder = load_encoder(EmbedConfig(progress=False), threads=2)
    mrpc = mrpc_pairs(args.data / "mrpc", "train")
    texts = mrpc_texts(args.data / "mrpc")
    sources = {
        "ECB+": ecb_pairs(args.data / "ecbplus", encoder, MatchConfig().candidate_similarity),
        "MRPC train": sentence_pairs(
            [(texts[a], texts[b], y) for a, b, y in zip(mrpc.a, mrpc.b, mrpc.label, strict=True)]
        ),
        "STS-B train (news)": sentence_pairs(sts_pairs(args.data / "stsbenchmark")),
        "Reuters-21578": sentence_pairs(
            reuters_pairs(load_stories(args.data / "reuters21578"), args.reuters)
        ),
    }
    x = {name: s.features(encoder) for name, s in sources.items()}
    y = {name: np.array(s.same) for name, s in sources.items()}
    # Each source's pairs held out in 5 folds (ECB+: whole topics, so a topic's events never leak into
    # training), the rest trained on: out-of-fold probabilities, from which the cut is picked.
    held_out = {}
    for name, s in sources.items():
        if name == "ECB+":
            split = GroupKFold(5).split(x[name], y[name], np.array(s.group))
        else:
            split = StratifiedKFold(5, shuffle=True, random_state=0).split(x[name], y[name])
        held_out[name] = np.zeros(len(s.same))
        for train, test in split:
            xs = np.vstack([x[n] for n in sources if n != name] + [x[name][train]])
            ys = np.concatenate([y[n] for n in sources if n != name] + [y[name][train]])
            held_out[name][test] = _model(xs, ys).probability(x[name][test])
    # The cut: the probability at which the sources' held-out balanced accuracy, averaged over the sources
    # (each counts once, whatever its size), is best.
    cuts = np.round(np.arange(0.30, 0.86, 0.01), 2)
    score = [np.mean([_balanced_accuracy(held_out[n] >= c, y[n]) for n in sources]) for c in cuts]
    cut = float(cuts[int(np.argmax(score))])
    report = {
        name: {
            "pairs": len(s.same),
            "same": int(y[name].sum()),
            "held_out_accuracy": round(float(np.mean((held_out[name] >= cut) == y[name])), 4),
            "held_out_balanced_accuracy": round(_balanced_accuracy(held_out[name] >= cut, y[name]), 4),
        }
        for name, s in sources.items()
    }
    for name, row in report.items():
        print(f"{name}: {row}")
    print(f"cut {cut:.2f}: mean held-out balanced accuracy {max(score):.4f}")
    model = _model(np.vstack(list(x.values())), np.concatenate(list(y.values())))
    model = SameFactModel(
        model.mean,
        model.scale,
        model.weights,
        model.intercept,
        cut,
        {"fitted_by": "python -m benchmarks.fit_same_fact", "encoder": encoder.identity, "sources": report},
    )
    model.save(args.out)
    print(f"same-fact model written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
