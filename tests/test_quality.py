"""The quality benchmark's parts: metrics, baselines, corpora, threshold fitting (the full run is a benchmark)."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from benchmarks import corpora, ecbplus
from benchmarks.baselines import cosine_labels, minhash_labels
from benchmarks.fit import best_threshold
from benchmarks.metrics import pair_scores, partition_scores
from benchmarks.quality import ROOT, eval_seeds, false_merges, markdown, same_cluster

DATA = corpora.DATA


def test_partition_scores_match_brute_force_pair_counting() -> None:
    rng = np.random.default_rng(0)
    truth = [f"t{x}" for x in rng.integers(0, 6, 40)]
    predicted = [f"p{x}" for x in rng.integers(0, 8, 40)]
    scores = partition_scores(truth, predicted)
    pairs = list(itertools.combinations(range(40), 2))
    same_t = {p for p in pairs if truth[p[0]] == truth[p[1]]}
    same_p = {p for p in pairs if predicted[p[0]] == predicted[p[1]]}
    assert scores["precision"] == pytest.approx(len(same_t & same_p) / len(same_p))
    assert scores["recall"] == pytest.approx(len(same_t & same_p) / len(same_t))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(truth, predicted))
    perfect = partition_scores(truth, [t.replace("t", "x") for t in truth])
    assert perfect == {"ari": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}


def test_pair_scores() -> None:
    s = pair_scores([True, True, False, False], [True, False, True, False])
    assert (s.accuracy, s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5, 0.5)


def test_best_threshold_never_cuts_between_tied_scores() -> None:
    sims = np.array([0.9, 0.8, 0.8, 0.8, 0.5])
    same = np.array([1, 1, 0, 0, 0])
    cut, accuracy = best_threshold(sims, same)
    assert accuracy == ((sims >= cut) == same).mean() == 0.8 and cut == pytest.approx(0.85)


def test_best_threshold_maximises_accuracy() -> None:
    sims = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    cut, accuracy = best_threshold(sims, np.array([1, 1, 0, 1, 0]))
    assert (accuracy == 0.8 and 0.5 < cut < 0.6) or 0.7 < cut < 0.8
    assert ((sims >= cut) == np.array([1, 1, 0, 1, 0])).mean() == accuracy


def test_minhash_links_copies_not_rewrites() -> None:
    wire = "The central bank raised its key interest rate by half a point to 6.5 pct on Tuesday, citing inflation."
    rewrite = (
        "Citing inflation, the central bank on Tuesday lifted its main rate 50 basis points to 6.5 percent."
    )
    texts = [
        wire,
        wire.replace("Tuesday", "Tuesday morning"),
        rewrite,
        "Grain exports fell sharply in March.",
    ]
    labels = minhash_labels(texts, threshold=0.5)
    assert labels[0] == labels[1] and len({labels[0], labels[2], labels[3]}) == 3


def test_cosine_components_follow_the_threshold() -> None:
    v = np.array([[1, 0], [0.96, 0.28], [0, 1]], dtype=np.float32)
    assert list(cosine_labels(v, threshold=0.9, k=2)) == [0, 0, 1]
    assert len(set(cosine_labels(v, threshold=0.99, k=2))) == 3


def test_baselines_link_only_within_the_date_window() -> None:
    text = "Citing inflation, the central bank on Tuesday raised its main interest rate to 6.5 percent."
    v = np.array([[1, 0], [1, 0], [0.96, 0.28]], dtype=np.float32)
    day = 86_400.0
    published = np.array([0.0, 30 * day, np.nan])  # the third is undated: it links to both
    assert len(set(minhash_labels([text] * 2, published=published[:2], max_days_apart=7))) == 2
    assert len(set(minhash_labels([text] * 2, published=published[:2], max_days_apart=None))) == 1
    assert len(set(cosine_labels(v[:2], threshold=0.9, k=2, published=published[:2], max_days_apart=7))) == 2
    assert len(set(cosine_labels(v, threshold=0.9, k=3, published=published, max_days_apart=7))) == 1


def test_mrpc_pairs_are_same_when_both_sentences_share_a_cluster() -> None:
    pairs = corpora.PairSet(a=["1", "1", "3", "5"], b=["2", "3", "4", "6"], label=[True, False, True, True])
    # Sentence 6 was excluded (too short): it is in no cluster, so its pair is "not same".
    predicted = same_cluster(pairs, ["1", "2", "3", "4", "5"], ["x", "x", "y", "y", "z"])
    assert predicted == [True, False, True, False]


def test_false_merges_count_cross_outlet_clusters_spanning_events() -> None:
    labels = ["a", "a", "b", "b", "c", "c", "single:7"]
    outlets = ["fox", "nyt", "fox", "fox", "fox", "hpo", "nyt"]
    events = ["e1", "e1", "e1", "e2", "e1", "e2", "e3"]
    # a: cross-outlet, one event; b: one outlet (not counted); c: cross-outlet, two events.
    assert false_merges(labels, outlets, events) == (2, [[4, 5]])


def test_markdown_has_one_table_per_corpus() -> None:
    text = markdown(
        [{"corpus": "A", "method": "x", "f1": 0.5}, {"corpus": "B", "method": "y", "f1": 1.0}], "head"
    )
    assert "### A" in text and "### B" in text and "| x | 0.500 |" in text


def test_seeds_table_runs_the_job_on_the_seeds(tmp_path) -> None:
    (row,) = eval_seeds([ROOT / "configs" / "default.yaml"], tmp_path)
    assert row["corpus"] == "Seeds" and row["method"] == "newsdedup (default.yaml)"
    assert row["missing"] == "land_very_soon" and row["boilerplate_in_cross_outlet"] == 0
    assert row["false_links"] <= 1 and 0 < row["fact_pair_recall"] <= 1


@pytest.mark.skipif(not (DATA / "mrpc").is_dir(), reason="needs ../shared/data/mrpc")
def test_mrpc_articles_cover_every_test_sentence() -> None:
    pairs = corpora.mrpc_pairs(DATA / "mrpc", "test")
    assert len(pairs.a) == 1725 and sum(pairs.label) == 1147
    articles = corpora.mrpc_articles(DATA / "mrpc", pairs)
    assert {a["article_id"] for a in articles} == set(pairs.a) | set(pairs.b)
    assert all(a["outlet"] and a["text"] for a in articles)


@pytest.mark.skipif(not (DATA / "basil").is_dir(), reason="needs ../shared/data/basil")
def test_basil_has_100_events_of_three_outlets() -> None:
    corpus = corpora.basil_corpus(DATA / "basil")
    assert len({a["article_id"] for a in corpus.articles}) == 300  # four share the uuid "empty" upstream
    assert len(set(corpus.group_of_article.values())) == 100
    assert {a["outlet"] for a in corpus.articles} == {"fox", "nyt", "hpo"}


@pytest.mark.skipif(not (DATA / "ecbplus").is_dir(), reason="needs ../shared/data/ecbplus")
def test_ecbplus_is_read_with_its_labels_and_scored() -> None:
    documents = ecbplus.load(DATA / "ecbplus")
    assert len(documents) == 496 and len({d.topic for d in documents}) == 21
    assert sum(len(d.annotated) for d in documents) == 961
    tara = next(d for d in documents if d.name == "1_1ecb")
    assert 'Tara Reid, 33, who starred in "American Pie"' in tara.sentences[1]
    pairs = ecbplus.labeled_pairs(documents)
    labels = [label for *_, label in pairs]
    assert labels.count("same") == 8549 and labels.count("sister") > 0 and labels.count("other") > 0
    # Every sentence in one cluster: recall 1, and the sister share is the sister pairs' share.
    one = {(x, y): "all" for x, y, _ in pairs}
    everything = {key: "all" for pair in one for key in pair}
    score = ecbplus.score(pairs, everything)
    assert score["same_event_recall"] == 1.0
    assert score["sister_event_share"] == labels.count("sister") / (
        labels.count("same") + labels.count("sister")
    )
    assert ecbplus.score(pairs, {})["same_event_recall"] == 0.0
