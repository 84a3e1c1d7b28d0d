"""Labeled corpora from ``../shared/data`` turned into the job's input (one JSONL record per article).

- MRPC (Dolan & Brockett, 2005): every sentence is a paragraph of its own article, its outlet the site
  that published it; the labels are the judged sentence pairs.
- BASIL (Fan et al., EMNLP 2019): 100 events, each reported by Fox News, the New York Times and HuffPost;
  the label of every article is its event.
- Reuters-21578 (Lewis, 1997): wire stories, with their dates, topics and datelines (the syndication
  benchmark republishes them; performance and scale benchmarks embed them).

All are research/evaluation-only data: they are read in place and never copied into the repository.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jobs.text import normalize

_WORD = re.compile(r"\w+")

# Parsing Reuters-21578 (SGML: unescaped "&" and "<" occur in text, so no XML parser).
_DOCUMENT = re.compile(r'<REUTERS\b[^>]*\bNEWID="(\d+)"[^>]*>(.*?)</REUTERS>', re.DOTALL)
# "3-MAR-1987  09:15:05.40"; one stamp has a stray digit in its hour ("605:12:19"), which is skipped.
_DATE = re.compile(r"(\d{1,2}-[A-Z]{3}-\d{4})\s+\d*?(\d{1,2}:\d{2}:\d{2})")
_TOPIC = re.compile(r"<D>(.*?)</D>")
_NEW_PARAGRAPH = re.compile(r"\n {3,}")
# Only these entities: html.unescape alone would also turn "&not" or "&para" inside names into symbols.
_ENTITY = re.compile(r"&(?:#\d+|lt|gt|amp|quot);")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

MIN_PROSE_WORDS = 12
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

# The labeled data: ../shared/data beside the checkout, unless NEWSDEDUP_DATA names another folder.
DATA = Path(os.environ.get("NEWSDEDUP_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


@dataclass(frozen=True)
class PairSet:
    """MRPC's judged pairs of one split: sentence ids and whether the judges called them equivalent."""

    a: list[str]
    b: list[str]
    label: list[bool]


@dataclass(frozen=True)
class LabeledCorpus:
    """Articles in the job's JSONL shape, plus each article's group label (BASIL: its event)."""

    articles: list[dict]
    group_of_article: dict[str, str]


def _tsv(path: Path) -> list[list[str]]:
    # The MRPC files start with a BOM and hold raw quotes: quoting must be off.
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[1:]


def mrpc_pairs(folder: Path, split: str) -> PairSet:
    """The judged pairs of ``split`` (``train`` or ``test``)."""
    rows = _tsv(folder / f"msr_paraphrase_{split}.txt")
    return PairSet([r[1] for r in rows], [r[2] for r in rows], [r[0] == "1" for r in rows])


def mrpc_texts(folder: Path) -> dict[str, str]:
    """Sentence id -> sentence, for every sentence of the corpus."""
    return {row[0]: row[1] for row in _tsv(folder / "msr_paraphrase_data.txt")}


def mrpc_articles(folder: Path, pairs: PairSet) -> list[dict]:
    """One article per sentence of ``pairs``; outlet = the publishing site's host (else agency, else unknown)."""
    wanted = set(pairs.a) | set(pairs.b)
    articles = []
    for sid, text, _author, url, agency, *_ in _tsv(folder / "msr_paraphrase_data.txt"):
        if sid not in wanted:
            continue
        host = url.removeprefix("www.") if url != "*" else ""
        outlet = host or (agency if agency != "*" else "") or "unknown"
        articles.append({"article_id": sid, "outlet": outlet, "text": text})
    missing = wanted - {a["article_id"] for a in articles}
    if missing:
        raise ValueError(
            f"{folder}: {len(missing)} pair sentence ids missing from msr_paraphrase_data.txt: the files are not "
            "the original MRPC distribution (see its SOURCE.md for the expected checksums)"
        )
    return articles


def word_ngrams(text: str, n: int) -> set[str]:
    """Lower-cased runs of ``n`` words (``\\w+``); a text shorter than ``n`` words is one run."""
    words = _WORD.findall(text.lower())
    return {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))}


def write_jsonl(articles: Sequence[dict], path: Path) -> Path:
    """``articles`` as the job's JSONL input, one record per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for article in articles:
            out.write(json.dumps(article, ensure_ascii=False) + "\n")
    return path


def basil_corpus(folder: Path) -> LabeledCorpus:
    """BASIL's 300 articles, paragraphs one per line, labeled by event (``triplet-uuid``)."""
    files = sorted((folder / "articles").glob("*/*.json"))
    if not files:
        raise FileNotFoundError(
            f"no BASIL articles under {folder}/articles: pass --data with the folder holding basil/"
        )
    articles, groups = [], {}
    for path in files:
        doc = json.loads(path.read_text(encoding="utf-8"))
        paragraphs = [" ".join(sentences).strip() for sentences in doc["body-paragraphs"]]
        # Four articles carry the uuid "empty": the file name (<triplet>_<n>) is the unique id.
        article_id = path.stem
        articles.append(
            {
                "article_id": article_id,
                "outlet": doc["source"].lower(),  # upstream mixes NYT/nyt in 4 triplets
                "title": doc.get("title"),
                "url": doc.get("url"),
                "published_at": doc.get("date"),
                "text": "\n".join(p for p in paragraphs if p),
            }
        )
        groups[article_id] = doc["triplet-uuid"]
    return LabeledCorpus(articles, groups)


@dataclass(frozen=True, slots=True)
class Story:
    """One Reuters-21578 document with a body; paragraphs are unwrapped, one line each."""

    story_id: str  # "reuters-<NEWID>"
    date: dt.datetime  # UTC; the collection does not say which time zone its stamps are in
    title: str
    topics: tuple[str, ...]
    paragraphs: list[str]
    dateline: str  # "LONDON, March 3 -" as on the wire, "" when the story has none


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
