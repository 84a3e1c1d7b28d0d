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

Everything is deterministic given the seed. No network, no model.

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
import html
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

from benchmarks.corpora import word_ngrams, write_jsonl
from jobs.text import count_words, normalize, split_sentences

WIRE = "reuters-wire"
OUTLET_NAMES = (
    "daily-courier",
    "metro-herald",
    "valley-tribune",
    "harbor-times",
    "capital-ledger",
    "northern-post",
    "coastal-chronicle",
    "midland-observer",
    "river-city-journal",
    "summit-dispatch",
    "prairie-sentinel",
    "bay-examiner",
)

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

MIN_PROSE_WORDS = 12
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
P_PARAPHRASE = 0.35  # per paragraph; then each sentence with P_PARAPHRASE_SENTENCE
P_PARAPHRASE_SENTENCE = 0.7
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

_REPORTER_FIRST = ("Jane", "Michael", "Priya", "Carlos", "Emma", "David", "Aiko", "Samuel", "Fatima", "Laura")
_REPORTER_LAST = ("Smith", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Brennan", "Haddad", "Reyes", "Walsh")
# (template, placed after the content): house byline forms.
_BYLINES = (
    ("By {name}, Staff Writer", False),
    ("By {name}", False),
    ("{name} | {outlet}", False),
    ("BY {upper_name}, {outlet} Correspondent", False),
    ("Reporting by {name}; editing by {editor}", True),
)
# "" drops the wire's dateline altogether.
_DATELINES = ("{upper} (Reuters) - ", "{place}, {date} (Reuters) - ", "{place} \u2014 ", "")
_FOOTERS = (
    "Copyright 1987 {outlet}. All rights reserved.",
    "\u00a9 1987 {outlet}",
    "All material copyright {outlet}, 1987. Reproduction prohibited.",
    "Copyright (c) 1987 {outlet}. Distributed under licence.",
)
_SUBSCRIBE = (
    "Subscribe to our newsletter for the day's business news.",
    "Subscribe to our newsletter for markets coverage every morning.",
    "{outlet} newsletters: subscribe for more stories like this.",
)

# Reuters house abbreviations, spelled out by lead rewrites and paraphrases.
_ABBREVIATIONS = {
    "mln": "million",
    "bln": "billion",
    "dlrs": "dollars",
    "dlr": "dollar",
    "pct": "percent",
    "cts": "cents",
    "ct": "cent",
    "shr": "share",
    "shrs": "shares",
    "qtr": "quarter",
    "mths": "months",
    "revs": "revenues",
    "avg": "average",
    "stg": "sterling",
}
_SCALES = {"mln": "million", "bln": "billion", "million": "million", "billion": "billion"}
# Word-level synonyms of common newswire verbs and nouns.
_SYNONYMS = {
    "said": ("stated", "told reporters"),
    "says": ("states",),
    "rose": ("increased", "climbed"),
    "fell": ("declined", "dropped"),
    "rise": ("increase",),
    "fall": ("decline",),
    "rising": ("climbing",),
    "falling": ("declining",),
    "company": ("firm",),
    "companies": ("firms",),
    "shares": ("stock",),
    "expects": ("anticipates",),
    "expected": ("anticipated",),
    "agreement": ("deal", "accord"),
    "talks": ("negotiations",),
    "spokesman": ("representative",),
    "officials": ("authorities",),
    "earlier": ("previously",),
    "buy": ("acquire",),
    "statement": ("release",),
}
_OCR_CONFUSIONS = (("rn", "m"), ("m", "rn"), ("l", "1"), ("1", "l"), ("0", "O"), ("O", "0"))

# Parsing Reuters-21578 (SGML: unescaped "&" and "<" occur in text, so no XML parser).
_DOCUMENT = re.compile(r'<REUTERS\b[^>]*\bNEWID="(\d+)"[^>]*>(.*?)</REUTERS>', re.DOTALL)
# "3-MAR-1987  09:15:05.40"; one stamp has a stray digit in its hour ("605:12:19"), which is skipped.
_DATE = re.compile(r"(\d{1,2}-[A-Z]{3}-\d{4})\s+\d*?(\d{1,2}:\d{2}:\d{2})")
_TOPIC = re.compile(r"<D>(.*?)</D>")
_NEW_PARAGRAPH = re.compile(r"\n {3,}")
# Only these entities: html.unescape alone would also turn "&not" or "&para" inside names into symbols.
_ENTITY = re.compile(r"&(?:#\d+|lt|gt|amp|quot);")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DATELINE_PARTS = re.compile(
    r"^(?P<place>.+?),?\s+(?P<date>[A-Za-z]{3,9}\.?\s+\d{1,2}|\d{1,2}\s+[A-Za-z]{3,9})\s*-$"
)

# Telling prose from tables and results lines ("Shr 12 cts vs 10 cts").
_FUNCTION_WORD = re.compile(
    r"\b(?:a|an|the|of|to|in|on|at|for|from|by|with|and|or|but|that|which|who|is|are|was|were|be|been"
    r"|has|have|had|will|would|could|should|said|says|say|it|its|their|they|he|she|this|as|than|not|also)\b"
)
_FIGURE = re.compile(r"(?<!\S)[^\s\d]*\d")  # a word holding a digit
# Reuters abbreviations of results tables.
_FIGURE_WORD = re.compile(
    r"\b(?:vs|shr|shrs|cts|ct|mln|bln|dlrs|dlr|pct|qtr|qtly|mths|avg|oper|revs|net|nil|stg)\b"
)

# Sentences: a boundary is . ! or ? (plus closing quotes) before a capital, unless it ends an initial
# ("U.S.", "J.") or a common abbreviation.
_SAID_THAT = re.compile(r'^(?P<who>[A-Z][^,"]{1,60}?) said (?:that )?(?P<what>[^"]{20,})\.$')
_THAT_SAID = re.compile(r'^(?P<what>[^"]{20,}), (?P<who>[^,"]{2,60}) said\.$')
_INTRO = re.compile(
    r'^(?P<intro>(?:In|On|At|After|Before|During|Since|Under|Despite|Following) [^,"]{2,50}), (?P<rest>[^"]{20,})\.$'
)
# Sentence-initial words that are lower-cased when a clause moves behind an attribution.
_LOWERABLE = re.compile(
    r"(?:The|A|An|It|Its|This|That|These|Those|There|He|She|They|Some|Most|Many|Next|Last|Both|Such|Any"
    r"|All|No|One|Two|Three|Analysts|Officials|Traders|Dealers|Sales|Prices|Shares|Exports|Imports"
    r"|Earnings|Profits|Production|Output|Demand|Trade|Oil|World|Total|Net)(?= )"
)
_MONEY = re.compile(r"\b(\d[\d,]*(?:\.\d+)?)(?: (mln|bln|million|billion))? dlrs\b")
_PERCENT = re.compile(r"(?<=\d) pct\b")
_ABBREVIATION = re.compile(r"\b(?:" + "|".join(_ABBREVIATIONS) + r")\b", re.IGNORECASE)
_SYNONYM = re.compile(r"\b(?:" + "|".join(_SYNONYMS) + r")\b", re.IGNORECASE)
_COUNTED = re.compile(r"(?:\d|mln|bln|million|billion|thousand)\s$")  # "6.8 mln shares" stays shares
_THOUSANDS = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")


@dataclass(frozen=True, slots=True)
class Story:
    """One Reuters-21578 document with a body; paragraphs are unwrapped, one line each."""

    story_id: str  # "reuters-<NEWID>"
    date: dt.datetime  # UTC; the collection does not say which time zone its stamps are in
    title: str
    topics: tuple[str, ...]
    paragraphs: list[str]
    dateline: str  # "LONDON, March 3 -" as on the wire, "" when the story has none


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


def load_stories(folder: Path) -> list[Story]:
    """All documents with a body from the 22 ``reut2-*.sgm`` files, in file order."""
    files = sorted(folder.glob("reut2-*.sgm"))
    if not files:
        raise FileNotFoundError(f"no reut2-*.sgm files in {folder}: point it at the Reuters-21578 folder")
    stories = []
    for file in files:
        # Latin-1 decodes every byte; reut2-017.sgm holds one that is not UTF-8.
        for match in _DOCUMENT.finditer(file.read_bytes().decode("latin-1")):
            newid, document = match.groups()
            body = _element(document, "BODY")
            paragraphs = _body_paragraphs(body) if body else []
            if not paragraphs:
                continue
            stamp = _DATE.search(_element(document, "DATE") or "")
            if stamp is None:
                raise ValueError(f"{file}: document NEWID={newid} has no readable <DATE>")
            date = dt.datetime.strptime(" ".join(stamp.groups()), "%d-%b-%Y %H:%M:%S")
            stories.append(
                Story(
                    story_id=f"reuters-{newid}",
                    date=date.replace(tzinfo=dt.UTC),
                    title=_clean(_element(document, "TITLE") or ""),
                    topics=tuple(_TOPIC.findall(_element(document, "TOPICS") or "")),
                    paragraphs=paragraphs,
                    dateline=_clean(_element(document, "DATELINE") or ""),
                )
            )
    return stories


def _element(document: str, tag: str) -> str | None:
    match = re.search(f"<{tag}>(.*?)</{tag}>", document, re.DOTALL)
    return match.group(1) if match else None


def _clean(text: str) -> str:
    """Entities decoded, control characters gone, whitespace collapsed: one line."""
    text = _ENTITY.sub(lambda m: html.unescape(m.group()), text)
    return normalize(_CONTROL.sub(" ", text))


def _body_paragraphs(body: str) -> list[str]:
    """Split where a line starts with 3+ spaces, after dropping the " Reuter" sign-off and ``&#3;``."""
    body = _ENTITY.sub(lambda m: html.unescape(m.group()), body).rstrip()
    while body.lower().endswith("reuter"):  # a few stories are signed off twice
        body = body[: -len("reuter")].rstrip()
    return [text for text in map(_clean, _NEW_PARAGRAPH.split(body)) if text]


def is_prose(paragraph: str) -> bool:
    """A sentence-like paragraph of 12+ words: not a table row, a results line or a "NOTE:" line.

    Mostly figures and Reuters abbreviations, mostly capitals or hardly any function words means a table.
    """
    words = paragraph.split()
    if len(words) < MIN_PROSE_WORDS or paragraph[-1] not in ".!?\"')":
        return False
    lower = paragraph.lower()
    figures = len(_FIGURE.findall(paragraph)) + len(_FIGURE_WORD.findall(lower))
    capitals = sum(1 for word in words if word.isupper() and len(word) > 1)
    function = len(_FUNCTION_WORD.findall(lower))
    n = len(words)
    return not lower.startswith("note") and figures <= 0.4 * n and capitals < 0.3 * n and function >= 0.12 * n


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
    reporters = tuple(f"{rng.choice(_REPORTER_FIRST)} {rng.choice(_REPORTER_LAST)}" for _ in range(3))
    scanned = rng.random() < P_SCANNED
    return Outlet(
        name=name,
        display="The " + name.replace("-", " ").title(),
        coverage=rng.uniform(0.5, 2.0),
        intensity=rng.uniform(0.3, 1.5),
        typo_rate=rng.uniform(*SCANNED_TYPO_RATE) if scanned else rng.uniform(0.005, 0.02),
        reporters=reporters,
        byline=rng.choice(_BYLINES),
        dateline=rng.choice(_DATELINES),
        footer=rng.choice(_FOOTERS),
        p_footer=rng.choice((0.0, 0.9, 1.0)),
        p_related=rng.choice((0.0, 0.3, 0.6)),
        subscribe=rng.choice(_SUBSCRIBE),
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
            text = _record(text, _rewrite_lead(text, rng), LEAD_REWRITE, edits)
        if happens(P_PARAPHRASE):
            text = _record(text, _paraphrase(text, rng), PARAPHRASE, edits)
        sentences = split_sentences(text)
        if len(sentences) > 1 and happens(P_TRIM_SENTENCE):
            text = _record(text, _drop_sentence(sentences, rng), TRIM_SENTENCE, edits)
        sentences = split_sentences(text)
        if len(sentences) > 1 and happens(P_REORDER):
            i, j = rng.sample(range(len(sentences)), 2)
            sentences[i], sentences[j] = sentences[j], sentences[i]
            text = _record(text, " ".join(sentences), REORDER, edits)
        if outlet.spells_out:
            text = _record(text, _expand_abbreviations(text, rng), HOUSE_STYLE, edits)
        if order == 0 and outlet.dateline:
            text = _record(text, _dateline(outlet.dateline, story.dateline) + text, DATELINE, edits)
        if outlet.scanned or happens(P_TYPOS):
            text = _record(text, _typos(text, outlet.typo_rate, rng), TYPOS, edits)
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


def _rewrite_lead(paragraph: str, rng: random.Random) -> str:
    """The first sentence with its attribution or opening clause moved and abbreviations spelled out."""
    first, *rest = split_sentences(paragraph)
    rewrites = []
    if (match := _SAID_THAT.match(first)) and " said" not in match["what"]:
        who, what = match["who"], match["what"]
        # "X said it filed ..." -> "X filed ..., it said"; otherwise "What ..., X said".
        rewrites.append(
            f"{who} {what[3:]}, it said." if what.startswith("it ") else f"{_cap(what)}, {_uncap(who)} said."
        )
    if match := _THAT_SAID.match(first):
        rewrites.append(f"{_cap(match['who'])} said {_uncap(match['what'])}.")
    if match := _INTRO.match(first):
        rewrites.append(f"{_cap(match['rest'])} {match['intro'][0].lower()}{match['intro'][1:]}.")
    if rewrites:
        first = rng.choice(rewrites)
    return " ".join([_expand_abbreviations(first, rng), *rest])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _uncap(text: str) -> str:
    """Lower-case the first letter when the first word is a common one; any other word may be a name."""
    return text[:1].lower() + text[1:] if _LOWERABLE.match(text) else text


def _match_case(original: str, replacement: str) -> str:
    return _cap(replacement) if original[:1].isupper() else replacement


def _expand_abbreviations(text: str, rng: random.Random) -> str:
    """Reuters abbreviations spelled out: "1.5 mln dlrs" as "$1.5 million" or "1.5 million dollars"."""

    def money(match: re.Match[str]) -> str:
        words = [match[1], _SCALES[match[2]]] if match[2] else [match[1]]
        return "$" + " ".join(words) if rng.random() < 0.5 else " ".join([*words, "dollars"])

    text = _MONEY.sub(money, text)
    text = _PERCENT.sub(lambda m: rng.choice(("%", " percent")), text)
    return _ABBREVIATION.sub(lambda m: _match_case(m[0], _ABBREVIATIONS[m[0].lower()]), text)


def _paraphrase(paragraph: str, rng: random.Random) -> str:
    """Some sentences rewritten by rule: abbreviations, synonyms, "1,500" as "1500"."""

    def synonym(match: re.Match[str]) -> str:
        word = match[0]
        if word.lower() == "shares" and _COUNTED.search(
            match.string[max(0, match.start() - 9) : match.start()]
        ):
            return word
        return _match_case(word, rng.choice(_SYNONYMS[word.lower()]))

    sentences = split_sentences(paragraph)
    for i, sentence in enumerate(sentences):
        if rng.random() < P_PARAPHRASE_SENTENCE:
            sentence = _SYNONYM.sub(synonym, _expand_abbreviations(sentence, rng))
            if rng.random() < 0.5:
                sentence = _THOUSANDS.sub(lambda m: m[0].replace(",", ""), sentence)
            sentences[i] = sentence
    return " ".join(sentences)


def _typos(text: str, rate: float, rng: random.Random) -> str:
    """Swapped and dropped letters and OCR confusions (rn/m, l/1, 0/O) at ``rate`` per character."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if not char.isalnum() or rng.random() >= rate:
            out.append(char)
            i += 1
            continue
        confusion = next(((a, b) for a, b in _OCR_CONFUSIONS if text.startswith(a, i)), None)
        inside_word = 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
        kind = rng.choice(("swap", "drop", "ocr") if confusion else ("swap", "drop"))
        if kind == "ocr" and confusion:
            out.append(confusion[1])
            i += len(confusion[0])
        elif kind == "swap" and inside_word:
            out.append(text[i + 1] + char)
            i += 2
        elif kind == "drop" and inside_word:  # inside a word, so no double spaces and no empty edges
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


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
