"""What two paragraphs share, as numbers a model can weigh: their cosine, their wording, whether their names,
numbers and weekdays agree or conflict, and how much their two articles have in common.

Why these: two paragraphs report the same fact when the same who, what, where and when agree, whether one
copied the other or rewrote it. Closeness of topic is not enough (a sister fact, the same kind of event about
other people or numbers, is as close in embedding space), so names and numbers that one paragraph has and the
other's whole article lacks count against a pair, and an article pair that shares its names (who and where)
counts for it: sister events are told in different articles. Shared wording tells a copy from a rewrite.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from embeddings.progress import Progress
from jobs.text import count_words, split_sentences

# The features, in the order the same-fact model (jobs/same_fact.py) reads them.
FEATURES = (
    "cosine",  # of the two paragraphs' vectors
    "sentence_cosine",  # the best of a sentence of one and a sentence of the other (one fact may be enough)
    "article_names",  # IDF-weighted Jaccard of the capitalised names of the two articles
    "article_words",  # TF-IDF cosine of the two articles' words
    "shared_names",  # IDF weight of the names both paragraphs hold
    "name_conflict",  # IDF weight of names each holds that the other's article lacks (the lesser side)
    "shared_numbers",  # numbers both paragraphs hold
    "number_conflict",  # 1 when each paragraph holds a number the other lacks
    "weekday_conflict",  # 1 when both name weekdays and none agrees
    "wording",  # share of the shorter paragraph's character 5-grams found in the longer one
    "word_overlap",  # Jaccard of the two paragraphs' words
    "length_ratio",  # shorter / longer, in characters
)
COSINE = FEATURES.index("cosine")
SENTENCE_COSINE = FEATURES.index("sentence_cosine")
WORDING = FEATURES.index("wording")
LENGTH_RATIO = FEATURES.index("length_ratio")
CONFLICTS = (FEATURES.index("number_conflict"), FEATURES.index("weekday_conflict"))

_CAPITALISED = re.compile(r"\b[A-Z][\w'.-]*")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_WORD = re.compile(r"\w+")
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_UNITS_TEXT = "zero one two three four five six seven eight nine"
_TEENS_TEXT = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
_TENS_TEXT = "twenty thirty forty fifty sixty seventy eighty ninety"
_UNITS = {w: i for i, w in enumerate(_UNITS_TEXT.split())}
_TEENS = {w: i + 10 for i, w in enumerate(_TEENS_TEXT.split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate(_TENS_TEXT.split())}
# Capitalised words that name no one: sentence starts, weekdays and months (dates are compared apart), titles.
_NOT_NAMES_TEXT = """a an the in on at of for and but or nor so yet he she it they we i you his her its their our your this that
    these those there here when where what which who whom whose why how after before as by with from to into over
    under about against between said says say mr mrs ms dr also however meanwhile according if while although
    though because since until unless once not no yes all some many most more one two three four five six seven
    eight nine ten new other another such each every both either neither than then thus is are was were be been
    being has have had do does did will would shall should can could might must today yesterday tomorrow
    president minister government officials official monday tuesday wednesday thursday friday saturday sunday
    january february march april may june july august september october november december jan feb mar apr jun
    jul aug sep sept oct nov dec"""
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())
_PROGRESS_EVERY = 10_000  # pairs between two progress updates
_MIN_SENTENCE_WORDS = 4  # shorter pieces ("He said.") carry no fact of their own to match
_SHINGLE = 5  # characters: long enough to be specific, short enough that a typo spoils only five of them
_BASE = np.uint64(1_000_003)


def names(text: str) -> frozenset[str]:
    """Capitalised words that may name someone or somewhere, lower-cased (sentence starts and dates left out)."""
    found = (m.group(0).strip(".'-").lower() for m in _CAPITALISED.finditer(text))
    return frozenset(w for w in found if len(w) > 1 and w not in _NOT_NAMES)


def numbers(text: str) -> frozenset[str]:
    """Numbers written in digits ("1,100" as "1100") or in words up to ninety-nine ("twenty one" as "21")."""
    found = {n.replace(",", "").removesuffix(".0") for n in _NUMBER.findall(text)}
    words = _WORD.findall(text.lower())
    for i, word in enumerate(words):
        if word in _TENS:
            unit = _UNITS.get(words[i + 1], 0) if i + 1 < len(words) else 0
            found.add(str(_TENS[word] + unit))
        elif word in _TEENS:
            found.add(str(_TEENS[word]))
    return frozenset(found)


def shingles(text: str) -> np.ndarray:
    """Sorted distinct hashes of the text's character 5-grams (letters and digits, lower-cased, single spaces)."""
    data = np.frombuffer(" ".join(_WORD.findall(text.lower())).encode(), dtype=np.uint8).astype(np.uint64)
    if data.shape[0] < _SHINGLE:
        return np.unique(data.sum(keepdims=True))
    windows = np.lib.stride_tricks.sliding_window_view(data, _SHINGLE)
    powers = _BASE ** np.arange(
        _SHINGLE, dtype=np.uint64
    )  # wraps modulo 2^64: a fine hash, the same anywhere
    return np.unique(windows @ powers)


@dataclass(frozen=True)
class Signature:
    """What a paragraph says that evidence compares, computed once per paragraph."""

    names: frozenset[str]
    numbers: frozenset[str]
    weekdays: frozenset[str]
    words: frozenset[str]
    shingles: np.ndarray
    length: int

    @classmethod
    def of(cls, text: str) -> Signature:
        lower = text.lower()
        return cls(
            names(text),
            numbers(text),
            frozenset(d for d in _WEEKDAYS if d in lower),
            frozenset(_WORD.findall(lower)),
            shingles(text),
            len(text),
        )


class ArticleContext:
    """The names and word weights of every article of the run, and IDF weights over them.

    IDF comes from the run's own articles: a name every article mentions (the day's big story) says little
    about whether two of them report the same event.
    """

    def __init__(self, article_texts: Sequence[Sequence[str]]) -> None:
        self.names = [frozenset().union(*(names(t) for t in texts)) for texts in article_texts]
        counts = [Counter(w for t in texts for w in _WORD.findall(t.lower())) for texts in article_texts]
        n = len(article_texts)
        name_df = Counter(w for s in self.names for w in s)
        word_df = Counter(w for c in counts for w in c)
        self._name_idf = {w: math.log((n + 1) / (df + 1)) + 1 for w, df in name_df.items()}
        self._unseen_idf = math.log(n + 1) + 1
        self._tfidf = []
        for c in counts:
            weights = {
                w: (1 + math.log(k)) * (math.log((n + 1) / (word_df[w] + 1)) + 1) for w, k in c.items()
            }
            norm = math.sqrt(sum(x * x for x in weights.values())) or 1.0
            self._tfidf.append({w: x / norm for w, x in weights.items()})
        self._pairs: dict[tuple[int, int], tuple[float, float]] = {}

    def weight(self, names_: frozenset[str]) -> float:
        """Summed IDF of ``names_``."""
        return sum(self._name_idf.get(w, self._unseen_idf) for w in names_)

    def similarity(self, x: int, y: int) -> tuple[float, float]:
        """(IDF-weighted Jaccard of the names, TF-IDF cosine of the words) of articles ``x`` and ``y``."""
        key = (x, y) if x < y else (y, x)
        if key not in self._pairs:
            a, b = self.names[x], self.names[y]
            union = self.weight(a | b)
            ta, tb = self._tfidf[x], self._tfidf[y]
            if len(ta) > len(tb):
                ta, tb = tb, ta
            cosine = sum(v * tb.get(w, 0.0) for w, v in ta.items())
            self._pairs[key] = (self.weight(a & b) / union if union else 0.0, cosine)
        return self._pairs[key]


def sentences(text: str) -> list[str]:
    """The sentences of a paragraph that can carry a fact of their own (4 words or more), or the paragraph."""
    return [s for s in split_sentences(text) if count_words(s) >= _MIN_SENTENCE_WORDS] or [text]


def sentence_cosine(
    a: np.ndarray,
    b: np.ndarray,
    texts: Sequence[str],
    vectors: np.ndarray,
    embed: Callable[[list[str]], np.ndarray],
) -> np.ndarray:
    """The best cosine between a sentence of paragraph ``a[i]`` and a sentence of ``b[i]`` for each pair.

    A paragraph of one sentence is its own vector (``vectors``, indexed like ``texts``); the sentences of the
    others are embedded with ``embed`` (texts to unit vectors), each distinct sentence once.
    """
    used = np.unique(np.concatenate([a, b])).tolist()
    parts = {i: sentences(texts[i]) for i in used}
    several = [i for i in used if len(parts[i]) > 1]
    distinct = list(dict.fromkeys(s for i in several for s in parts[i]))
    embedded = embed(distinct)
    row = {s: k for k, s in enumerate(distinct)}
    of = {i: vectors[i : i + 1] for i in used}
    of.update({i: embedded[[row[s] for s in parts[i]]] for i in several})
    return np.array(
        [float((of[i] @ of[j].T).max()) for i, j in zip(a.tolist(), b.tolist(), strict=True)],
        dtype=np.float64,
    )


def pair_features(
    a: np.ndarray,
    b: np.ndarray,
    cosine: np.ndarray,
    best_sentence: np.ndarray,
    signatures: Sequence[Signature],
    article_of: Sequence[int],
    context: ArticleContext,
) -> np.ndarray:
    """The FEATURES of each pair (``a[i]``, ``b[i]``) of paragraphs: (len(a), len(FEATURES)) float64.

    ``best_sentence`` is each pair's sentence_cosine, or its cosine where that was not computed (a lower
    bound). ``signatures`` and ``article_of`` are indexed by paragraph; ``article_of`` numbers the articles
    as ``context`` does.
    """
    out = np.zeros((len(a), len(FEATURES)), dtype=np.float64)
    rows = zip(a.tolist(), b.tolist(), cosine.tolist(), best_sentence.tolist(), strict=True)
    with Progress(len(a), "match", "pair") as progress:
        for k, (i, j, cos, best) in enumerate(rows):
            out[k] = _features(signatures[i], signatures[j], article_of[i], article_of[j], cos, best, context)
            if k % _PROGRESS_EVERY == _PROGRESS_EVERY - 1:
                progress.update(_PROGRESS_EVERY)
        progress.update(len(a) % _PROGRESS_EVERY)
    return out


def _features(
    x: Signature, y: Signature, ax: int, ay: int, cos: float, best: float, context: ArticleContext
) -> tuple[float, ...]:
    """The FEATURES of one pair of paragraphs (signatures ``x`` and ``y`` of articles ``ax`` and ``ay``)."""
    same_article = ax == ay
    art_names, art_words = (1.0, 1.0) if same_article else context.similarity(ax, ay)
    conflict = min(context.weight(x.names - context.names[ay]), context.weight(y.names - context.names[ax]))
    shared = np.intersect1d(x.shingles, y.shingles, assume_unique=True).shape[0]
    return (
        cos,
        max(cos, best),
        art_names,
        art_words,
        context.weight(x.names & y.names),
        conflict,
        len(x.numbers & y.numbers),
        float(bool(x.numbers - y.numbers) and bool(y.numbers - x.numbers)),
        float(bool(x.weekdays) and bool(y.weekdays) and not x.weekdays & y.weekdays),
        shared / max(1, min(x.shingles.shape[0], y.shingles.shape[0])),
        len(x.words & y.words) / max(1, len(x.words | y.words)),
        min(x.length, y.length) / max(1, x.length, y.length),
    )
