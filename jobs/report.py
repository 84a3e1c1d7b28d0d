"""The HTML report of one run: a single self-contained page (styles, script and the heatmap inline; no link
to anything outside it), built from the Parquet tables alone, so it can be written for any earlier run.

``<output>/report/run_date=YYYY-MM-DD/<run_id>.html`` (jobs/tables.py ``REPORT``: a folder readers of the
tables skip). It shows the run (counts, stage timings, rejects, the config and its diff against the previous
run), the cross-outlet clusters (largest first, capped by ``report.max_clusters``), an outlet x outlet
heatmap of shared paragraphs, and what changed since the previous run when the output holds the
``cluster_changes`` table. The template is ``jobs/templates/report.html.j2`` (Jinja2, autoescaped).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import pyarrow as pa
import pyarrow.compute as pc

from jobs import commit, tables
from jobs.config import ConfigError, ReportConfig

CHANGES = "cluster_changes"  # the history's table (contract with issue 16); older outputs have none
CHANGE_KINDS = ("new", "grown", "merged", "split")
REJECTS_SHOWN = 50  # rejects listed by name; the page counts the rest
_WORD = re.compile(r"\w+")
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("jobs", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def report_path(output: Path, run_date: dt.date, run_id: str) -> Path:
    """Where the report of run ``run_id`` goes in the output folder ``output``."""
    return output / tables.REPORT / f"run_date={run_date.isoformat()}" / f"{run_id}.html"


def pick_run(runs: list[dict], run_id: str | None = None, run_date: dt.date | None = None) -> dict:
    """The runs row of ``run_id``, else the latest committed run of ``run_date``, else the latest of all."""
    if run_id is not None:
        found = [r for r in runs if r["run_id"] == run_id]
        if not found:
            raise ConfigError(f"no committed run {run_id}: see the runs table for the run ids")
        return found[0]
    day = [r for r in runs if run_date is None or r["run_date"] == run_date]
    if not day:
        raise ConfigError(f"no committed run on {run_date}: see the runs table for the run dates")
    return max(day, key=lambda r: r["finished_at"])


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as dotted keys -> JSON values (lists whole)."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[prefix + key] = json.dumps(value)
    return flat


def config_diff(before: str, after: str) -> list[tuple[str, str, str]]:
    """(key, before, after) for every config key whose value differs between two ``config_json``s; a key one
    of them lacks shows as "-"."""
    old, new = flatten(json.loads(before)), flatten(json.loads(after))
    return [
        (key, old.get(key, "-"), new.get(key, "-"))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def marked(text: str, reference: str) -> list[tuple[str, bool]]:
    """``text`` cut into pieces, each flagged when it is a word shared with ``reference``.

    Short lower-case words ("the", "with") count only inside a shared pair of words, so they alone do not
    light up a rewrite; names, numbers and longer words count alone.
    """
    ref_words = [w.lower() for w in _WORD.findall(reference)]
    vocabulary, pairs = set(ref_words), set(itertools.pairwise(ref_words))
    matches = list(_WORD.finditer(text))
    words = [m.group().lower() for m in matches]
    in_pair = [False] * len(words)
    for i, pair in enumerate(itertools.pairwise(words)):
        if pair in pairs:
            in_pair[i] = in_pair[i + 1] = True
    pieces: list[tuple[str, bool]] = []
    end = 0
    for i, match in enumerate(matches):
        word = words[i]
        telling = len(word) > 4 or not match.group().islower()  # a name, a number, a longer word
        shared = in_pair[i] or (word in vocabulary and telling)
        gap = text[end : match.start()]
        if shared and pieces and pieces[-1][1] and not gap.strip():
            pieces[-1] = (pieces[-1][0] + gap + match.group(), True)  # one <mark> per run of shared words
        else:
            pieces += [(gap, False), (match.group(), shared)]
        end = match.end()
    pieces.append((text[end:], False))
    return [piece for piece in pieces if piece[0]]


@dataclass(frozen=True)
class Heatmap:
    """Outlet x outlet: ``counts[a][b]`` paragraphs of outlet a in a cross-outlet cluster with outlet b
    (a == b: all of a's paragraphs in cross-outlet clusters)."""

    outlets: list[str]
    counts: list[list[int]]
    left_out: int  # outlets not shown

    @property
    def peak(self) -> int:
        return max((max(row) for row in self.counts), default=0)


def heatmap(members: Iterable[tuple[str, str]], max_outlets: int) -> Heatmap:
    """The heatmap of (cluster_id, outlet) pairs, one per member paragraph of a cross-outlet cluster, for the
    ``max_outlets`` outlets with the most shared paragraphs."""
    per_cluster: dict[str, Counter[str]] = defaultdict(Counter)
    for cluster_id, outlet in members:
        per_cluster[cluster_id][outlet] += 1
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for outlets in per_cluster.values():
        for a, n in outlets.items():
            for b in outlets:
                counts[a][b] += n
    ranked = sorted(counts, key=lambda o: (-counts[o][o], o))
    shown = ranked[:max_outlets]
    return Heatmap(shown, [[counts[a][b] for b in shown] for a in shown], len(ranked) - len(shown))


def _in(column: str, values: Iterable[str]) -> pc.Expression:
    # Typed, so that no values (a run without clusters) is an empty string array, not a null one.
    return pc.field(column).isin(pa.array(sorted(set(values)), pa.string()))


def _changes(output: Path, run_id: str, shown: set[str], cap: int) -> dict[str, Any] | None:
    """The run's rows of ``cluster_changes`` per kind of change (the most members added first, ``cap`` per
    kind), or None when the output folder has no such table."""
    if CHANGES not in tables.SCHEMAS or not (output / CHANGES).is_dir():
        return None
    rows = tables.open_table(output, CHANGES).to_table(filter=pc.field("run_id") == run_id).to_pylist()
    kinds = {}
    for kind in CHANGE_KINDS:
        of_kind = sorted(
            (r for r in rows if r["change"] == kind), key=lambda r: (-r["n_added"], r["cluster_id"])
        )
        kinds[kind] = {"total": len(of_kind), "rows": of_kind[:cap]}
    return {"kinds": kinds, "shown": shown, "total": len(rows)}


def render(
    output: Path, settings: ReportConfig, run_id: str | None = None, run_date: dt.date | None = None
) -> tuple[dict, str]:
    """The runs row of the chosen run (see :func:`pick_run`) and its report page."""
    if not (output / "runs").is_dir():
        raise ConfigError(f"{output} holds no runs table: pass the output folder of a newsdedup run")
    runs = tables.open_table(output, "runs").to_table().to_pylist()
    if not runs:
        raise ConfigError(f"{output} holds no committed run")
    run = pick_run(runs, run_id, run_date)
    this = pc.field("run_id") == run["run_id"]
    earlier = [r for r in runs if r["finished_at"] < run["finished_at"]]
    previous = max(earlier, key=lambda r: r["finished_at"]) if earlier else None

    clusters = (
        tables.open_table(output, "clusters")
        .to_table(filter=this & (pc.field("kind") == "cross_outlet"))
        .to_pylist()
    )
    clusters.sort(key=lambda c: (-c["n_paragraphs"], -c["n_outlets"], c["cluster_id"]))
    shown = clusters[: settings.max_clusters]
    paragraphs = tables.open_table(output, "paragraphs")
    membership = paragraphs.to_table(
        columns=["cluster_id", "outlet"], filter=this & _in("cluster_id", (c["cluster_id"] for c in clusters))
    )
    members = paragraphs.to_table(
        columns=[
            "paragraph_id",
            "article_id",
            "outlet",
            "text",
            "link",
            "similarity_to_representative",
            "cluster_id",
        ],
        filter=this & _in("cluster_id", (c["cluster_id"] for c in shown)),
    ).to_pylist()
    # An article read by an earlier run (a member carried over from the history) has its row there; sorted
    # so that this run's row, when there is one, comes last and wins.
    rows = (
        tables.open_table(output, "articles")
        .to_table(
            columns=["run_id", "article_id", "title", "published_at"],
            filter=_in("article_id", (m["article_id"] for m in members)),
        )
        .to_pylist()
    )
    articles = {a["article_id"]: a for a in sorted(rows, key=lambda a: a["run_id"] == run["run_id"])}
    by_cluster: dict[str, list[dict]] = defaultdict(list)
    for member in members:
        by_cluster[member["cluster_id"]].append(member)
    rejects = tables.open_table(output, "rejects").to_table(filter=this).to_pylist()
    seconds = [s for s in _fields(run, "seconds_") if s[0] != "total"]
    page = _TEMPLATES.get_template("report.html.j2").render(
        run=run,
        output=output,
        previous=previous,
        diff=config_diff(previous["config_json"], run["config_json"]) if previous else [],
        counts=_fields(run, "n_"),
        seconds=seconds,
        longest_stage=max((value for _, value, _ in seconds), default=0.0) or 1.0,
        config=json.dumps(json.loads(run["config_json"]), indent=1),
        rejects=rejects[:REJECTS_SHOWN],
        n_rejects=len(rejects),
        clusters=[_cluster(c, by_cluster[c["cluster_id"]], articles, settings.max_members) for c in shown],
        n_clusters=len(clusters),
        settings=settings,
        heatmap=heatmap(
            zip(membership["cluster_id"].to_pylist(), membership["outlet"].to_pylist(), strict=True),
            settings.max_outlets,
        ),
        changes=_changes(output, run["run_id"], {c["cluster_id"] for c in shown}, settings.max_clusters),
        changes_table=CHANGES,
        change_kinds=CHANGE_KINDS,
    )
    return run, page


def _fields(run: Mapping[str, Any], prefix: str) -> list[tuple[str, Any, str]]:
    """(name without the prefix, value, doc) of the runs columns starting with ``prefix``."""
    return [
        (field.name.removeprefix(prefix), run[field.name], field.metadata[b"doc"].decode())
        for field in tables.RUNS
        if field.name.startswith(prefix)
    ]


def _cluster(cluster: dict, mine: list[dict], articles: Mapping[str, dict], max_members: int) -> dict:
    """A cluster as the template shows it: its members ``mine`` (representative first, then by publication
    time), each with its article's title and time and its words shared with the representative marked."""
    never = dt.datetime.max.replace(tzinfo=dt.UTC)

    def published(member: dict) -> dt.datetime | None:
        return articles.get(member["article_id"], {}).get("published_at")

    mine.sort(
        key=lambda m: (m["link"] != "representative", published(m) or never, m["outlet"], m["paragraph_id"])
    )
    reference = cluster["representative_text"]
    return {
        **cluster,
        "first_article_id": cluster.get("first_article_id"),
        "n_hidden": max(0, len(mine) - max_members),
        "members": [
            {
                **m,
                "title": articles.get(m["article_id"], {}).get("title"),
                "published_at": published(m),
                "pieces": [(m["text"], False)]
                if m["link"] == "representative"
                else marked(m["text"], reference),
            }
            for m in mine[:max_members]
        ],
    }


def write_report(
    output: Path,
    settings: ReportConfig,
    *,
    lock_timeout: float,
    run_id: str | None = None,
    run_date: dt.date | None = None,
    out: Path | None = None,
) -> Path:
    """Write the report of a committed run (default: the latest) to ``out`` (default: :func:`report_path`,
    put in place under the output folder's lock, waiting at most ``lock_timeout`` seconds for it)."""
    run, page = render(output, settings, run_id, run_date)
    if out is not None:
        _write(out, page)
        return out
    path = report_path(output, run["run_date"], run["run_id"])
    # A replace_date run deletes the runs it replaces, reports included, under this lock: a page written
    # without it could outlive its run.
    with commit.output_lock(output, timeout=lock_timeout, holder=f"the report of run {run['run_id']}"):
        if run["run_id"] not in commit.committed_runs(output):
            raise ConfigError(f"run {run['run_id']} was replaced by a later run of its day: no report")
        _write(path, page)
    return path


def _write(path: Path, page: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A reader never sees half a page; a process killed here leaves only this hidden file, and the page is
    # one `newsdedup report` away.
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(page, encoding="utf-8")
    partial.replace(path)
