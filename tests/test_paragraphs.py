import datetime as dt

from jobs.config import ParagraphsConfig
from jobs.paragraphs import (
    BOILERPLATE_PATTERN,
    BOILERPLATE_REPEATED,
    EXCLUDED_BOILERPLATE,
    EXCLUDED_SHORT,
    excluded_reason,
    split_articles,
)
from jobs.records import Article
from jobs.text import count_words, normalize, split_text


def article(article_id: str, outlet: str, text: str) -> Article:
    return Article(
        article_id, outlet, text, None, None, dt.datetime(2025, 11, 21, tzinfo=dt.UTC), f"{article_id}.txt"
    )


def test_normalize_quotes_width_and_whitespace() -> None:
    assert normalize("\u201cNo slave\u2019s  peace\u201d\u00a0\u200b now\t") == '"No slave\'s peace" now'
    assert normalize("\uff21\uff22 \ufb01le") == "AB file"  # NFKC: full-width letters and ligatures


def test_split_modes() -> None:
    text = "First line\r\nsecond line\n\n  \nThird block\nwrapped here\n"
    assert split_text(text, "line") == ["First line", "second line", "Third block", "wrapped here"]
    assert split_text(text, "blank_line") == ["First line second line", "Third block wrapped here"]


def test_ids_positions_hashes() -> None:
    paragraphs = split_articles(
        [article("a1", "x", '\n\nOne.\n\u201cTwo.\u201d\n"Two."\n')], ParagraphsConfig()
    )
    assert [p.paragraph_id for p in paragraphs] == ["a1:0000", "a1:0001", "a1:0002"]
    assert [p.position for p in paragraphs] == [0, 1, 2]
    assert paragraphs[1].text == "\u201cTwo.\u201d"  # the table keeps the text as written
    assert paragraphs[1].text_hash == paragraphs[2].text_hash != paragraphs[0].text_hash


def test_credit_ad_and_navigation_lines_are_boilerplate_but_reporting_is_not() -> None:
    boiler = [
        "Source: AlJazeera",
        "Featured photos: Reuters",
        "Also read: US-Venezuela crisis: Trump warships & CIA spark invasion fears",
        "For more videos and updates, check our YouTube channel https://www.youtube.com/@sigmaliveen.",
        "Photo by Win McNamee/Getty Images and Jesus Vargas/Getty Images",
        "Recommended Videos",
        "Author: 360 Technology Group",
        "Published: Nov 21, 2025 01:00 pm",
    ]
    reporting = [
        "Sources close to Mr. Maduro reveal that with the United States escalating pressure, Maduro has "
        "dramatically increased his personal security protocols.",
        "Sources say Maduro's team asked first for global amnesty for crimes by him and his circle.",
        "Watch out for the next round of sanctions, officials warned on Monday.",
        "Published reports say the talks stalled.",
    ]
    paragraphs = split_articles([article("a", "x", "\n".join(boiler + reporting))], ParagraphsConfig())
    assert [p.boilerplate_reason for p in paragraphs] == [BOILERPLATE_PATTERN] * len(boiler) + [None] * len(
        reporting
    )


def test_repeats_within_one_outlet_are_boilerplate_across_outlets_they_are_not() -> None:
    promo = "Subscribe to the Daily Briefing for the morning's top stories delivered to you."
    wire = "Since September 2025, US strikes have targeted 21 boats, killing at least 83 people."
    background = "Maduro has ruled Venezuela since 2013 and was re-elected last year in a disputed vote."
    articles = [
        article("x1", "x", f"{promo}\n{wire}\n{background}"),
        article("x2", "x", f"{promo}\n{wire}\n{background}"),
        article("x3", "x", f"{promo}\n{wire}"),
        article("y1", "y", wire),
    ]
    by_id = {p.paragraph_id: p for p in split_articles(articles, ParagraphsConfig())}
    # The promo line is in three of x's articles and nobody else's.
    assert {by_id[f"x{i}:0000"].boilerplate_reason for i in (1, 2, 3)} == {BOILERPLATE_REPEATED}
    # The wire paragraph is in three of x's articles too, but y publishes it as well: syndication.
    assert {by_id[f"x{i}:0001"].boilerplate_reason for i in (1, 2, 3)} == {None}
    assert by_id["y1:0000"].boilerplate_reason is None
    # Two articles sharing a paragraph (an article and its update) are below the default of three.
    assert by_id["x1:0002"].boilerplate_reason is None


def test_words_are_counted_in_scripts_without_spaces() -> None:
    assert count_words("US strikes have targeted 21 boats.") == 6
    assert count_words("米軍は21隻の船を攻撃した") == 12  # each kanji and kana counts; "21" is one word
    assert count_words("Trump said 米軍 attacked") == 5


def test_excluded_reason() -> None:
    short, boiler, body = split_articles(
        [
            article(
                "a",
                "x",
                "US escalation: Strikes and sanctions\nSource: AlJazeera and Reuters and AFP reporting "
                "staff\nThe rally came hours after Trump met his national security team at the White House.",
            )
        ],
        ParagraphsConfig(),
    )
    assert excluded_reason(short, 8, include_boilerplate=False) == EXCLUDED_SHORT
    assert excluded_reason(boiler, 8, include_boilerplate=False) == EXCLUDED_BOILERPLATE
    assert excluded_reason(boiler, 8, include_boilerplate=True) is None
    assert excluded_reason(body, 8, include_boilerplate=False) is None
