"""Split articles into paragraphs, normalise them, and flag boilerplate and paragraphs too short to cluster."""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from embeddings.cache import text_key
from jobs.config import ParagraphsConfig
from jobs.parallel import MapData, in_process
from jobs.records import Article
from jobs.text import clean_markup, count_words, normalize, split_text, strip_wire_marks

# Why a paragraph is not clustered (None: it is).
EXCLUDED_SHORT = "short"
EXCLUDED_BOILERPLATE = "boilerplate"
BOILERPLATE_PATTERN = "pattern"
BOILERPLATE_REPEATED = "repeated_in_outlet"


@dataclass(slots=True)
class Paragraph:
    """One paragraph of one article. ``text`` is as written (markup decoded); ``norm_text``, what gets hashed,
    embedded and compared, is normalised and without the dateline, source or byline in front."""

    paragraph_id: str
    article_index: int
    position: int
    text: str
    norm_text: str
    text_hash: str
    n_words: int
    boilerplate_reason: str | None = None

    @property
    def is_boilerplate(self) -> bool:
        return self.boilerplate_reason is not None


def paragraph_id(article_id: str, position: int) -> str:
    """Stable id from the article id and the 0-based position.

    Zero-padded, so ids sort in reading order up to 10,000 paragraphs per article.
    """
    return f"{article_id}:{position:04d}"


def split_articles(
    articles: Sequence[Article], config: ParagraphsConfig, map_data: MapData = in_process
) -> list[Paragraph]:
    """All paragraphs of all articles in input order, with boilerplate flagged.

    ``map_data`` runs the splitting of the articles (an executor's data-parallel map); flagging text an
    outlet repeats needs all paragraphs, so it happens here.
    """
    paragraphs = map_data(functools.partial(_split, config=config), list(enumerate(articles)))
    _flag_repeats(paragraphs, articles, config.boilerplate_min_articles)
    return paragraphs


def _split(numbered: list[tuple[int, Article]], config: ParagraphsConfig) -> list[Paragraph]:
    """Paragraphs of (article index, article) pairs, pattern-flagged boilerplate marked."""
    patterns = [re.compile(p, re.IGNORECASE) for p in config.boilerplate_patterns]
    paragraphs: list[Paragraph] = []
    for index, article in numbered:
        for position, chunk in enumerate(split_text(clean_markup(article.text), config.split)):
            norm = strip_wire_marks(normalize(chunk))
            reason = BOILERPLATE_PATTERN if any(p.search(norm) for p in patterns) else None
            paragraphs.append(
                Paragraph(
                    paragraph_id=paragraph_id(article.article_id, position),
                    article_index=index,
                    position=position,
                    text=chunk,
                    norm_text=norm,
                    text_hash=text_key(norm),
                    n_words=count_words(norm),
                    boilerplate_reason=reason,
                )
            )
    return paragraphs


def _flag_repeats(paragraphs: list[Paragraph], articles: Sequence[Article], min_articles: int) -> None:
    """Flag text that one outlet repeats verbatim across ``min_articles`` or more of its articles.

    Text that another outlet also published is syndication, the thing this tool looks for, and is never
    flagged as a repeat.
    """
    articles_of: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    outlets_of: defaultdict[str, set[str]] = defaultdict(set)
    for p in paragraphs:
        outlet = articles[p.article_index].outlet
        articles_of[(outlet, p.text_hash)].add(p.article_index)
        outlets_of[p.text_hash].add(outlet)
    for p in paragraphs:
        key = (articles[p.article_index].outlet, p.text_hash)
        repeated = len(articles_of[key]) >= min_articles and len(outlets_of[p.text_hash]) == 1
        if repeated and p.boilerplate_reason is None:
            p.boilerplate_reason = BOILERPLATE_REPEATED


def article_texts(paragraphs: Sequence[Paragraph], n_articles: int) -> list[list[str]]:
    """Each article's normalised paragraphs, in order: the context its paragraphs are compared in."""
    texts: list[list[str]] = [[] for _ in range(n_articles)]
    for p in paragraphs:
        texts[p.article_index].append(p.norm_text)
    return texts


def excluded_reason(paragraph: Paragraph, min_words: int, include_boilerplate: bool) -> str | None:
    """Why the paragraph stays out of clustering, or None when it is clustered."""
    if paragraph.is_boilerplate and not include_boilerplate:
        return EXCLUDED_BOILERPLATE
    if paragraph.n_words < min_words:
        return EXCLUDED_SHORT
    return None
