"""Plain-text utilities the job and its benchmarks share: cleaning markup, normalising, stripping what
outlets add around wire text, splitting into paragraphs and sentences, counting words."""

from __future__ import annotations

import html
import re
import unicodedata

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


# Markup that reaches feeds as text: tags, and entities whose "&" a feed turned into a space (AG News writes
# "It #39;s" for "It's" and " #36;10" for "$10"): the space goes with the entity.
_TAG = re.compile(r"<(?:[A-Za-z/!][^<>]{0,300})>")
_BARE_ENTITY = re.compile(r"(?<!&) ?#(\d{2,5});")
# What outlets put in front of the same wire text, up to a dash: a dateline ("BAGHDAD, Iraq", "NEW YORK,
# March 3"), a source ("AP", "SPACE.com", "(Reuters)"), a byline ("By Jane Doe, Reuters"). Places and sources
# are written in capitals or named in brackets, so "Trump - the president said" keeps its first word.
_BYLINE = r"(?:By [A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,3}[,;]? )?"
# Capitals, with at most a final dot per word ("ST. LOUIS"), so "U.S. - China talks" stays whole.
_SOURCE = r"(?:[A-Z][A-Z'&]+\.?(?:[ -][A-Z][A-Z'&]+\.?){0,3}|[A-Z][A-Za-z]+\.com)"
_REGION = r"(?:, [A-Z][A-Za-z.]+(?: [A-Z][A-Za-z.]+){0,2})?(?:, [A-Z][a-z]{2,8}\.? \d{1,2})?"
_AGENCY = r"\([A-Z][\w.&' ]{1,30}\)"
_LEAD = re.compile(
    rf"^(?:{_BYLINE}(?:{_SOURCE}{_REGION}(?:\s*{_AGENCY})?|{_AGENCY})|By [^-\u2013\u2014]{{3,60}}?)"
    r"\s*(?:--|[-\u2013\u2014])\s+"
)
_TRAILING_ELLIPSIS = re.compile(r"\s*(?:\.{3,}|\u2026)\s*$")


def clean_markup(text: str) -> str:
    """``text`` with HTML entities decoded and tags removed (what a feed's HTML leaves in its text)."""
    if "&" in text or "#" in text:
        text = html.unescape(_BARE_ENTITY.sub(lambda m: f"&#{m.group(1)};", text))
    if "<" in text:
        text = _TAG.sub(" ", text)
    return text


def strip_wire_marks(text: str) -> str:
    """A normalised paragraph without the dateline, agency tag or byline in front of it and a trailing
    ellipsis: the marks outlets add to or cut from the same wire text, which must not make copies differ.

    Only a lead of at most 80 characters that ends in a dash counts.
    """
    for _ in range(2):  # "SPACE.com - TORONTO, Canada -- A second team": a source, then a dateline
        match = _LEAD.match(text)
        if not match or match.end() > 80 or match.end() == len(text):
            break
        text = text[match.end() :]
    return _TRAILING_ELLIPSIS.sub("", text)


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
