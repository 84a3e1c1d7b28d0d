"""Labeled corpora from ``../shared/data`` turned into the job's input (one JSONL record per article).

- MRPC (Dolan & Brockett, 2005): every sentence is a paragraph of its own article, its outlet the site
  that published it; the labels are the judged sentence pairs.
- BASIL (Fan et al., EMNLP 2019): 100 events, each reported by Fox News, the New York Times and HuffPost;
  the label of every article is its event.

Both are research/evaluation-only data: they are read in place and never copied into the repository.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_WORD = re.compile(r"\w+")

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
