"""The pair verifier: training, loading, scoring, and its place in the job (real model, real files)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from embeddings.finetune import VerifierParams, save_adapter, train_verifier
from embeddings.models import ModelError, resolve_adapter, resolve_model_path
from embeddings.verifier import PairVerifier
from jobs.config import VerifyConfig
from jobs.pairs import Pairs, verify_pairs
from jobs.same_fact import COPY, REWRITE, VETOED
from tests.conftest import DIFFERENT, SAME, read, run_on

SHIPPED = "all-MiniLM-L6-v2-verifier"
BATCH_SIZE = VerifyConfig().batch_size  # the job's own
SEEDS = Path(__file__).resolve().parents[1] / "seeds"


@pytest.fixture(scope="module")
def verifier() -> PairVerifier:
    return PairVerifier(SHIPPED, threads=2, batch_size=BATCH_SIZE)


def test_shipped_verifier_tells_same_fact_from_same_story(verifier: PairVerifier) -> None:
    same = verifier.probabilities([a for a, _ in SAME], [b for _, b in SAME])
    different = verifier.probabilities([a for a, _ in DIFFERENT], [b for _, b in DIFFERENT])
    assert same.min() > 0.5 > different.max(), (same, different)


def test_verifier_is_symmetric_and_independent_of_its_batch(verifier: PairVerifier) -> None:
    a = [x for x, _ in SAME + DIFFERENT]
    b = [y for _, y in SAME + DIFFERENT]
    forward = verifier.probabilities(a, b)
    np.testing.assert_allclose(verifier.probabilities(b, a), forward, atol=1e-6)
    alone = np.array([verifier.probabilities([x], [y])[0] for x, y in zip(a, b, strict=True)])
    np.testing.assert_allclose(alone, forward, atol=1e-5)
    assert verifier.probabilities([], []).shape == (0,)


def test_an_embedding_adapter_is_not_a_verifier() -> None:
    with pytest.raises(ModelError, match=r"not a verifier.*verify.model"):
        PairVerifier(resolve_adapter("all-MiniLM-L6-v2-mrpc-reuters"), threads=1, batch_size=BATCH_SIZE)


def test_verifier_trains_deterministically_and_loads(tmp_path: Path) -> None:
    folder = resolve_model_path("all-MiniLM-L6-v2")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    pairs = [(a, b, True) for a, b in SAME] + [(a, b, False) for a, b in DIFFERENT]
    params = VerifierParams(rank=2, epochs=1, batch_size=4, seed=3)
    model = AutoModel.from_pretrained(str(folder))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tensors = train_verifier(model, tokenizer, pairs, params)
    assert all(before[k].equal(v) for k, v in model.state_dict().items()), "the base model is left unchanged"
    assert tensors["head.weight"].shape == (1, 384) and len(tensors) == 2 * 6 * 6 + 2
    again = train_verifier(AutoModel.from_pretrained(str(folder)), tokenizer, pairs, params)
    assert all(again[k].equal(v) for k, v in tensors.items()), "same seed, same verifier"
    path = tmp_path / "tiny-verifier.safetensors"
    save_adapter(tensors, path, {"params": {"max_seq_length": 64}, "base_model": "all-MiniLM-L6-v2"})
    p = PairVerifier(path, threads=1, batch_size=BATCH_SIZE).probabilities([SAME[0][0]], [SAME[0][1]])
    assert 0.0 < float(p[0]) < 1.0
    with torch.no_grad():
        assert float(tensors["head.weight"].abs().sum()) > 0


def test_verify_pairs_matches_paragraphs_by_their_sentences() -> None:
    texts = [
        "Officials at the scene gave no names of the dead. The strikes killed 83 people.",
        "Officials at the scene gave no names of the dead. At least 83 died in the strikes.",
        "The carrier arrived in the Caribbean last week after a long voyage.",
        "Officials at the scene gave no names of the dead. The strikes killed 83 people.",
    ]
    similarity = np.array([0.9, 0.8, 0.99], dtype=np.float32)
    pairs = Pairs(
        np.array([0, 0, 0]),
        np.array([1, 2, 3]),
        similarity,
        similarity,
        np.array([REWRITE, REWRITE, COPY], np.int8),
    )
    asked: list[tuple[str, str]] = []

    def score(a: list[str], b: list[str]) -> np.ndarray:
        asked.extend(zip(a, b, strict=True))
        return np.array([0.9 if "83" in x and "83" in y else 0.2 for x, y in zip(a, b, strict=True)])

    judged = verify_pairs(pairs, texts, score, min_probability=0.5, max_sentence_pairs=3)
    # Pair 0-3 is a copy: never judged. Pair 0-1: the sentence pair with most words in
    # common comes first (the same sentence about the names), then the one about the 83 dead, accepted.
    assert np.isnan(judged.probability[2])
    assert judged.probability[:2].tolist() == pytest.approx([0.9, 0.2])
    officials = "Officials at the scene gave no names of the dead."
    assert asked[0] == (officials, officials)
    assert ("The strikes killed 83 people.", "At least 83 died in the strikes.") in asked
    # Pair 0-2 has one sentence on one side: its two sentence pairs are both tried, both rejected.
    assert len(asked) == 4 and len(set(asked)) == 4
    assert judged.linked_mask().tolist() == [True, False, True]  # the rejected rewrite is no longer linked
    assert judged.link.tolist() == [REWRITE, VETOED, COPY] and pairs.probability is None
    once = verify_pairs(pairs, texts, score, min_probability=0.5, max_sentence_pairs=1)
    assert once.probability[:2].tolist() == pytest.approx([0.2, 0.2])


def test_job_with_verifier_keeps_rejected_pairs_as_evidence_only(encoder, tmp_path: Path) -> None:
    result = run_on(SEEDS, tmp_path / "out", encoder, f"verify.model={SHIPPED}", "match.min_probability=0.3")
    pairs = read(result.output, "pairs")
    runs = read(result.output, "runs").to_pylist()[0]
    rows_ = pairs.to_pylist()
    # The verifier judges what the same-fact model called a rewrite, never a copy; a rewrite it rejects
    # stays in the pairs table with its probability, no longer linked.
    judged = [r for r in rows_ if r["verifier_probability"] is not None]
    assert judged and all(r["link"] != "copy" for r in judged)
    rejected = [r for r in judged if r["verifier_probability"] < 0.5]
    assert all(r["link"] is None for r in rejected)
    assert all(r["link"] == "rewrite" for r in judged if r["verifier_probability"] >= 0.5)
    assert runs["n_pairs_rejected"] == len(rejected) > 0 and runs["seconds_verify"] > 0
    # Clusters grow from linked pairs only: a rejected pair shares a cluster only through linked ones.
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for r in rows_:
        if r["link"] is not None:
            parent[root(r["paragraph_id_a"])] = root(r["paragraph_id_b"])
    for r in rejected:
        if r["cluster_id"] is not None:
            assert root(r["paragraph_id_a"]) == root(r["paragraph_id_b"])


def test_a_missing_verifier_stops_the_run_before_any_work(encoder, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"'no-such-verifier' not found: set verify\.model to"):
        run_on(SEEDS, tmp_path / "out", encoder, "verify.model=no-such-verifier")
    assert not (tmp_path / "out").exists()
