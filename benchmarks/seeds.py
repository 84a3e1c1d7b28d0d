"""The shared facts of the sample corpus (``seeds/``), labeled by hand in ``benchmarks/seeds_facts.yaml``,
checked on a run's output.

The five outlets tell one story (the US-Venezuela crisis of November 2025) in their own words. The labels say
which paragraphs report each fact the outlets share, and which lines are boilerplate; any two content
paragraphs that share no fact share only the story. A run is scored on:
- the facts found: a cross_outlet cluster holds paragraphs of the fact from two outlets or more (the five
  facts the quality issue names must be);
- recall: of the pairs of paragraphs of one fact from different outlets, the share in one cluster;
- false links: pairs of paragraphs in one cluster that share no labeled fact (a cluster joining two facts,
  or a fact and a paragraph that only shares the story);
- boilerplate in a cross_outlet cluster.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pyarrow.compute as pc
import yaml

from jobs import tables

LABELS = Path(__file__).resolve().with_name("seeds_facts.yaml")


@dataclass(frozen=True)
class SeedsScore:
    facts: int
    found: list[str]
    missing: list[str]  # facts named in the issue that were not found
    recall: float
    false_links: list[tuple[str, str]]
    boilerplate_in_cross_outlet: int

    @property
    def holds(self) -> bool:
        """The bar: every fact named in the issue found, no false link, no boilerplate in a cross_outlet cluster."""
        return not self.missing and not self.false_links and not self.boilerplate_in_cross_outlet


def score(output: Path, run_id: str | None = None) -> SeedsScore:
    """Score the run ``run_id`` (default: the only run) written to ``output`` against the labels."""
    run = None if run_id is None else pc.field("run_id") == run_id
    paragraphs = tables.open_table(output, "paragraphs").to_table(filter=run).to_pylist()
    if not paragraphs:
        raise ValueError(f"no paragraphs of run {run_id} under {output}")
    if run_id is None and len({p["run_id"] for p in paragraphs}) > 1:
        raise ValueError(f"{output} holds several runs: pass the run_id to check")
    kind = {
        c["cluster_id"]: c["kind"]
        for c in tables.open_table(output, "clusters").to_table(filter=run).to_pylist()
    }
    labels = yaml.safe_load(LABELS.read_text(encoding="utf-8"))

    def find(prefix: str, needle: str) -> dict:
        hits = [p for p in paragraphs if p["article_id"].startswith(prefix) and needle in p["text"]]
        if len(hits) != 1:
            raise ValueError(f"{len(hits)} paragraphs of {prefix} contain {needle!r}: is this seeds/?")
        return hits[0]

    facts = {name: {find(*where)["paragraph_id"]: find(*where) for where in fact["paragraphs"]}
             for name, fact in labels["facts"].items()}  # fmt: skip
    fact_of: dict[str, set[str]] = {}
    for name, members in facts.items():
        for pid in members:
            fact_of.setdefault(pid, set()).add(name)
    found, pairs, together = [], 0, 0
    for name, members in facts.items():
        by_cluster: dict[str, set[str]] = {}
        for p in members.values():
            if p["cluster_id"] is not None and kind[p["cluster_id"]] == "cross_outlet":
                by_cluster.setdefault(p["cluster_id"], set()).add(p["outlet"])
        if any(len(outlets) >= 2 for outlets in by_cluster.values()):
            found.append(name)
        for x, y in itertools.combinations(members.values(), 2):
            if x["outlet"] != y["outlet"]:
                pairs += 1
                together += x["cluster_id"] is not None and x["cluster_id"] == y["cluster_id"]
    clusters: dict[str, list[str]] = {}
    for p in paragraphs:
        if p["cluster_id"] is not None:
            clusters.setdefault(p["cluster_id"], []).append(p["paragraph_id"])
    false_links = [
        (x, y)
        for members in clusters.values()
        for x, y in itertools.combinations(sorted(members), 2)
        if not fact_of.get(x, set()) & fact_of.get(y, set())
    ]
    boilerplate = [find(*where) for where in labels["boilerplate"]]
    return SeedsScore(
        facts=len(facts),
        found=found,
        missing=[
            name for name, fact in labels["facts"].items() if fact.get("named_in_issue") and name not in found
        ],
        recall=together / pairs if pairs else 0.0,
        false_links=false_links,
        boilerplate_in_cross_outlet=sum(
            p["cluster_id"] is not None and kind[p["cluster_id"]] == "cross_outlet" for p in boilerplate
        ),
    )
