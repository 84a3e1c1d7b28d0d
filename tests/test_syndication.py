"""The syndication benchmark generator, on the real Reuters-21578 files (skipped when they are absent)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks import corpora
from benchmarks.corpora import Story, is_prose, load_stories
from benchmarks.fit import reuters_pairs
from benchmarks.syndication import (
    BOILERPLATE,
    BYLINE,
    EDIT_TYPES,
    MIN_KEPT_WORDS,
    WIRE,
    Corpus,
    generate,
    main,
    write_corpus,
)
from jobs.config import InputConfig
from jobs.ingest import read_articles
from jobs.text import count_words, normalize, split_text

# Research use only: read in place from the shared data folder, never copied into the repository.
DATA = corpora.DATA / "reuters21578"
N_STORIES = 60  # enough for every edit to occur, small enough to stay fast


@pytest.fixture(scope="module")
def stories() -> list[Story]:
    if not DATA.is_dir():
        pytest.skip(f"Reuters-21578 is not at {DATA}")
    return load_stories(DATA)


@pytest.fixture(scope="module")
def by_id(stories: list[Story]) -> dict[str, Story]:
    return {story.story_id: story for story in stories}


@pytest.fixture(scope="module")
def corpus(stories: list[Story]) -> Corpus:
    return generate(stories, n_stories=N_STORIES, seed=0)


def source(label: str, by_id: dict[str, Story]) -> str:
    story_id, index = label.rsplit(":", 1)
    return by_id[story_id].paragraphs[int(index)]


def outlet_copies(corpus: Corpus) -> Iterator[tuple[str, str]]:
    """(label, text) of every content paragraph an outlet (not the wire) published."""
    for article in corpus.articles:
        if article["outlet"] != WIRE:
            for text, label in zip(
                article["text"].split("\n\n"), corpus.labels[article["article_id"]], strict=True
            ):
                if label is not None:
                    yield label, text


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def test_load_stories_unwraps_paragraphs(stories: list[Story], by_id: dict[str, Story]) -> None:
    assert len(stories) == 19_043  # the documents with a body, as SOURCE.md counts them
    first = by_id["reuters-1"]
    assert first.title == "BAHIA COCOA REVIEW"
    assert first.topics == ("cocoa",)
    assert first.date == dt.datetime(1987, 2, 26, 15, 1, 1, tzinfo=dt.UTC)
    assert first.dateline == "SALVADOR, Feb 26 -"
    assert first.paragraphs[0].startswith("Showers continued throughout the week in the Bahia cocoa zone, ")
    assert first.paragraphs[-1].endswith("after carnival which ends midday on February 27.")
    for story in stories:
        for paragraph in story.paragraphs:
            assert "\n" not in paragraph and "&#" not in paragraph and "&lt;" not in paragraph
            assert paragraph == paragraph.strip() and "  " not in paragraph
        assert not story.paragraphs[-1].lower().endswith("reuter")


def test_load_stories_decodes_the_latin1_byte(by_id: dict[str, Story]) -> None:
    # reut2-017.sgm holds byte 0xFC, which is not UTF-8; as Latin-1 it is "ü".
    assert any("growth.\u00fcside measures" in p for p in by_id["reuters-17980"].paragraphs)


def test_same_seed_same_corpus_other_seed_differs(stories: list[Story], corpus: Corpus) -> None:
    assert generate(stories, n_stories=N_STORIES, seed=0) == corpus
    other = generate(stories, n_stories=N_STORIES, seed=1)
    assert {a["article_id"] for a in other.articles} != {a["article_id"] for a in corpus.articles}


def test_labels_align_with_the_line_splitter(corpus: Corpus) -> None:
    ids = [article["article_id"] for article in corpus.articles]
    assert len(set(ids)) == len(ids) == len(corpus.labels) == len(corpus.edits) == len(corpus.trimmed)
    for article in corpus.articles:
        paragraphs = split_text(article["text"], "line")
        assert paragraphs == article["text"].split("\n\n")
        assert (
            len(paragraphs)
            == len(corpus.labels[article["article_id"]])
            == len(corpus.edits[article["article_id"]])
        )


def test_labels_point_at_prose_source_paragraphs(corpus: Corpus, by_id: dict[str, Story]) -> None:
    for article in corpus.articles:
        article_id = article["article_id"]
        labels = corpus.labels[article_id]
        for label, edits in zip(labels, corpus.edits[article_id], strict=True):
            if label is None:
                assert edits in ((BYLINE,), (BOILERPLATE,))
            else:
                assert is_prose(source(label, by_id))
                assert set(edits) <= set(EDIT_TYPES)
        # Cut paragraphs are the story's last ones and not in the article.
        assert not set(corpus.trimmed[article_id]) & set(labels)
        content = [label for label in labels if label is not None]
        story = by_id[article_id.split("/")[1]]
        prose = [f"{story.story_id}:{i}" for i, text in enumerate(story.paragraphs) if is_prose(text)]
        assert content + corpus.trimmed[article_id] == prose


def test_every_edit_type_occurs(corpus: Corpus) -> None:
    counts = Counter(edit for edits in corpus.edits.values() for paragraph in edits for edit in paragraph)
    assert set(counts) == {*EDIT_TYPES, BYLINE, BOILERPLATE}
    assert any(corpus.trimmed.values())


def test_wire_copy_is_unedited(corpus: Corpus, by_id: dict[str, Story]) -> None:
    wire = [article for article in corpus.articles if article["outlet"] == WIRE]
    assert len(wire) == N_STORIES
    for article in wire:
        story = by_id[article["article_id"].split("/")[1]]
        labels = corpus.labels[article["article_id"]]
        expected = [source(label, by_id) for label in labels if label is not None]
        expected[0] = f"{story.dateline} {expected[0]}"  # "LONDON, March 3 - ..." as on the wire
        assert article["text"].split("\n\n") == expected
        assert all(edits == () for edits in corpus.edits[article["article_id"]])
        assert corpus.trimmed[article["article_id"]] == []


def test_copies_are_edited_but_recognisable(corpus: Corpus, by_id: dict[str, Story]) -> None:
    copies = list(outlet_copies(corpus))
    texts: dict[str, set[str]] = {}
    for label, text in copies:
        texts.setdefault(label, {source(label, by_id)}).add(text)
        assert count_words(text) >= MIN_KEPT_WORDS
    edited = sum(text != source(label, by_id) for label, text in copies) / len(copies)
    assert 0.2 < edited < 0.8
    assert sum(len(variants) > 1 for variants in texts.values()) / len(texts) > 0.3
    overlap = [
        len(words(text) & words(source(label, by_id))) / len(words(source(label, by_id)))
        for label, text in copies
    ]
    assert sum(share >= 0.5 for share in overlap) / len(overlap) > 0.9


def test_stories_come_in_topic_groups(corpus: Corpus, by_id: dict[str, Story]) -> None:
    picked = [by_id[a["article_id"].split("/")[1]] for a in corpus.articles if a["outlet"] == WIRE]
    week = dt.timedelta(days=7)
    grouped = [
        story
        for story in picked
        if any(
            o is not story and set(o.topics) & set(story.topics) and abs(o.date - story.date) <= week
            for o in picked
        )
    ]
    assert len(grouped) >= 0.8 * len(picked)
    # 1 to 5 copies per story, the wire's included, and some stories only on the wire.
    copies = Counter(a["article_id"].split("/")[1] for a in corpus.articles)
    assert set(copies.values()) <= {1, 2, 3, 4, 5} and 1 in copies.values()


def test_write_corpus_is_read_by_the_job(corpus: Corpus, tmp_path: Path) -> None:
    articles_path, labels_path = write_corpus(corpus, tmp_path)
    result = read_articles(InputConfig(path=articles_path))
    assert result.rejects == []
    assert [a.article_id for a in result.articles] == [a["article_id"] for a in corpus.articles]
    assert [a.text for a in result.articles] == [a["text"] for a in corpus.articles]
    assert all(a.published_at is not None and a.title for a in result.articles)
    table = pq.read_table(labels_path)
    assert table.schema == pa.schema(
        [
            ("article_id", pa.string()),
            ("position", pa.int32()),
            ("label", pa.string()),
            ("edits", pa.list_(pa.string())),
        ]
    )
    rows = table.to_pylist()
    expected = [
        (article_id, position, label, list(edits))
        for article_id in (a["article_id"] for a in corpus.articles)
        for position, (label, edits) in enumerate(
            zip(corpus.labels[article_id], corpus.edits[article_id], strict=True)
        )
    ]
    assert [(r["article_id"], r["position"], r["label"], r["edits"]) for r in rows] == expected


def test_cli_rejects_a_folder_without_the_collection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "no reut2-*.sgm files" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_adapter_training_pairs_stay_outside_the_benchmark(stories: list[Story]) -> None:
    pairs = reuters_pairs(stories, 30)
    assert len(pairs) == 90 and [p[2] for p in pairs[:3]] == [True, True, False]
    benchmark = generate(stories, seed=0)  # the corpus benchmarks.quality scores
    text = {t for a in benchmark.articles for t in a["text"].split("\n\n")}
    used = {label.split(":")[0] for labels in benchmark.labels.values() for label in labels if label}
    by_id = {s.story_id: s for s in stories}
    wire = {normalize(p) for story_id in used for p in by_id[story_id].paragraphs}
    for a, b, _ in pairs:
        assert a not in text and b not in text and a not in wire and b not in wire
