"""The HTML report (jobs/report.py): written by every run and by ``newsdedup report`` from the tables alone,
self-contained, showing every cross-outlet cluster; and in a real browser (the Debian chromium)."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pyarrow.compute as pc
import pytest

from embeddings.encoder import Encoder
from jobs import cli, commit, tables
from jobs.config import ReportConfig
from jobs.pipeline import RunResult
from jobs.report import CHANGE_KINDS, CHANGES, config_diff, heatmap, marked, report_path
from tests.conftest import SEEDS, read, run_on, write

CHROMIUM = shutil.which("chromium")


class Page(HTMLParser):
    """What a page is made of: its tags with their attributes, and the text of its style and script blocks."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[str] = []  # contents of <style> and <script>
        self._in = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in ("style", "script") else ""

    def handle_data(self, data: str) -> None:
        if self._in:
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = ""

    def ids(self, css_class: str) -> list[str]:
        """The ids of the elements of class ``css_class``, in page order."""
        return [a.get("id") or "" for _, a in self.tags if css_class in (a.get("class") or "").split()]


def outside_references(html: str) -> list[str]:
    """Everything in the page that would load or link something outside it (empty for a self-contained page)."""
    page = Page(html)
    found = [
        f"<{tag} {name}={value}>"
        for tag, attrs in page.tags
        for name, value in attrs.items()
        if name in ("href", "src", "srcset", "action", "xlink:href", "poster", "data", "formaction")
        and not (value or "").startswith("#")
    ]
    found += [
        f"<{tag}>" for tag, _ in page.tags if tag in ("link", "iframe", "img", "object", "embed", "base")
    ]
    found += [m for block in page.inline for m in re.findall(r"url\(|@import|https?:|//[\w.-]+\.\w", block)]
    return found


def cross_outlet(output: Path, run_id: str) -> list[dict]:
    clusters = read(output, "clusters").filter(pc.field("run_id") == run_id).to_pylist()
    return [c for c in clusters if c["kind"] == "cross_outlet"]


@pytest.fixture(scope="session")
def seeds_report(seeds_run: RunResult) -> Path:
    """The report the seeds run wrote (report.enabled is on by default)."""
    return report_path(seeds_run.output, seeds_run.run_date, seeds_run.run_id)


def test_the_run_writes_a_self_contained_report_with_every_cross_outlet_cluster(
    seeds_run: RunResult, seeds_report: Path
) -> None:
    html = seeds_report.read_text(encoding="utf-8")
    assert outside_references(html) == []
    expected = cross_outlet(seeds_run.output, seeds_run.run_id)
    assert len(expected) >= 4  # the seeds share five facts across outlets
    # Every cluster, largest first, each with its anchor and its cluster id.
    order = sorted(expected, key=lambda c: (-c["n_paragraphs"], -c["n_outlets"], c["cluster_id"]))
    assert Page(html).ids("cluster") == [f"c-{c['cluster_id']}" for c in order]
    assert f"This page shows all {len(expected)} of them" in html
    # Each cluster's DuckDB query finds its rows.
    found = Counter()
    for query in re.findall(r"<pre>-- DuckDB: the cluster's paragraphs\n(.*?)</pre>", html, re.S):
        rows = duckdb.connect().sql(unescape(query))
        found.update(row[rows.columns.index("cluster_id")] for row in rows.fetchall())
    assert found == {c["cluster_id"]: c["n_paragraphs"] for c in expected}
    # Who reported first, copy or rewrite, and the words shared with the representative.
    assert "<mark>" in html and 'class="tag rewrite"' in html
    # Who was first is named only when every member is dated (the seeds' 000 is not).
    for c in expected:
        if c["first_outlet"]:
            assert f"reported first by <strong>{c['first_outlet']}</strong>" in html
    undated = sum(c["first_outlet"] is None and c["first_published_at"] is not None for c in expected)
    assert html.count("who was first is unknown (not every member is dated)") == undated
    assert "This is the first committed run in this output folder" in html


def test_the_changes_section_follows_the_cluster_changes_table(
    seeds_run: RunResult, seeds_report: Path, tmp_path: Path
) -> None:
    html = seeds_report.read_text(encoding="utf-8")
    changes = read(seeds_run.output, CHANGES).filter(pc.field("run_id") == seeds_run.run_id).to_pylist()
    assert changes  # a first run's clusters are all new
    for kind in CHANGE_KINDS:
        of_kind = [c for c in changes if c["change"] == kind]
        assert f"<h3>{kind} ({len(of_kind)})</h3>" in html
        for change in of_kind:
            assert change["cluster_id"] in html
    # An output folder written before the table existed gets a page that says so.
    older = tmp_path / "older"
    shutil.copytree(seeds_run.output, older)
    shutil.rmtree(older / CHANGES)
    out = tmp_path / "older.html"
    assert cli.main(["report", "--output", str(older), "--run-id", seeds_run.run_id, "--out", str(out)]) == 0
    assert f"This output folder has no <code>{CHANGES}</code> table" in out.read_text(encoding="utf-8")


def test_report_command_rebuilds_the_page_of_an_earlier_run_from_the_tables(
    seeds_run: RunResult, seeds_report: Path, tmp_path: Path
) -> None:
    out = tmp_path / "again.html"
    argv = ["report", "--output", str(seeds_run.output), "--out", str(out)]
    assert cli.main([*argv, "--run-id", seeds_run.run_id]) == 0
    assert out.read_text(encoding="utf-8") == seeds_report.read_text(encoding="utf-8")
    assert cli.main([*argv, "--run-date", seeds_run.run_date.isoformat()]) == 0
    assert out.read_text(encoding="utf-8") == seeds_report.read_text(encoding="utf-8")


def test_report_command_names_what_is_wrong(seeds_run: RunResult, tmp_path: Path, capsys) -> None:
    assert cli.main(["report", "--output", str(tmp_path)]) == cli.EXIT_USAGE
    assert "holds no runs table" in capsys.readouterr().err
    assert cli.main(["report", "--output", str(seeds_run.output), "--run-id", "nope"]) == cli.EXIT_USAGE
    assert "no committed run nope" in capsys.readouterr().err
    assert (
        cli.main(["report", "--output", str(seeds_run.output), "--run-date", "1999-01-01"]) == cli.EXIT_USAGE
    )
    assert "no committed run on 1999-01-01" in capsys.readouterr().err


def test_a_failed_report_leaves_the_run_committed_then_the_next_report_diffs_the_config(
    encoder: Encoder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    output = tmp_path / "output"
    write(output / tables.REPORT, "a file where the report folder goes")
    first = run_on(tmp_path / "seeds", output, encoder)
    assert f"run {first.run_id} is committed, but its HTML report was not written" in caplog.text
    assert commit.committed_runs(output) == {first.run_id: "run_date=2025-11-22"}

    (output / tables.REPORT).unlink()
    second = run_on(tmp_path / "seeds", output, encoder, "cluster.min_link=0.55")
    html = report_path(output, second.run_date, second.run_id).read_text(encoding="utf-8")
    assert f"Changed since the previous run, <code>{first.run_id}</code>" in html
    assert (
        "<tr><td><code>cluster.min_link</code></td><td><code>0.5</code></td><td><code>0.55</code></td></tr>"
        in html
    )

    # The report folder is the run's like its tables: a report without a committed run is an orphan.
    orphan = write(report_path(output, second.run_date, "20990101T000000Z-00000000"), "<html></html>")
    done = commit.repair(output, lock_timeout=5, holder="test")
    assert done.orphans_removed == [orphan.relative_to(output).as_posix()]
    assert report_path(output, second.run_date, second.run_id).is_file()


def test_replacing_a_day_removes_the_replaced_runs_report(encoder: Encoder, tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    output = tmp_path / "output"
    first = run_on(tmp_path / "seeds", output, encoder)
    second = run_on(tmp_path / "seeds", output, encoder, "output.mode=replace_date")
    assert sorted(p.name for p in (output / tables.REPORT).rglob("*.html")) == [f"{second.run_id}.html"]
    assert first.run_id != second.run_id


def test_a_run_that_rejected_everything_still_gets_its_page(tmp_path: Path) -> None:
    records = '{"article_id": "a", "outlet": "x"}\n{"article_id": "b", "text": "Hello there."}\nnot json\n'
    result = run_on(
        write(tmp_path / "in.jsonl", records), tmp_path / "output", None, "input.outlet_from_url=false"
    )
    assert result.status == "empty"
    html = report_path(result.output, result.run_date, result.run_id).read_text(encoding="utf-8")
    assert "<p>3 record(s) rejected:</p>" in html
    assert "missing text" in html and "missing outlet" in html and "not valid JSON" in html
    assert "This run found no cross-outlet cluster." in html and outside_references(html) == []


def test_cap_is_stated_and_kept(seeds_run: RunResult, tmp_path: Path) -> None:
    from jobs.report import write_report

    settings = ReportConfig(max_clusters=2, max_members=2, max_outlets=2)
    page = write_report(seeds_run.output, settings, lock_timeout=5, out=tmp_path / "p.html")
    html = page.read_text(encoding="utf-8")
    n = len(cross_outlet(seeds_run.output, seeds_run.run_id))
    assert len(Page(html).ids("cluster")) == 2
    assert (
        f"This page shows the first 2 of {n} cross-outlet clusters</strong> (<code>report.max_clusters</code>)"
        in html
    )
    assert len(Page(html).ids("member")) <= 4
    assert "more are left out (<code>report.max_outlets</code>)" in html


def test_words_shared_with_the_representative_are_marked() -> None:
    pieces = marked(
        "On Saturday Venezuela shut its airspace to all flights.",
        "Venezuela closed its airspace on Saturday.",
    )
    assert [text for text, shared in pieces if shared] == ["On Saturday Venezuela", "its airspace"]
    assert "".join(text for text, _ in pieces) == "On Saturday Venezuela shut its airspace to all flights."
    # A short word counts only inside a shared pair of words.
    assert not any(shared for _, shared in marked("with the boats", "the talks went on with them"))


def test_heatmap_counts_paragraphs_shared_with_each_outlet() -> None:
    members = [("c1", "a"), ("c1", "a"), ("c1", "b"), ("c2", "b"), ("c2", "c")]
    h = heatmap(members, max_outlets=3)
    # a and b have 2 shared paragraphs each (ties by name), c 1; a's 2 share cluster c1 with b.
    assert h.outlets == ["a", "b", "c"] and h.left_out == 0
    assert h.counts == [[2, 2, 0], [1, 2, 1], [0, 1, 1]]
    assert heatmap(members, max_outlets=2).left_out == 1


def test_config_diff_lists_changed_added_and_removed_keys() -> None:
    before = '{"cluster": {"min_link": 0.5, "min_samples": 1}, "old": true}'
    after = '{"cluster": {"min_link": 0.55, "min_samples": 1}, "report": {"enabled": true}}'
    assert config_diff(before, after) == [
        ("cluster.min_link", "0.5", "0.55"),
        ("old", "true", "-"),
        ("report.enabled", "-", "true"),
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: apt-get install chromium (.ci/run does)")
def test_the_report_in_a_real_browser(seeds_run: RunResult, seeds_report: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    expected = cross_outlet(seeds_run.output, seeds_run.run_id)
    paragraphs = (
        read(seeds_run.output, "paragraphs").filter(pc.field("run_id") == seeds_run.run_id).to_pylist()
    )
    # A word of the first cluster's representative that some other cluster's members never use.
    first, other = expected[0], expected[-1]
    other_words = {
        w.lower()
        for p in paragraphs
        if p["cluster_id"] == other["cluster_id"]
        for w in re.findall(r"\w+", p["text"])
    }
    word = next(
        w for w in re.findall(r"\w{6,}", first["representative_text"]) if w.lower() not in other_words
    )
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(
                "request",
                lambda r: None if r.url.startswith("file:") else problems.append(f"request {r.url}"),
            )
            page.goto(seeds_report.as_uri())
            page.screenshot(path=tmp_path / "report.png", full_page=True)
            clusters = page.locator("article.cluster")
            assert clusters.count() == len(expected)
            assert all(clusters.nth(i).is_visible() for i in range(clusters.count()))
            assert page.locator("#heatmap-svg rect").count() > 0

            page.fill("#search", word.upper())
            visible = [clusters.nth(i).is_visible() for i in range(clusters.count())]
            holds = [
                word.lower() in (clusters.nth(i).text_content() or "").lower()
                for i in range(clusters.count())
            ]
            assert visible == holds and 0 < sum(visible) < len(expected)
            assert page.locator(f"#c-{first['cluster_id']}").is_visible()

            page.fill("#search", "zzzz-no-such-word")
            assert not any(clusters.nth(i).is_visible() for i in range(clusters.count()))
            assert page.locator("#no-match").is_visible()
            page.fill("#search", "")
            assert all(clusters.nth(i).is_visible() for i in range(clusters.count()))
        finally:
            browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    assert problems == []
