"""Split articles into paragraphs, normalise them, and flag boilerplate and paragraphs too short to cluster."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from embeddings.cache import text_key
from jobs.config import ParagraphsConfig
from jobs.executors import MapData, in_process
from jobs.ingest import Article

# Typographic quotes and invisible characters that make the same wire text hash differently.
_QUOTES = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,
        "\ufeff": None,
        "\u00ad": None,
    }
)
# Scripts written without spaces between words (kana, CJK, Thai, Lao, Myanmar, Khmer): each character
# counts as a word, or a whole paragraph would count as one word and never be clustered.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
_WORDS = re.compile(f"[{_UNSPACED}]|[^\\s{_UNSPACED}]+")
_LINE_BREAKS = re.compile(r"[\n\r\u2028\u2029\x0b\x0c\x85]")
_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")
# A sentence ends at . ! or ? (then closing quotes or brackets) before a capital, unless the word before
# is an initial or a common abbreviation ("U.S.", "Corp.", "Mr.").
_BOUNDARY = re.compile(r"""[.!?]["')]*(?=\s+["'(]?[A-Z])""")
_NOT_AN_END = re.compile(
    r"(?:\b[A-Z]\.|\b(?:Mr|Mrs|Ms|Dr|St|Co|Corp|Inc|Ltd|Bros|Jan|Feb|Mar|Apr|Aug|Sept?|Oct|Nov|Dec|No|Gen|Gov"
    r"|Sen|Rep|Lt|Col|vs)\.)$"
)

# Why a paragraph is not clustered (None: it is).
EXCLUDED_SHORT = "short"
EXCLUDED_BOILERPLATE = "boilerplate"
BOILERPLATE_PATTERN = "pattern"
BOILERPLATE_REPEATED = "repeated_in_outlet"


@dataclass(slots=True)
class Paragraph:
    """One paragraph of one article. ``norm_text`` is what gets hashed and embedded."""

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


def normalize(text: str) -> str:
    """NFKC, straight quotes, no invisible characters, single spaces."""
    if not text.isascii():  # ASCII is already NFKC and holds none of _QUOTES: most news text skips both
        text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return " ".join(text.split())  # str.split() splits on the same Unicode whitespace as regex \s


def split_text(text: str, mode: str) -> list[str]:
    """Split on every line break (``line``) or on blank lines, joining wrapped lines (``blank_line``)."""
    text = _LINE_BREAKS.sub("\n", text.replace("\r\n", "\n"))
    if mode == "line":
        chunks = text.split("\n")
    else:
        chunks = [block.replace("\n", " ") for block in _BLANK_LINES.split(text)]
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def split_sentences(text: str) -> list[str]:
    """The sentences of a (normalised) paragraph; abbreviations such as "Corp." and "U.S." do not end one."""
    found, start = [], 0
    for boundary in _BOUNDARY.finditer(text):
        if not _NOT_AN_END.search(text[start : boundary.start() + 1]):
            found.append(text[start : boundary.end()].strip())
            start = boundary.end()
    return [*found, text[start:].strip()]


def count_words(text: str) -> int:
    """Whitespace-separated words; in scripts written without spaces, characters."""
    if text.isascii():  # no unspaced script: plain whitespace splitting gives the same count, faster
        return len(text.split())
    return sum(1 for _ in _WORDS.finditer(text))


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
        for position, chunk in enumerate(split_text(article.text, config.split)):
            norm = normalize(chunk)
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


def excluded_reason(paragraph: Paragraph, min_words: int, include_boilerplate: bool) -> str | None:
    """Why the paragraph stays out of clustering, or None when it is clustered."""
    if paragraph.is_boilerplate and not include_boilerplate:
        return EXCLUDED_BOILERPLATE
    if paragraph.n_words < min_words:
        return EXCLUDED_SHORT
    return None
