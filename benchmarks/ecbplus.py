"""ECB+ (Cybulska and Vossen, LREC 2014; extends the EventCorefBank of Bejan and Harabagiu, ACL 2010) as the
job's input, and the score of a clustering on it.

Each topic holds articles from many outlets about one real event (``*ecb.xml``) and about a sister event of
the same kind (``*ecbplus.xml``: Tara Reid and Lindsay Lohan entering rehab, two earthquakes). Coders marked
the event mentions of selected sentences and linked the mentions of the same event instance across
documents. Every document is an article of its own outlet and every sentence a paragraph; the score reads
the annotated sentences only:

- **same-event recall**: of the pairs of annotated sentences in different documents that mention the same
  event instance, the share that end in one cluster;
- **sister-event share**: of the labeled pairs that end in one cluster (same event, or one sentence from each
  of the topic's two events), the share that are sister-event pairs;
- **other-fact share** (reported, no bar): of the same-topic pairs that end in one cluster, the share that
  mention no common event although both come from the same event's articles (another fact of the story).

Only the odd-numbered topics are provided (``../shared/data/ecbplus``, CC BY 3.0): they are read in place,
never copied into the repository.
"""

from __future__ import annotations

import csv
import itertools
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Document:
    """One ECB+ document: its topic, which of the topic's two events it reports, and its sentences."""

    name: str  # e.g. "1_10ecbplus"
    topic: int
    event: str  # "ecb" or "ecbplus": the topic's first or sister event
    sentences: list[str]
    annotated: frozenset[int]  # positions of the annotated sentences
    instances: dict[int, frozenset[str]]  # position -> ids of the event instances it mentions


def _detokenize(tokens: Sequence[str]) -> str:
    """Tokens back into news text: no space before punctuation or after opening brackets, straight quotes."""
    text = " ".join(tokens).replace("`` ", '"').replace(" ''", '"').replace("``", '"').replace("''", '"')
    text = re.sub(r" ([.,;:!?%)\]}])", r"\1", text)
    text = re.sub(r"([(\[{$]) ", r"\1", text)
    return re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", text)


def load(folder: Path) -> list[Document]:
    """Every document under ``folder/xml``, in topic and file order."""
    annotated: defaultdict[tuple[int, str], set[int]] = defaultdict(set)
    with (folder / "ECBplus_coreference_sentences.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            annotated[(int(row["Topic"]), row["File"])].add(int(row["Sentence Number"]))
    paths = sorted((folder / "xml").glob("*/*.xml"), key=lambda p: (int(p.parent.name), p.name))
    if not paths:
        raise FileNotFoundError(
            f"no ECB+ documents under {folder}/xml: pass --data with the folder holding ecbplus/"
        )
    documents = []
    for path in paths:
        root = ET.parse(path).getroot()
        tokens: defaultdict[int, list[str]] = defaultdict(list)
        sentence_of: dict[str, int] = {}
        for token in root.iter("token"):
            sentence = int(token.get("sentence", "0"))
            tokens[sentence].append(token.text or "")
            sentence_of[token.get("t_id", "")] = sentence
        # Event mentions: the ACTION_* and NEG_* markables, by the sentences their tokens are in.
        mention_sentences = {
            m.get("m_id"): {sentence_of[a.get("t_id", "")] for a in m.iter("token_anchor")}
            for m in root.iterfind("Markables/*")
            if m.tag.startswith(("ACTION", "NEG"))
        }
        instances: defaultdict[int, set[str]] = defaultdict(set)
        for relation in root.iterfind("Relations/CROSS_DOC_COREF"):
            for source in relation.iter("source"):
                for sentence in mention_sentences.get(source.get("m_id"), ()):
                    instances[sentence].add(relation.get("note", ""))
        numbers = sorted(tokens)
        position = {n: i for i, n in enumerate(numbers)}
        topic = int(path.parent.name)
        documents.append(
            Document(
                name=path.stem,
                topic=topic,
                event="ecbplus" if path.stem.endswith("ecbplus") else "ecb",
                sentences=[_detokenize(tokens[n]) for n in numbers],
                annotated=frozenset(position[n] for n in annotated[(topic, path.stem.split("_", 1)[1])]),
                instances={position[n]: frozenset(ids) for n, ids in instances.items()},
            )
        )
    return documents


def articles(documents: Sequence[Document]) -> list[dict]:
    """The documents in the job's JSONL shape: one sentence per line, each document its own outlet."""
    return [{"article_id": d.name, "outlet": d.name, "text": "\n".join(d.sentences)} for d in documents]


def labeled_pairs(documents: Sequence[Document]) -> list[tuple[tuple[str, int], tuple[str, int], str]]:
    """Pairs of annotated sentences in different documents of one topic, each ((doc, position) x2, label):
    "same" (a common event instance), "sister" (one from each of the topic's events, none in common) or
    "other" (the same event's articles, no common instance: another fact of the story)."""
    by_topic: defaultdict[int, list[tuple[Document, int]]] = defaultdict(list)
    for d in documents:
        by_topic[d.topic].extend((d, i) for i in sorted(d.annotated))
    out = []
    for items in by_topic.values():
        for (d, i), (e, j) in itertools.combinations(items, 2):
            if d.name == e.name:
                continue
            common = d.instances.get(i, frozenset()) & e.instances.get(j, frozenset())
            label = "same" if common else "sister" if d.event != e.event else "other"
            out.append(((d.name, i), (e.name, j), label))
    return out


def score(
    pairs: Sequence[tuple[tuple[str, int], tuple[str, int], str]],
    cluster_of: Mapping[tuple[str, int], str | None],
) -> dict[str, float]:
    """Same-event recall, sister-event share and other-fact share (module docstring) of ``cluster_of``:
    (document, sentence position) -> cluster id, None when unclustered."""
    total: defaultdict[str, int] = defaultdict(int)
    together: defaultdict[str, int] = defaultdict(int)
    for x, y, label in pairs:
        total[label] += 1
        cx = cluster_of.get(x)
        together[label] += cx is not None and cx == cluster_of.get(y)
    linked = together["same"] + together["sister"]
    return {
        "same_event_pairs": total["same"],
        "same_event_recall": together["same"] / max(1, total["same"]),
        "sister_event_share": together["sister"] / max(1, linked),
        "other_fact_share": together["other"] / max(1, together["same"] + together["other"]),
    }
