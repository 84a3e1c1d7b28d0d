"""Scheduled runs into one output folder: today's paragraphs matched against the earlier days', cluster ids
that last, and what changed (jobs/history.py, jobs/lineage.py). Real model, real runs, tables read back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from embeddings.encoder import Encoder
from jobs import tables
from jobs.lineage import Earlier, cluster_id, day_start, lineages
from jobs.pipeline import RunResult
from tests.conftest import VOLATILE, read, run_day

# Facts told once each; every article below is one of them, as copied by an outlet.
FACT = "The central bank of Norway raised its main interest rate on Thursday, citing persistent inflation."
OTHER = "Heavy snowfall closed the main mountain pass between Italy and Switzerland for most of the week."


def of_run(output: Path, name: str, run: RunResult) -> list[dict]:
    table = read(output, name)
    return table.filter(pc.equal(table["run_id"], run.run_id)).to_pylist()


def clusters_of(output: Path, run: RunResult) -> dict[str, set[str]]:
    """Cluster id -> member article ids, of the paragraphs telling FACT or OTHER in ``run``'s tables."""
    found: dict[str, set[str]] = {}
    for p in of_run(output, "paragraphs", run):
        if p["position"] == 0 and p["cluster_id"]:
            found.setdefault(p["cluster_id"], set()).add(p["article_id"])
    return found


def changes(output: Path, run: RunResult) -> dict[str, dict]:
    return {c["cluster_id"]: c for c in of_run(output, "cluster_changes", run)}


def test_a_fact_republished_later_joins_the_earlier_cluster_under_its_id(
    tmp_path: Path, encoder: Encoder
) -> None:
    out = tmp_path / "out"
    first = run_day(
        tmp_path,
        out,
        "2025-01-01",
        [("wire", "wire", "2025-01-01", f"{FACT}\n\n{OTHER}"), ("copy-a", "alpha", "2025-01-01", FACT)],
        encoder,
    )
    ((cid, members),) = clusters_of(out, first).items()
    assert members == {"wire", "copy-a"}
    assert changes(out, first)[cid]["change"] == "new"
    second = run_day(tmp_path, out, "2025-01-02", [("copy-b", "beta", "2025-01-02", FACT)], encoder)
    assert clusters_of(out, second) == {cid: {"wire", "copy-a", "copy-b"}}
    change = changes(out, second)[cid]
    assert (change["change"], change["n_added"], change["added_outlets"]) == ("grown", 1, ["beta"])
    assert change["n_paragraphs"] == 3 and change["related_ids"] == []
    # The history members are in the day's tables with the run that read them.
    members = {p["article_id"]: p for p in of_run(out, "paragraphs", second) if p["cluster_id"] == cid}
    assert members["wire"]["origin_run_id"] == first.run_id
    assert str(members["wire"]["origin_run_date"]) == "2025-01-01"
    assert members["copy-b"]["origin_run_id"] == second.run_id
    (row,) = [c for c in of_run(out, "clusters", second) if c["cluster_id"] == cid]
    assert row["n_runs"] == 2 and row["first_seen_at"].isoformat() == "2025-01-01T00:00:00+00:00"
    assert row["first_article_id"] in ("wire", "copy-a") and row["first_outlet"] in ("wire", "alpha")
    # Only the paragraphs that joined today's clusters came along: not the history's own other facts.
    assert {p["article_id"] for p in of_run(out, "paragraphs", second)} == {"wire", "copy-a", "copy-b"}
    assert {a["article_id"] for a in of_run(out, "articles", second)} == {"copy-b"}


def test_a_merge_keeps_the_older_id_and_records_the_other(tmp_path: Path, encoder: Encoder) -> None:
    """Two clusters of one fact published 8 days apart (further than match.max_days_apart) stay apart until
    a copy published between them arrives: the older id survives."""
    out = tmp_path / "out"
    first = run_day(
        tmp_path,
        out,
        "2025-01-01",
        [("x1", "one", "2025-01-01", FACT), ("x2", "two", "2025-01-01", FACT)],
        encoder,
    )
    second = run_day(
        tmp_path,
        out,
        "2025-01-09",
        [("y1", "three", "2025-01-09", FACT), ("y2", "four", "2025-01-09", FACT)],
        encoder,
    )
    ((older, _),) = clusters_of(out, first).items()
    ((newer, members),) = clusters_of(out, second).items()
    assert newer != older and members == {"y1", "y2"}
    third = run_day(tmp_path, out, "2025-01-10", [("m", "five", "2025-01-05", FACT)], encoder)
    assert clusters_of(out, third) == {older: {"x1", "x2", "y1", "y2", "m"}}
    change = changes(out, third)[older]
    assert (change["change"], change["related_ids"], change["n_added"]) == ("merged", [newer], 1)


def test_a_split_records_both_parts(tmp_path: Path, encoder: Encoder) -> None:
    """A cluster held together by one article (published between its two halves) splits when that article
    is read again with another text: the part holding most of it keeps the id, and each part names the
    other."""
    out = tmp_path / "out"
    whole = run_day(
        tmp_path,
        out,
        "2025-01-10",
        [
            *((a, a, "2025-01-01", FACT) for a in ("a1", "a2", "a3")),
            ("m", "m", "2025-01-05", FACT),
            *((b, b, "2025-01-09", FACT) for b in ("b1", "b2")),
        ],
        encoder,
    )
    ((cid, members),) = clusters_of(out, whole).items()
    assert members == {"a1", "a2", "a3", "m", "b1", "b2"}
    after = run_day(
        tmp_path,
        out,
        "2025-01-11",
        [("n", "n", "2025-01-01", FACT), ("m", "m", "2025-01-05", OTHER)],
        encoder,
    )
    parts = clusters_of(out, after)
    assert parts[cid] == {"a1", "a2", "a3", "n"}
    ((other, rest),) = [(k, v) for k, v in parts.items() if k != cid]
    assert rest == {"b1", "b2"}
    found = changes(out, after)
    assert (found[cid]["change"], found[cid]["related_ids"]) == ("split", [other])
    assert (found[other]["change"], found[other]["related_ids"]) == ("split", [cid])


def test_history_days_0_reproduces_a_run_alone(tmp_path: Path, encoder: Encoder) -> None:
    first = [("wire", "wire", "2025-01-01", FACT), ("copy-a", "alpha", "2025-01-01", FACT)]
    second = [("copy-b", "beta", "2025-01-02", FACT), ("b1", "gamma", "2025-01-02", FACT)]
    for days, out in ((10, tmp_path / "with"), (0, tmp_path / "without")):
        run_day(tmp_path, out, "2025-01-01", first, encoder, days)
        run_day(tmp_path, out, "2025-01-02", second, encoder, days)
    run_day(tmp_path, tmp_path / "alone", "2025-01-02", second, encoder, 10)  # nothing earlier in its folder

    def day_2(output: Path, name: str) -> list[dict]:
        table = read(output, name)
        table = table.filter(pc.equal(pc.cast(table["run_date"], "string"), "2025-01-02"))
        return table.drop_columns([c for c in table.column_names if c in VOLATILE]).to_pylist()

    for name in tables.SCHEMAS:
        if name != "runs":
            assert day_2(tmp_path / "without", name) == day_2(tmp_path / "alone", name), name
    assert day_2(tmp_path / "with", "clusters") != day_2(tmp_path / "alone", "clusters")


def test_a_rerun_of_a_day_after_later_days_keeps_every_id(tmp_path: Path, encoder: Encoder) -> None:
    out = tmp_path / "out"
    inputs = {
        "2025-01-01": [
            ("wire", "wire", "2025-01-01", f"{FACT}\n\n{OTHER}"),
            ("x1", "one", "2025-01-01", FACT),
        ],
        "2025-01-02": [("copy-a", "alpha", "2025-01-01", FACT), ("y1", "two", "2025-01-02", OTHER)],
        "2025-01-03": [("copy-b", "beta", "2025-01-02", FACT), ("y2", "three", "2025-01-03", OTHER)],
    }
    runs = {d: run_day(tmp_path, out, d, articles, encoder) for d, articles in inputs.items()}
    before = {(p["paragraph_id"], p["cluster_id"]) for p in of_run(out, "paragraphs", runs["2025-01-02"])}
    again = run_day(tmp_path, out, "2025-01-02", inputs["2025-01-02"], encoder)
    after = {(p["paragraph_id"], p["cluster_id"]) for p in of_run(out, "paragraphs", again)}
    assert after == before and any(c for _, c in before)
    # The rerun replaced the day: one run for it, its history store too.
    assert len(list((out / tables.HISTORY / "run_date=2025-01-02").glob("*.links.parquet"))) == 1


def test_cluster_changes_read_back_with_the_declared_schema(tmp_path: Path, encoder: Encoder) -> None:
    out = tmp_path / "out"
    run_day(
        tmp_path,
        out,
        "2025-01-01",
        [("x1", "one", "2025-01-01", FACT), ("x2", "two", "2025-01-01", FACT)],
        encoder,
    )
    (path,) = (out / "cluster_changes").rglob("*.parquet")
    assert pq.read_schema(path).equals(tables.CLUSTER_CHANGES)
    table = tables.open_table(out, "cluster_changes").to_table()
    assert table.schema.equals(tables.dataset_schema("cluster_changes"))
    assert table.column("change").to_pylist() == ["new"]


def test_first_outlet_is_named_only_when_every_member_is_dated(seeds_run: RunResult) -> None:
    """On the seeds only article 002 has a date: a cluster holding it and an undated article has a first
    publication time but names no first outlet or article."""
    clusters = read(seeds_run.output, "clusters").to_pylist()
    paragraphs = read(seeds_run.output, "paragraphs").to_pylist()
    dated = {"002_9062c7f21478cb24"}
    mixed = 0
    for c in clusters:
        articles = {p["article_id"] for p in paragraphs if p["cluster_id"] == c["cluster_id"]}
        if articles <= dated:
            assert c["first_outlet"] == "002_9062c7f21478cb24" == c["first_article_id"]
        else:
            assert c["first_outlet"] is None and c["first_article_id"] is None, c
            mixed += bool(articles & dated)
            assert (c["first_published_at"] is not None) == bool(articles & dated)
    assert mixed > 0


def test_the_id_rule_settles_ties_by_age_then_id_then_digest() -> None:
    def earlier(day: int) -> Earlier:
        return Earlier(day_start(dt.date(2025, 1, day)), None, None, None, 1)

    today = [dt.date(2025, 1, 9)] * 2
    # A merge: the older cluster's id survives whoever holds more members; at equal age, the smaller id.
    for ages, kept in (({"x": 2, "y": 1}, "y"), ({"x": 1, "y": 1}, "x")):
        (found,) = lineages(
            [["p1", "p2", "p3"]],
            [["a", "b", "c"]],
            [today + today[:1]],
            {"p1": "x", "p2": "x", "p3": "y"},
            {k: earlier(d) for k, d in ages.items()},
        )
        assert (found.cluster_id, found.change, found.related_ids) == (
            kept,
            "merged",
            sorted({"x", "y"} - {kept}),
        )
        assert found.first_seen_at == day_start(dt.date(2025, 1, min(ages.values())))
    # A split into halves: the part with the smaller member digest keeps the id.
    parts = [["p1", "n1"], ["p2", "n2"]]
    found = lineages(parts, [["a", "b"]] * 2, [today] * 2, {"p1": "x", "p2": "x"}, {"x": earlier(1)})
    keeper = min(range(2), key=lambda k: cluster_id(parts[k]))
    assert found[keeper].cluster_id == "x" and found[1 - keeper].cluster_id == cluster_id(parts[1 - keeper])
    assert [f.change for f in found] == ["split", "split"]
    assert found[1 - keeper].related_ids == ["x"] and found[keeper].related_ids == [
        cluster_id(parts[1 - keeper])
    ]
    # Nothing earlier: the digest, as without history.
    (alone,) = lineages([["n1", "n2"]], [["a", "b"]], [today], {}, {})
    assert (alone.cluster_id, alone.change, alone.n_added, alone.n_runs) == (
        cluster_id(["n1", "n2"]),
        "new",
        2,
        1,
    )
