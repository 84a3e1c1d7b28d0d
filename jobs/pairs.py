"""Pairs of clustered paragraphs: each paragraph's nearest neighbours at or above the threshold, kept when
their articles were published close enough in time, and judged by the optional pair verifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from embeddings.index import Neighbours
from jobs.config import ClusterConfig, VerifyConfig
from jobs.text import count_words, split_sentences

_MIN_SENTENCE_WORDS = 4  # shorter pieces ("He said.") carry no fact of their own to match


@dataclass(frozen=True)
class Pairs:
    """Undirected neighbour pairs ``a < b`` with cosine similarity at or above the threshold, and the pair
    verifier's probability that they report the same thing (NaN: not judged; None: no verifier ran)."""

    a: np.ndarray  # int64
    b: np.ndarray  # int64
    similarity: np.ndarray  # float32
    probability: np.ndarray | None = None  # float32

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def subset(self, keep: np.ndarray) -> Pairs:
        """The pairs where the boolean mask ``keep`` is true."""
        probability = None if self.probability is None else self.probability[keep]
        return Pairs(self.a[keep], self.b[keep], self.similarity[keep], probability)

    def renumbered(self, ids: np.ndarray) -> Pairs:
        """The same pairs with every index ``i`` as ``ids[i]`` (still ``a < b`` when ``ids`` ascend)."""
        return Pairs(ids[self.a], ids[self.b], self.similarity, self.probability)

    def accepted(self, min_probability: float) -> Pairs:
        """The pairs the verifier accepted or did not judge (all of them when no verifier ran)."""
        if self.probability is None:
            return self
        return self.subset(~(self.probability < min_probability))  # NaN compares False: unjudged pairs stay


def threshold_pairs(neighbours: Neighbours, threshold: float) -> Pairs:
    """Neighbour pairs at or above ``threshold``, each once with ``a < b`` (a pair found both ways is kept once)."""
    n, k = neighbours.ids.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = neighbours.ids.ravel()
    sims = neighbours.similarities.ravel()
    keep = (cols >= 0) & (sims >= threshold) & (cols != rows)
    a = np.minimum(rows[keep], cols[keep])
    b = np.maximum(rows[keep], cols[keep])
    sims = sims[keep]
    order = np.lexsort((-sims, b, a))  # by (a, b), best similarity first within a duplicate pair
    a, b, sims = a[order], b[order], sims[order]
    first = np.ones(a.shape[0], dtype=bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    return Pairs(a[first], b[first], np.minimum(sims[first], 1.0).astype(np.float32))


def within_days(pairs: Pairs, published: np.ndarray, max_days: float) -> Pairs:
    """The pairs whose articles were published at most ``max_days`` apart.

    ``published`` holds each clustered paragraph's publication time in seconds since the epoch, NaN when its
    article has none: an undated paragraph pairs with any other.
    """
    apart = np.abs(published[pairs.a] - published[pairs.b])
    return pairs.subset(~(apart > max_days * 86_400))  # NaN compares False: undated pairs stay


def near_pairs(neighbours: Neighbours, published: np.ndarray, config: ClusterConfig) -> tuple[Pairs, int]:
    """The neighbour pairs at or above ``config.threshold`` whose articles were published at most
    ``config.max_days_apart`` apart (``published``: see within_days), and how many were left out for that."""
    pairs = threshold_pairs(neighbours, config.threshold)
    if config.max_days_apart is None:
        return pairs, 0
    near = within_days(pairs, published, config.max_days_apart)
    return near, len(pairs) - len(near)


def verify_pairs(
    pairs: Pairs,
    texts: Sequence[str],
    probabilities: Callable[[list[str], list[str]], np.ndarray],
    *,
    below: float,
    min_probability: float,
    max_sentence_pairs: int,
) -> Pairs:
    """``pairs`` with the verifier's probability for each pair under cosine ``below`` (copies are not judged).

    Two paragraphs share reporting when a sentence of one and a sentence of the other report the same thing:
    the verifier judges single sentences (what it was trained on), and a paragraph that adds facts around a
    shared one is still a match. Sentence pairs are tried in order of word overlap, in rounds over all
    pairs so every round is one batch of work; a pair stops at its first sentence pair judged at or above
    ``min_probability``, or after ``max_sentence_pairs``. Its probability is the best one found.
    ``probabilities`` scores lists of texts pairwise (embeddings.verifier.PairVerifier.probabilities).
    """
    probability = np.full(len(pairs), np.nan, dtype=np.float32)
    judge = np.flatnonzero(pairs.similarity < below)
    sentences: dict[int, list[tuple[str, frozenset[str]]]] = {}
    for i in np.unique(np.concatenate([pairs.a[judge], pairs.b[judge]])):
        parts = [s for s in split_sentences(texts[i]) if count_words(s) >= _MIN_SENTENCE_WORDS]
        sentences[int(i)] = [(s, frozenset(s.lower().split())) for s in parts or [texts[i]]]
    queues = []
    for a, b in zip(pairs.a[judge], pairs.b[judge], strict=True):
        ranked = sorted(  # stable: ties keep sentence order
            (
                (len(wx & wy) / len(wx | wy), x, y)
                for x, wx in sentences[int(a)]
                for y, wy in sentences[int(b)]
            ),
            key=lambda t: -t[0],
        )
        queues.append([(x, y) for _, x, y in ranked[:max_sentence_pairs]])
    best = np.zeros(judge.shape[0], dtype=np.float32)
    known: dict[tuple[str, str], float] = {}  # copies of a sentence pair are judged once
    for step in range(max_sentence_pairs):
        todo = [k for k, queue in enumerate(queues) if step < len(queue) and best[k] < min_probability]
        if not todo:
            break
        new = list(dict.fromkeys(queues[k][step] for k in todo if queues[k][step] not in known))
        known.update(zip(new, probabilities([x for x, _ in new], [y for _, y in new]).tolist(), strict=True))
        for k in todo:
            best[k] = max(best[k], known[queues[k][step]])
    probability[judge] = best
    return Pairs(pairs.a, pairs.b, pairs.similarity, probability)


def judge_pairs(
    pairs: Pairs, texts: Sequence[str], config: VerifyConfig, *, copy_similarity: float, threads: int
) -> Pairs:
    """Judge the pairs below ``copy_similarity`` with the configured pair verifier, on ``texts`` (the texts
    the model embedded, one per clustered paragraph).

    It runs here, in this process, on either executor: one model load, and the same probabilities.
    """
    from embeddings.verifier import PairVerifier  # torch: imported only when a verifier is configured

    verifier: list[PairVerifier] = []

    def score(a: list[str], b: list[str]) -> np.ndarray:
        if not verifier:  # loaded on first use: a run with nothing to judge never loads the model
            verifier.append(PairVerifier(config.model, threads=threads, batch_size=config.batch_size))
        return verifier[0].probabilities(a, b)

    return verify_pairs(
        pairs,
        texts,
        score,
        below=copy_similarity,
        min_probability=config.min_probability,
        max_sentence_pairs=config.max_sentence_pairs,
    )
