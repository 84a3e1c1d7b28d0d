"""The rule-based rewrites an outlet of the syndication benchmark makes to a wire paragraph: its lead
rewritten, abbreviations spelled out, sentences paraphrased, typos and OCR noise. Each takes a seeded
random stream, so a corpus is the same for the same seed."""

from __future__ import annotations

import random
import re

from benchmarks.wordlists import ABBREVIATIONS, OCR_CONFUSIONS, SCALES, SYNONYMS
from jobs.text import split_sentences

P_PARAPHRASE_SENTENCE = 0.7  # share of a paraphrased paragraph's sentences that are rewritten

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
_ABBREVIATION = re.compile(r"\b(?:" + "|".join(ABBREVIATIONS) + r")\b", re.IGNORECASE)
_SYNONYM = re.compile(r"\b(?:" + "|".join(SYNONYMS) + r")\b", re.IGNORECASE)
_COUNTED = re.compile(r"(?:\d|mln|bln|million|billion|thousand)\s$")  # "6.8 mln shares" stays shares
_THOUSANDS = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")


def rewrite_lead(paragraph: str, rng: random.Random) -> str:
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
    return " ".join([expand_abbreviations(first, rng), *rest])


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _uncap(text: str) -> str:
    """Lower-case the first letter when the first word is a common one; any other word may be a name."""
    return text[:1].lower() + text[1:] if _LOWERABLE.match(text) else text


def _match_case(original: str, replacement: str) -> str:
    return _cap(replacement) if original[:1].isupper() else replacement


def expand_abbreviations(text: str, rng: random.Random) -> str:
    """Reuters abbreviations spelled out: "1.5 mln dlrs" as "$1.5 million" or "1.5 million dollars"."""

    def money(match: re.Match[str]) -> str:
        words = [match[1], SCALES[match[2]]] if match[2] else [match[1]]
        return "$" + " ".join(words) if rng.random() < 0.5 else " ".join([*words, "dollars"])

    text = _MONEY.sub(money, text)
    text = _PERCENT.sub(lambda m: rng.choice(("%", " percent")), text)
    return _ABBREVIATION.sub(lambda m: _match_case(m[0], ABBREVIATIONS[m[0].lower()]), text)


def paraphrase(paragraph: str, rng: random.Random) -> str:
    """Some sentences rewritten by rule: abbreviations, synonyms, "1,500" as "1500"."""

    def synonym(match: re.Match[str]) -> str:
        word = match[0]
        if word.lower() == "shares" and _COUNTED.search(
            match.string[max(0, match.start() - 9) : match.start()]
        ):
            return word
        return _match_case(word, rng.choice(SYNONYMS[word.lower()]))

    sentences = split_sentences(paragraph)
    for i, sentence in enumerate(sentences):
        if rng.random() < P_PARAPHRASE_SENTENCE:
            sentence = _SYNONYM.sub(synonym, expand_abbreviations(sentence, rng))
            if rng.random() < 0.5:
                sentence = _THOUSANDS.sub(lambda m: m[0].replace(",", ""), sentence)
            sentences[i] = sentence
    return " ".join(sentences)


def typos(text: str, rate: float, rng: random.Random) -> str:
    """Swapped and dropped letters and OCR confusions (rn/m, l/1, 0/O) at ``rate`` per character."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if not char.isalnum() or rng.random() >= rate:
            out.append(char)
            i += 1
            continue
        confusion = next(((a, b) for a, b in OCR_CONFUSIONS if text.startswith(a, i)), None)
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
