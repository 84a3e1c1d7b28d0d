"""Word lists of the syndication benchmark (benchmarks/syndication.py): the made-up outlets and their house
styles (bylines, datelines, footers, newsletter lines), and what outlets change in wire copy (Reuters house
abbreviations, newswire synonyms, OCR confusions)."""

from __future__ import annotations

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

REPORTER_FIRST = ("Jane", "Michael", "Priya", "Carlos", "Emma", "David", "Aiko", "Samuel", "Fatima", "Laura")
REPORTER_LAST = ("Smith", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Brennan", "Haddad", "Reyes", "Walsh")
# (template, placed after the content): house byline forms.
BYLINES = (
    ("By {name}, Staff Writer", False),
    ("By {name}", False),
    ("{name} | {outlet}", False),
    ("BY {upper_name}, {outlet} Correspondent", False),
    ("Reporting by {name}; editing by {editor}", True),
)
# "" drops the wire's dateline altogether.
DATELINES = ("{upper} (Reuters) - ", "{place}, {date} (Reuters) - ", "{place} \u2014 ", "")
FOOTERS = (
    "Copyright 1987 {outlet}. All rights reserved.",
    "\u00a9 1987 {outlet}",
    "All material copyright {outlet}, 1987. Reproduction prohibited.",
    "Copyright (c) 1987 {outlet}. Distributed under licence.",
)
SUBSCRIBE = (
    "Subscribe to our newsletter for the day's business news.",
    "Subscribe to our newsletter for markets coverage every morning.",
    "{outlet} newsletters: subscribe for more stories like this.",
)

# Reuters house abbreviations, spelled out by lead rewrites and paraphrases.
ABBREVIATIONS = {
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
SCALES = {"mln": "million", "bln": "billion", "million": "million", "billion": "billion"}
# Word-level synonyms of common newswire verbs and nouns.
SYNONYMS = {
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
OCR_CONFUSIONS = (("rn", "m"), ("m", "rn"), ("l", "1"), ("1", "l"), ("0", "O"), ("O", "0"))
