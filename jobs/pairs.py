"""Candidate pairs of clustered paragraphs and what the job decides about each: the nearest neighbours in
embedding space and the paragraphs that share wording (MinHash LSH), kept when their articles were published
close enough in time, then judged a copy, a rewrite of the same fact, or not the same reporting
(jobs/evidence.py, jobs/same_fact.py), and optionally judged again by the pair verifier."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from embeddings.index import Neighbours
from jobs.config import MatchConfig, VerifyConfig
from jobs.evidence import ArticleContext, Signature, pair_features, sentence_cosine
from jobs.same_fact import COPY, NOT_SAME, REWRITE, VETOED, SameFactModel, decide
from jobs.text import count_words, split_sentences

_MIN_SENTENCE_WORDS = 4  # shorter pieces ("He said.") carry no fact of their own to match
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Pairs:
    """Undirected candidate pairs ``a < b`` with their cosine similarity; once judged, the same-fact model's
    probability and the link (COPY, REWRITE or NOT_SAME); and the pair verifier's probability that they
    report the same thing (NaN: not judged; None: no verifier ran)."""

    a: np.ndarray  # int64
    b: np.ndarray  # int64
    similarity: np.ndarray  # float32
    same_fact: np.ndarray | None = None  # float32
    link: np.ndarray | None = None  # int8
    probability: np.ndarray | None = None  # float32

    def __len__(self) -> int:
        return int(self.a.shape[0])

    def _map(self, fn: Callable[[np.ndarray], np.ndarray]) -> dict[str, np.ndarray | None]:
        return {
            name: None if value is None else fn(value)
            for name, value in (
                ("same_fact", self.same_fact),
                ("link", self.link),
                ("probability", self.probability),
            )
        }

    def subset(self, keep: np.ndarray) -> Pairs:
        """The pairs where the boolean mask ``keep`` is true."""
        return Pairs(self.a[keep], self.b[keep], self.similarity[keep], **self._map(lambda v: v[keep]))

    def renumbered(self, ids: np.ndarray) -> Pairs:
        """The same pairs with every index ``i`` as ``ids[i]`` (still ``a < b`` when ``ids`` ascend)."""
        return Pairs(ids[self.a], ids[self.b], self.similarity, **self._map(lambda v: v))

    def linked_mask(self) -> np.ndarray:
        """Which pairs are judged the same reporting (a copy or a rewrite)."""
        if self.link is None:
            raise ValueError("the pairs are not judged yet")
        return (self.link == COPY) | (self.link == REWRITE)

    def weight(self) -> np.ndarray:
        """The evidence each pair gives that its paragraphs report the same fact: 1 for a copy, 0 when a
        conflict or the verifier ruled it out, else the same-fact probability."""
        if self.link is None or self.same_fact is None:
            raise ValueError("the pairs are not judged yet")
        return np.where(self.link == COPY, 1.0, np.where(self.link == VETOED, 0.0, self.same_fact))


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


def lexical_pairs(texts: Sequence[str], config: MatchConfig) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of texts whose word ``config.minhash_ngram``-grams overlap at about ``config.minhash_threshold``
    (Jaccard) or more, found by MinHash LSH (datasketch): copies whose cosine a dateline, typos or a cut
    sentence pulled under the candidate similarity. Identical texts are queried once.
    """
    from datasketch import MinHash, MinHashLSH

    n = config.minhash_ngram
    distinct: dict[str, int] = {}
    group = np.fromiter(
        (distinct.setdefault(t, len(distinct)) for t in texts), dtype=np.int64, count=len(texts)
    )
    grams = []
    for text in distinct:
        words = _WORD.findall(text.lower())
        grams.append([" ".join(words[i : i + n]).encode() for i in range(max(1, len(words) - n + 1))])
    lsh = MinHashLSH(threshold=config.minhash_threshold, num_perm=config.minhash_permutations)
    hashes = MinHash.bulk(grams, num_perm=config.minhash_permutations, seed=1)
    for key, minhash in enumerate(hashes):
        lsh.insert(key, minhash, check_duplication=False)
    found = {
        (min(key, other), max(key, other))
        for key, m in enumerate(hashes)
        for other in lsh.query(m)
        if other != key
    }
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # Distinct-text pairs back to paragraph pairs: every paragraph of one text with the first of the other.
    members = (
        [np.flatnonzero(group == g) for g in range(len(distinct))] if len(distinct) < len(texts) else None
    )
    a, b = [], []
    for x, y in sorted(found):
        if members is None:
            a.append(x)
            b.append(y)
            continue
        for i in members[x]:
            a.append(int(i))
            b.append(int(members[y][0]))
        for j in members[y][1:]:
            a.append(int(members[x][0]))
            b.append(int(j))
    a_, b_ = np.array(a, np.int64), np.array(b, np.int64)
    return np.minimum(a_, b_), np.maximum(a_, b_)


def candidate_pairs(
    neighbours: Neighbours,
    vectors: np.ndarray,
    texts: Sequence[str],
    published: np.ndarray,
    config: MatchConfig,
    own_rows: int | None = None,
) -> tuple[Pairs, int]:
    """The pairs to judge: neighbours at or above ``config.candidate_similarity`` and, with
    ``config.lexical``, texts that share wording; those whose articles were published more than
    ``config.max_days_apart`` apart are left out (``published``: see within_days). Also returns how many
    were left out for that. ``own_rows``: only pairs with one of the first ``own_rows`` rows (a run's own
    paragraphs; the rows after them are the history's, whose pairs their own runs judged)."""
    pairs = threshold_pairs(neighbours, config.candidate_similarity)
    if config.lexical and len(texts) > 1:
        la, lb = lexical_pairs(texts, config)
        known = set(zip(pairs.a.tolist(), pairs.b.tolist(), strict=True))
        new = np.array(
            [(x, y) not in known for x, y in zip(la.tolist(), lb.tolist(), strict=True)], dtype=bool
        )
        la, lb = la[new], lb[new]
        sims = np.minimum(np.einsum("ij,ij->i", vectors[la], vectors[lb]), 1.0).astype(np.float32)
        a = np.concatenate([pairs.a, la])
        b = np.concatenate([pairs.b, lb])
        order = np.lexsort((b, a))
        pairs = Pairs(a[order], b[order], np.concatenate([pairs.similarity, sims])[order])
    if own_rows is not None:
        pairs = pairs.subset(pairs.a < own_rows)  # a < b: a pair with an own row has it as a
    if config.max_days_apart is None:
        return pairs, 0
    near = within_days(pairs, published, config.max_days_apart)
    return near, len(pairs) - len(near)


def judge_same_fact(
    pairs: Pairs,
    texts: Sequence[str],
    vectors: np.ndarray,
    article_of: np.ndarray,
    article_texts: Sequence[Sequence[str]],
    embed: Callable[[list[str]], np.ndarray],
    config: MatchConfig,
) -> Pairs:
    """``pairs`` with the same-fact probability and the link of each: COPY, REWRITE or NOT_SAME (or VETOED).

    ``texts``, ``vectors`` and ``article_of`` are per clustered paragraph (the text the model read, its
    vector, its article's index); ``article_texts`` holds every article's paragraphs, the context each pair
    is judged in. With ``config.sentence_probability`` set, a pair the model leaves undecided (not the
    same, at that probability or more) is weighed again with its best sentence pair (``embed`` turns the sentences into vectors): one
    fact of a paragraph that tells several can be the same as another paragraph's only fact.
    """
    model = SameFactModel.load(config.model)
    if not len(pairs):
        return Pairs(pairs.a, pairs.b, pairs.similarity, np.zeros(0, np.float32), np.zeros(0, np.int8))
    used = np.unique(np.concatenate([pairs.a, pairs.b]))
    signatures: list[Signature | None] = [None] * len(texts)
    for i in used.tolist():
        signatures[i] = Signature.of(texts[i])
    cosine = pairs.similarity.astype(np.float64)
    context = ArticleContext(article_texts)
    features = pair_features(pairs.a, pairs.b, cosine, cosine, signatures, article_of, context)
    probability = model.probability(features)
    same_article = article_of[pairs.a] == article_of[pairs.b]
    cut = model.cut if config.min_probability is None else config.min_probability
    link = decide(features, probability, same_article, config, cut)
    if config.sentence_probability is None:
        return Pairs(pairs.a, pairs.b, pairs.similarity, probability, link)
    again = np.flatnonzero((link == NOT_SAME) & (probability >= config.sentence_probability))
    if again.size:
        a, b = pairs.a[again], pairs.b[again]
        best = sentence_cosine(a, b, texts, vectors, embed)
        features[again] = pair_features(a, b, cosine[again], best, signatures, article_of, context)
        probability[again] = model.probability(features[again])
        link[again] = decide(features[again], probability[again], same_article[again], config, cut)
    return Pairs(pairs.a, pairs.b, pairs.similarity, probability, link)


def verify_pairs(
    pairs: Pairs,
    texts: Sequence[str],
    probabilities: Callable[[list[str], list[str]], np.ndarray],
    *,
    min_probability: float,
    max_sentence_pairs: int,
) -> Pairs:
    """``pairs`` with the verifier's probability for each rewrite (copies are not judged); a rewrite it judges
    under ``min_probability`` is no longer linked.

    Two paragraphs share reporting when a sentence of one and a sentence of the other report the same thing:
    the verifier judges single sentences (what it was trained on), and a paragraph that adds facts around a
    shared one is still a match. Sentence pairs are tried in order of word overlap, in rounds over all
    pairs so every round is one batch of work; a pair stops at its first sentence pair judged at or above
    ``min_probability``, or after ``max_sentence_pairs``. Its probability is the best one found.
    ``probabilities`` scores lists of texts pairwise (embeddings.verifier.PairVerifier.probabilities).
    """
    probability = np.full(len(pairs), np.nan, dtype=np.float32)
    judge = np.flatnonzero(pairs.link == REWRITE)
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
    link = np.where(probability < min_probability, VETOED, pairs.link).astype(np.int8)  # NaN: unjudged
    return Pairs(pairs.a, pairs.b, pairs.similarity, pairs.same_fact, link, probability)


def judge_pairs(pairs: Pairs, texts: Sequence[str], config: VerifyConfig, *, threads: int) -> Pairs:
    """Judge the rewrites among ``pairs`` with the configured pair verifier, on ``texts`` (the texts the
    model embedded, one per clustered paragraph).

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
        min_probability=config.min_probability,
        max_sentence_pairs=config.max_sentence_pairs,
    )
