"""The findings of the batch job issue on the sample corpus (``seeds/``), checked on a run's output.

The end-to-end test requires every one of them under the default config; ``benchmarks.quality`` reports
which ones each compared config keeps, so a config that wins on labeled data but loses a finding shows it.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from jobs import tables

FINDINGS = (
    "boats 000~002 cross_outlet",  # the 21 boat strikes and 83 dead, reported by 000 and rewritten by 002
    "airspace 000~001 cross_outlet",  # the airspace closure, in 000 and in 001
    "airspace 004 paired with 000 and 001",  # the pairs table keeps that evidence whatever HDBSCAN decides
    "002 ads not cross_outlet",  # the advertising lines at the end of 002
    "credit line flagged boilerplate",  # "Source: AlJazeera" is flagged and never clustered
)


def findings(output: Path, run_id: str | None = None) -> dict[str, bool]:
    """Which of FINDINGS hold in the run ``run_id`` (default: the only run) written to ``output``."""
    run = None if run_id is None else pc.field("run_id") == run_id
    paragraphs = tables.open_table(output, "paragraphs").to_table(filter=run).to_pylist()
    if not paragraphs:
        raise ValueError(f"no paragraphs of run {run_id} under {output}")
    kind = {
        c["cluster_id"]: c["kind"]
        for c in tables.open_table(output, "clusters").to_table(filter=run).to_pylist()
    }
    pairs = tables.open_table(output, "pairs").to_table(filter=run).to_pylist()
    if run_id is None and len({p["run_id"] for p in paragraphs}) > 1:
        raise ValueError(f"{output} holds several runs: pass the run_id to check")

    def paragraph(article_prefix: str, needle: str) -> dict:
        found = [p for p in paragraphs if p["article_id"].startswith(article_prefix) and needle in p["text"]]
        if len(found) != 1:
            raise ValueError(
                f"{len(found)} paragraphs of {article_prefix} contain {needle!r}: is this seeds/?"
            )
        return found[0]

    def together(x: dict, y: dict) -> bool:
        return (
            x["cluster_id"] is not None
            and x["cluster_id"] == y["cluster_id"]
            and kind[x["cluster_id"]] == "cross_outlet"
        )

    air_000 = paragraph("000", "closing Venezuelan airspace")
    air_001 = paragraph("001", "airspace effectively closed")
    air_004 = paragraph("004", "Venezuelan airspace should be treated as fully closed")
    linked = {(p["paragraph_id_a"], p["paragraph_id_b"]) for p in pairs}
    ads = [
        p
        for p in paragraphs
        if p["article_id"].startswith("002")
        and (p["text"].startswith("- ") or p["text"].startswith("Author:"))
    ]
    if len(ads) != 6:
        raise ValueError(f"{len(ads)} advertising lines in 002, not 6: is this seeds/?")
    source = paragraph("000", "Source: AlJazeera")
    held = (
        together(
            paragraph("000", "targeted 21 boats, killing at least 83 people"),
            paragraph("002", "at least 21 alleged drug-trafficking boats"),
        ),
        together(air_000, air_001),
        {
            (air_000["paragraph_id"], air_004["paragraph_id"]),
            (air_001["paragraph_id"], air_004["paragraph_id"]),
        }
        <= linked,
        all(kind.get(p["cluster_id"]) != "cross_outlet" for p in ads),
        source["is_boilerplate"]
        and source["excluded_reason"] == "boilerplate"
        and source["cluster_id"] is None,
    )
    return dict(zip(FINDINGS, held, strict=True))
