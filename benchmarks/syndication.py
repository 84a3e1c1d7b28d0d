"""A syndication benchmark built from real wire text: outlets republish Reuters stories with the edits real
outlets make, and the ground truth says which paragraphs come from the same wire paragraph.

The wire ("reuters-wire") publishes each picked story as it is; fictional outlets, each with a house style,
republish some of the stories with rewritten leads, trimmed endings and sentences, their own datelines,
bylines and boilerplate, reordered sentences, typos and rule-based paraphrases. Most outlets also spell
out the wire's abbreviations ("mln dlrs") in every paragraph, and a quarter reach the corpus as scanned
print with OCR noise in every paragraph. Paragraph boundaries are
never moved, so the labels partition the content paragraphs: every copy of a wire paragraph carries that
paragraph's id ``"<story_id>:<index>"``, and added text (bylines, boilerplate) carries None. Stories are
picked in groups that share a Reuters topic and are close in date, so topic alone does not tell copies
apart. The output scores a clustering the way NEWS-COPY does (adjusted Rand index and pairwise
precision, recall and F1 over paragraph pairs).

Everything is deterministic given the seed. No network, no model. The Reuters stories come from
benchmarks/corpora.py, the outlets' word lists from benchmarks/wordlists.py and their rewrites of a wire
paragraph from benchmarks/rewrites.py.

References:
- E. Silcock, L. D'Amico-Wong, J. Yang, M. Dell. *Noise-Robust De-Duplication at Scale* (NEWS-COPY).
  ICLR 2023.
- Reuters-21578, Distribution 1.0 (D. D. Lewis, 1997). The text is Reuters Ltd's, free for research use
  only: read it from its own folder, never copy it into this repository.

Usage: ``python -m benchmarks.syndication --data ../shared/data/reuters21578 --out DIR``
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import re
import string
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.corpora import Story, is_prose, load_stories, word_ngrams, write_jsonl
from benchmarks.rewrites import expand_abbreviations, paraphrase, rewrite_lead, typos
from benchmarks.wordlists import (
    BYLINES,
    DATELINES,
    FOOTERS,
    OUTLET_NAMES,
    REPORTER_FIRST,
    REPORTER_LAST,
    SUBSCRIBE,
)
from jobs.text import count_words, split_sentences

WIRE = "reuters-wire"

# Edits to a wire paragraph, as recorded per paragraph (only when the edit changed the text).
DATELINE = "dateline"
LEAD_REWRITE = "lead_rewrite"
PARAPHRASE = "paraphrase"
TRIM_SENTENCE = "trim_sentence"
REORDER = "reorder"
TYPOS = "typos"
HOUSE_STYLE = "house_style"
EDIT_TYPES = (DATELINE, LEAD_REWRITE, PARAPHRASE, TRIM_SENTENCE, REORDER, TYPOS, HOUSE_STYLE)
# What an added paragraph (label None) is.
BYLINE = "byline"
BOILERPLATE = "boilerplate"

MIN_PROSE_PARAGRAPHS = 3
MIN_KEPT_WORDS = 8  # a trimmed paragraph still holds this many words of its source
MIN_KEPT_PARAGRAPHS = 2  # trimming the end never leaves fewer content paragraphs
MIN_TOPIC_STORIES = 40  # topics with fewer eligible stories are too thin to form groups
GROUP_SIZE = (3, 6)  # stories per topic group
GROUP_SCAN = 30  # nearest-in-date stories of the topic a group is filled from
# Chance that a story is republished by 0, 1, 2, 3 or 4 outlets besides the wire.
OUTLET_COPIES = (0.12, 0.28, 0.28, 0.2, 0.12)

# Base probabilities, scaled by each outlet's editing intensity.
P_LEAD_REWRITE = 0.6  # per article
P_TRIM_END = 0.4  # per article
P_PARAPHRASE = 0.35  # per paragraph; then each sentence with rewrites.P_PARAPHRASE_SENTENCE
P_TRIM_SENTENCE = 0.2  # per paragraph with two or more sentences
P_REORDER = 0.12  # per paragraph with two or more sentences
P_TYPOS = 0.25  # per paragraph
P_BYLINE = 0.8  # per article; the house boilerplate probabilities are fixed per outlet
# Per outlet: newspapers print "15 million dollars", not the wire's "15 mln dlrs", so most outlets spell
# out wire abbreviations in every paragraph they run; and some outlets reach the corpus as scanned print,
# with OCR noise in every paragraph (as in NEWS-COPY's newspaper scans).
P_SPELLS_OUT = 0.75
P_SCANNED = 0.25
SCANNED_TYPO_RATE = (0.01, 0.03)

# A wire story's dateline, "LONDON, March 3 -": its place and date.
_DATELINE_PARTS = re.compile(
    r"^(?P<place>.+?),?\s+(?P<date>[A-Za-z]{3,9}\.?\s+\d{1,2}|\d{1,2}\s+[A-Za-z]{3,9})\s*-$"
)


@dataclass(frozen=True, slots=True)
class Outlet:
    """A fictional outlet's house style."""

    name: str
    display: str  # "The Daily Courier"
    coverage: float  # relative chance of republishing a given story
    intensity: float  # scales every edit probability: light (0.3) to heavy (1.5) editing
    typo_rate: float  # per-character noise in a paragraph that gets typos (scanned print, OCR)
    reporters: tuple[str, ...]
    byline: tuple[str, bool]  # (template, placed after the content)
    dateline: str
    footer: str
    p_footer: float
    p_related: float
    subscribe: str
    p_subscribe: float
    spells_out: bool  # writes out wire abbreviations (mln, dlrs, pct) in every paragraph
    scanned: bool  # every paragraph carries OCR noise at typo_rate


@dataclass
class Corpus:
    """Articles plus ground truth, all keyed by article id, one entry per paragraph in reading order."""

    articles: list[dict[str, str]]  # article_id, outlet, title, published_at (ISO), text
    labels: dict[str, list[str | None]]  # "<story_id>:<index>" of the source paragraph; None for added text
    edits: dict[str, list[tuple[str, ...]]]  # EDIT_TYPES applied to a content paragraph; BYLINE/BOILERPLATE
    trimmed: dict[str, list[str]]  # source paragraph ids the outlet cut from the end of the story


@dataclass
class _Draft:
    paragraphs: list[str] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    edits: list[tuple[str, ...]] = field(default_factory=list)

    def add(self, text: str, label: str | None, edits: Sequence[str]) -> None:
        self.paragraphs.append(text)
        self.labels.append(label)
        self.edits.append(tuple(edits))


def generate(stories: Sequence[Story], *, n_stories: int = 400, n_outlets: int = 8, seed: int = 0) -> Corpus:
    """The wire and ``n_outlets`` outlets republishing ``n_stories`` stories picked in topic groups."""
    if not 0 <= n_outlets <= len(OUTLET_NAMES):
        raise ValueError(f"n_outlets must be between 0 and {len(OUTLET_NAMES)}, not {n_outlets}")
    picked = _pick_stories(stories, n_stories, random.Random(f"{seed}/pick"))
    outlets = [
        _house_style(name, random.Random(f"{seed}/outlet/{name}")) for name in OUTLET_NAMES[:n_outlets]
    ]
    corpus = Corpus(articles=[], labels={}, edits={}, trimmed={})
    for story, prose in picked:
        wire = _Draft()
        for order, index in enumerate(prose):
            text = story.paragraphs[index]
            wire.add(f"{story.dateline} {text}" if order == 0 else text, f"{story.story_id}:{index}", ())
        _publish(corpus, WIRE, story, story.title, story.date, wire, [])
        # Random streams keyed by story (and outlet): one article's draws never shift another's.
        rng = random.Random(f"{seed}/copies/{story.story_id}")
        n_copies = min(n_outlets, rng.choices(range(len(OUTLET_COPIES)), OUTLET_COPIES)[0])
        # Weighted sampling without replacement (Efraimidis-Spirakis): busier outlets take more stories.
        chosen = sorted(outlets, key=lambda o: rng.random() ** (1 / o.coverage), reverse=True)[:n_copies]
        related = [s.title for s, _ in picked if s is not story and set(s.topics) & set(story.topics)]
        for outlet in sorted(chosen, key=lambda o: o.name):
            article_rng = random.Random(f"{seed}/{outlet.name}/{story.story_id}")
            draft, cut = _republish(story, prose, outlet, related, article_rng)
            published = story.date + dt.timedelta(minutes=article_rng.randint(20, 36 * 60))
            _publish(corpus, outlet.name, story, _headline(story.title), published, draft, cut)
    corpus.articles.sort(key=lambda a: (a["published_at"], a["article_id"]))
    return corpus


def _publish(
    corpus: Corpus,
    outlet: str,
    story: Story,
    title: str,
    published: dt.datetime,
    draft: _Draft,
    cut: list[str],
) -> None:
    article_id = f"{outlet}/{story.story_id}"
    corpus.articles.append(
        {
            "article_id": article_id,
            "outlet": outlet,
            "title": title,
            "published_at": published.isoformat(timespec="seconds"),
            "text": "\n\n".join(draft.paragraphs),
        }
    )
    corpus.labels[article_id] = draft.labels
    corpus.edits[article_id] = draft.edits
    corpus.trimmed[article_id] = cut


def _pick_stories(stories: Sequence[Story], n: int, rng: random.Random) -> list[tuple[Story, list[int]]]:
    """``n`` stories in groups sharing a topic and close in date, none repeating another's paragraphs.

    Reuters-21578 holds repeats and updates of the same story; two of them in the benchmark would give
    near-identical text two different labels, so a story whose paragraphs overlap a picked one is skipped.
    Each story comes with the indices of its prose paragraphs, the only ones published.
    """
    prose_of: dict[str, list[int]] = {}
    by_topic: defaultdict[str, list[Story]] = defaultdict(list)
    for story in stories:
        if not story.topics or not _DATELINE_PARTS.match(story.dateline):
            continue
        prose = [i for i, text in enumerate(story.paragraphs) if is_prose(text)]
        if len(prose) >= MIN_PROSE_PARAGRAPHS:
            prose_of[story.story_id] = prose
            for topic in story.topics:
                by_topic[topic].append(story)
    topics = sorted(topic for topic, group in by_topic.items() if len(group) >= MIN_TOPIC_STORIES)
    # Big topics (acq, earn, crude) come up more often, as in a day's news, without crowding out the rest.
    weights = [math.sqrt(len(by_topic[topic])) for topic in topics]
    picked: dict[str, Story] = {}
    seen: set[str] = set()
    for _ in range(10 * n):  # bounded: a group can come up empty when its neighbours are all taken
        if len(picked) >= n or not topics:
            break
        topic = rng.choices(topics, weights)[0]
        anchor = rng.choice(by_topic[topic])
        nearest = sorted(by_topic[topic], key=lambda s: (abs(s.date - anchor.date), s.story_id))
        size = rng.randint(*GROUP_SIZE)
        added = 0
        for story in nearest[:GROUP_SCAN]:
            if added == size or len(picked) == n:
                break
            grams = [word_ngrams(story.paragraphs[i], 5) for i in prose_of[story.story_id]]
            if story.story_id in picked or _repeats(grams, seen):
                continue
            picked[story.story_id] = story
            seen.update(*grams)
            added += 1
    if len(picked) < n:
        raise ValueError(
            f"only {len(picked)} stories could be picked, fewer than the {n} asked for: ask for fewer (--stories)"
        )
    return [(s, prose_of[s.story_id]) for s in sorted(picked.values(), key=lambda s: (s.date, s.story_id))]


def _repeats(grams: list[set[str]], seen: set[str]) -> bool:
    """Whether a paragraph shares 30%+ of its word 5-grams with picked text or an earlier paragraph."""
    own: set[str] = set()
    for paragraph in grams:
        if len(paragraph - seen - own) <= 0.7 * len(paragraph):
            return True
        own |= paragraph
    return False


def _house_style(name: str, rng: random.Random) -> Outlet:
    reporters = tuple(f"{rng.choice(REPORTER_FIRST)} {rng.choice(REPORTER_LAST)}" for _ in range(3))
    scanned = rng.random() < P_SCANNED
    return Outlet(
        name=name,
        display="The " + name.replace("-", " ").title(),
        coverage=rng.uniform(0.5, 2.0),
        intensity=rng.uniform(0.3, 1.5),
        typo_rate=rng.uniform(*SCANNED_TYPO_RATE) if scanned else rng.uniform(0.005, 0.02),
        reporters=reporters,
        byline=rng.choice(BYLINES),
        dateline=rng.choice(DATELINES),
        footer=rng.choice(FOOTERS),
        p_footer=rng.choice((0.0, 0.9, 1.0)),
        p_related=rng.choice((0.0, 0.3, 0.6)),
        subscribe=rng.choice(SUBSCRIBE),
        p_subscribe=rng.choice((0.0, 0.4, 0.8)),
        spells_out=rng.random() < P_SPELLS_OUT,
        scanned=scanned,
    )


def _republish(
    story: Story, prose: list[int], outlet: Outlet, related: list[str], rng: random.Random
) -> tuple[_Draft, list[str]]:
    """One outlet's copy of the story, and the ids of the source paragraphs it cut from the end."""

    def happens(base: float) -> bool:
        return rng.random() < min(1.0, base * outlet.intensity)

    keep = prose
    if len(prose) > MIN_KEPT_PARAGRAPHS and happens(P_TRIM_END):
        keep = prose[: -rng.randint(1, min(3, len(prose) - MIN_KEPT_PARAGRAPHS))]
    cut = [f"{story.story_id}:{index}" for index in prose[len(keep) :]]
    template, at_end = outlet.byline
    reporter = rng.choice(outlet.reporters)
    byline = template.format(
        name=reporter, upper_name=reporter.upper(), outlet=outlet.display, editor=rng.choice(outlet.reporters)
    )
    with_byline = happens(P_BYLINE)
    related_at = rng.randint(1, len(keep) - 1) if related and rng.random() < outlet.p_related else None
    draft = _Draft()
    if with_byline and not at_end:
        draft.add(byline, None, (BYLINE,))
    for order, index in enumerate(keep):
        if order == related_at:
            draft.add(f"Related: {_headline(rng.choice(related))}", None, (BOILERPLATE,))
        text, edits = story.paragraphs[index], []
        if order == 0 and happens(P_LEAD_REWRITE):
            text = _record(text, rewrite_lead(text, rng), LEAD_REWRITE, edits)
        if happens(P_PARAPHRASE):
            text = _record(text, paraphrase(text, rng), PARAPHRASE, edits)
        sentences = split_sentences(text)
        if len(sentences) > 1 and happens(P_TRIM_SENTENCE):
            text = _record(text, _drop_sentence(sentences, rng), TRIM_SENTENCE, edits)
        sentences = split_sentences(text)
        if len(sentences) > 1 and happens(P_REORDER):
            i, j = rng.sample(range(len(sentences)), 2)
            sentences[i], sentences[j] = sentences[j], sentences[i]
            text = _record(text, " ".join(sentences), REORDER, edits)
        if outlet.spells_out:
            text = _record(text, expand_abbreviations(text, rng), HOUSE_STYLE, edits)
        if order == 0 and outlet.dateline:
            text = _record(text, _dateline(outlet.dateline, story.dateline) + text, DATELINE, edits)
        if outlet.scanned or happens(P_TYPOS):
            text = _record(text, typos(text, outlet.typo_rate, rng), TYPOS, edits)
        draft.add(text, f"{story.story_id}:{index}", edits)
    if with_byline and at_end:
        draft.add(byline, None, (BYLINE,))
    if rng.random() < outlet.p_subscribe:
        draft.add(outlet.subscribe.format(outlet=outlet.display), None, (BOILERPLATE,))
    if rng.random() < outlet.p_footer:
        draft.add(outlet.footer.format(outlet=outlet.display), None, (BOILERPLATE,))
    return draft, cut


def _record(old: str, new: str, edit: str, edits: list[str]) -> str:
    """``new``, noting the edit only if it changed the text: a rule that found nothing to do is no edit."""
    if new != old:
        edits.append(edit)
    return new


def _headline(title: str) -> str:
    """Wire capitals as an outlet's headline case."""
    return re.sub(r"'S\b", "'s", title.title())


def _dateline(template: str, wire_dateline: str) -> str:
    parts = _DATELINE_PARTS.match(wire_dateline)
    assert parts is not None, "stories are only picked when their dateline parses"
    place = string.capwords(parts["place"].lower())
    return template.format(upper=parts["place"].upper(), place=place, date=parts["date"].title())


def _drop_sentence(sentences: list[str], rng: random.Random) -> str:
    """The paragraph without one sentence, keeping MIN_KEPT_WORDS words; unchanged if none can go."""
    total = sum(count_words(s) for s in sentences)
    droppable = [i for i, s in enumerate(sentences) if total - count_words(s) >= MIN_KEPT_WORDS]
    drop = rng.choice(droppable) if droppable else None
    return " ".join(s for i, s in enumerate(sentences) if i != drop)


def write_corpus(corpus: Corpus, folder: Path) -> tuple[Path, Path]:
    """``articles.jsonl`` (the job's JSONL input) and ``labels.parquet`` (one row per paragraph)."""
    folder.mkdir(parents=True, exist_ok=True)
    articles_path, labels_path = folder / "articles.jsonl", folder / "labels.parquet"
    write_jsonl(corpus.articles, articles_path)
    rows = [
        (article["article_id"], position, label, list(edits))
        for article in corpus.articles
        for position, (label, edits) in enumerate(
            zip(corpus.labels[article["article_id"]], corpus.edits[article["article_id"]], strict=True)
        )
    ]
    ids, positions, labels, edits = zip(*rows, strict=True) if rows else ((), (), (), ())
    table = pa.table(
        {
            "article_id": pa.array(ids, pa.string()),
            "position": pa.array(positions, pa.int32()),
            "label": pa.array(labels, pa.string()),
            "edits": pa.array(edits, pa.list_(pa.string())),
        }
    )
    pq.write_table(table, labels_path)
    return articles_path, labels_path


def summarize(corpus: Corpus) -> str:
    """One line: sizes, clusters with two or more copies, and how often each edit hit an outlet copy."""
    outlet_articles = [a["article_id"] for a in corpus.articles if a["outlet"] != WIRE]
    copies = Counter(label for labels in corpus.labels.values() for label in labels if label is not None)
    n_paragraphs = sum(len(labels) for labels in corpus.labels.values())
    outlet_edits = [
        edits
        for article_id in outlet_articles
        for label, edits in zip(corpus.labels[article_id], corpus.edits[article_id], strict=True)
        if label is not None
    ]
    share = ", ".join(
        f"{edit} {sum(edit in edits for edits in outlet_edits) / max(1, len(outlet_edits)):.0%}"
        for edit in EDIT_TYPES
    )
    trimmed = sum(bool(corpus.trimmed[article_id]) for article_id in outlet_articles)
    return (
        f"{len(corpus.articles)} articles ({len(corpus.articles) - len(outlet_articles)} wire), "
        f"{n_paragraphs} paragraphs, {copies.total()} content, "
        f"{sum(n >= 2 for n in copies.values())} clusters with >=2 copies; "
        f"of {len(outlet_edits)} outlet copies: {share}; "
        f"end trimmed in {trimmed / max(1, len(outlet_articles)):.0%} of outlet articles"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.syndication",
        description="Write a syndication benchmark (articles.jsonl, labels.parquet) built from Reuters-21578.",
    )
    parser.add_argument("--data", type=Path, required=True, help="the Reuters-21578 folder (reut2-*.sgm)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the two files to")
    parser.add_argument("--stories", type=int, default=400, help="wire stories to pick (default 400)")
    parser.add_argument(
        "--outlets", type=int, default=8, help=f"outlets, at most {len(OUTLET_NAMES)} (default 8)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        corpus = generate(
            load_stories(args.data), n_stories=args.stories, n_outlets=args.outlets, seed=args.seed
        )
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))  # exits with 2, like the job's config and input problems
    write_corpus(corpus, args.out)
    print(f"{summarize(corpus)} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
