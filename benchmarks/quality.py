"""How good are the clusters? Runs the real job (``run_job``, the same stages and config as
``newsdedup run``) on labeled news data and prints one table, also written to ``docs/quality.md``.

What "the same reporting" means (the README's definition): two paragraphs report the same specific fact,
the same event with the same who, what, where and when, whether one copied the other or rewrote it. A
sister fact (the same kind of event about other people, places, dates or numbers) is not, nor is another
fact of the same story.

- ECB+ (benchmarks/ecbplus.py): each document an article of its own outlet, each sentence a paragraph;
  same-event recall and the sister-event share of the linked labeled pairs; the other-fact share too.
- MRPC test: every sentence is a paragraph of its own article; a judged pair is predicted "same reporting"
  when both sentences end in the same cluster. Recall of the equivalent pairs (rewrites of one fact);
  accuracy too, but MRPC's "not equivalent" mixes other facts with the same fact told with more detail.
- BASIL: a cross_outlet cluster with members from two events is a false merge; each is listed with the
  span of its articles' publication dates.
- Syndication: Reuters-21578 wire stories republished by generated outlets (benchmarks/syndication.py,
  fixed seed); ARI and pairwise precision/recall/F1 over the content paragraphs, and the share of the
  judged pairs of copies of one wire paragraph that the pairs table labels ``copy``.
- Seeds: the facts the five outlets of ``seeds/`` share, labeled by hand (benchmarks/seeds.py).
- Baselines scored on the same paragraphs in the same invocation: MinHash LSH + connected components, and
  the job's own vectors with a plain cosine threshold + connected components.

Usage: ``python -m benchmarks.quality [--config CONFIG ...] [--data ../shared/data]`` (default: compares
configs/default.yaml with its other encoder backends and the ablations in benchmarks/configs/).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds

from benchmarks import corpora, ecbplus, seeds, syndication
from benchmarks.baselines import cosine_labels, minhash_labels
from benchmarks.metrics import pair_scores, partition_scores
from jobs import tables
from jobs.config import JobConfig, load_config
from jobs.pipeline import run_job

ROOT = Path(__file__).resolve().parents[1]
RUN_DATE = "2000-01-01"  # a fixed partition: reruns replace it

# MinHash's one setting for every corpus, like the job's one config: Jaccard 0.5 over word 3-grams, a
# common choice, not fitted. The cosine baseline links at 0.75, the job's threshold before the same-fact
# model (not fitted either).
MINHASH_THRESHOLD = 0.5
MINHASH_NGRAM = 3
COSINE_THRESHOLD = 0.75


@dataclass
class JobOutput:
    """The clustered paragraphs of one run: ids, article, position, text, cluster (None: unclustered)."""

    paragraph_id: list[str]
    article_id: list[str]
    position: list[int]
    text: list[str]
    outlet: list[str]
    cluster_id: list[str | None]
    vectors: np.ndarray  # the job's own vectors of the clustered paragraphs, in paragraph_id order
    published: np.ndarray  # each paragraph's article publication time, seconds since the epoch (NaN: none)
    verify: str  # pairs the verifier judged, and its seconds ("" without a verifier)
    links: dict[tuple[str, str], str | None]  # (paragraph_id_a, paragraph_id_b) -> link, every judged pair

    def labels(self) -> list[str]:
        """Cluster id of each paragraph; an unclustered paragraph is a cluster of its own."""
        return [
            c if c is not None else f"single:{p}"
            for p, c in zip(self.paragraph_id, self.cluster_id, strict=True)
        ]


def run_corpus(name: str, articles: Sequence[dict], config_path: Path, work: Path) -> JobOutput:
    """Write ``articles`` as JSONL and run the job on them with the config at ``config_path``."""
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    source = corpora.write_jsonl(articles, folder / "articles.jsonl")
    return run_input(source, config_path, folder / config_path.stem, work / "_cache")


def _job_config(source: Path, config_path: Path, output: Path, cache: Path) -> JobConfig:
    """The config at ``config_path`` run on ``source`` into ``output`` (replacing the fixed day), sharing ``cache``."""
    return load_config(
        config_path,
        values={
            "input.path": source,
            "output.path": output,
            "output.mode": "replace_date",
            "run_date": RUN_DATE,
            "embed.cache_path": cache,
            "embed.progress": False,
        },
    )


def run_input(source: Path, config_path: Path, output: Path, cache: Path) -> JobOutput:
    """Run the job on ``source`` and read back what it wrote (only paragraphs that were clustered or could be)."""
    config = _job_config(source, config_path, output, cache)
    result = run_job(config)
    verify = ""
    if config.verify.model is not None:
        judged = tables.open_table(output, "pairs")
        n = judged.count_rows(
            filter=(pc.field("run_id") == result.run_id) & pc.field("verifier_probability").is_valid()
        )
        verify = f"{n:,} in {result.seconds['verify']:.0f} s"
    run = pc.field("run_id") == result.run_id
    par = tables.open_table(output, "paragraphs")
    par = par.to_table(filter=run & pc.field("excluded_reason").is_null()).sort_by("paragraph_id")
    index_dir = output / tables.INDEX / f"run_date={RUN_DATE}"
    ids = ds.dataset(index_dir / f"{result.run_id}.ids.parquet").to_table().column("paragraph_id").to_pylist()
    index = faiss.read_index(str(index_dir / f"{result.run_id}.faiss"))
    vectors = index.reconstruct_n(0, index.ntotal)
    row_of = {p: i for i, p in enumerate(ids)}
    col = par.to_pydict()
    judged = tables.open_table(output, "pairs").to_table(
        columns=["paragraph_id_a", "paragraph_id_b", "link"], filter=run
    )
    links = dict(
        zip(
            zip(judged["paragraph_id_a"].to_pylist(), judged["paragraph_id_b"].to_pylist(), strict=True),
            judged["link"].to_pylist(),
            strict=True,
        )
    )
    articles = tables.open_table(output, "articles")
    dates = articles.to_table(columns=["article_id", "published_at"], filter=run).to_pydict()
    published_at = dict(zip(dates["article_id"], dates["published_at"], strict=True))
    published = [published_at[a] for a in col["article_id"]]
    return JobOutput(
        col["paragraph_id"],
        col["article_id"],
        col["position"],
        col["text"],
        col["outlet"],
        col["cluster_id"],
        vectors[[row_of[p] for p in col["paragraph_id"]]],
        np.array([np.nan if t is None else t.timestamp() for t in published], dtype=np.float64),
        verify,
        links,
    )


def methods(
    name: str, articles: Sequence[dict], configs: Sequence[Path], work: Path
) -> tuple[JobOutput, dict, dict, dict]:
    """Cluster labels of every method on ``articles``: the job under each config, then the baselines.

    The baselines use the first config's vectors, k and max_days_apart. All configs must keep the same
    paragraphs. Also returns, per method, the pairs the verifier judged and its seconds ("" where none ran),
    and the job's output under each config.
    """
    outputs = [run_corpus(name, articles, path, work) for path in configs]
    first = outputs[0]
    for path, out in zip(configs, outputs, strict=True):
        if out.paragraph_id != first.paragraph_id:
            raise ValueError(
                f"{path} selects other paragraphs to cluster than {configs[0]} (its paragraphs section "
                "differs): compare configs that share paragraphs settings, or run them separately"
            )
    config = load_config(configs[0])
    window = {"published": first.published, "max_days_apart": config.match.max_days_apart}
    labels = {f"newsdedup ({path.name})": out.labels() for path, out in zip(configs, outputs, strict=True)}
    labels["minhash"] = [
        f"m{x}"
        for x in minhash_labels(first.text, threshold=MINHASH_THRESHOLD, ngram=MINHASH_NGRAM, **window)
    ]
    labels["cosine_components"] = [
        f"c{x}" for x in cosine_labels(first.vectors, threshold=COSINE_THRESHOLD, k=config.index.k, **window)
    ]
    verified = {f"newsdedup ({path.name})": out.verify for path, out in zip(configs, outputs, strict=True)}
    return (
        first,
        labels,
        verified,
        {f"newsdedup ({path.name})": out for path, out in zip(configs, outputs, strict=True)},
    )


def eval_mrpc(data: Path, configs: Sequence[Path], work: Path) -> list[dict]:
    """Accuracy etc. on MRPC test pairs: a pair is "same" when both sentences share a cluster."""
    folder = data / "mrpc"
    pairs = corpora.mrpc_pairs(folder, "test")
    out, labeled, verified, _ = methods("mrpc_test", corpora.mrpc_articles(folder, pairs), configs, work)
    rows = []
    for method, labels in labeled.items():
        s = pair_scores(pairs.label, same_cluster(pairs, out.article_id, labels))
        rows.append(
            {"corpus": "MRPC test", "method": method, "accuracy": s.accuracy, "precision": s.precision,
             "recall": s.recall, "f1": s.f1, "verifier_pairs": verified.get(method, "")}
        )  # fmt: skip
    return rows


def same_cluster(pairs: corpora.PairSet, article_ids: Sequence[str], labels: Sequence[str]) -> list[bool]:
    """For each pair: do both sentences (one-paragraph articles) share a cluster?

    A sentence the job excluded (too short) is in no cluster: its pairs are predicted "not same".
    """
    label_of = dict(zip(article_ids, labels, strict=True))
    return [
        a in label_of and b in label_of and label_of[a] == label_of[b]
        for a, b in zip(pairs.a, pairs.b, strict=True)
    ]


def eval_basil(data: Path, configs: Sequence[Path], work: Path) -> list[dict]:
    """Cross_outlet clusters on BASIL, and how many mix two events (false merges); then each false merge:
    its events, paragraphs, how far apart its articles were published, and its first member's text."""
    corpus = corpora.basil_corpus(data / "basil")
    out, labeled, verified, _ = methods("basil", corpus.articles, configs, work)
    events = [corpus.group_of_article[a] for a in out.article_id]
    rows, merges = [], []
    for method, labels in labeled.items():
        cross, merged = false_merges(labels, out.outlet, events)
        rows.append(
            {"corpus": "BASIL", "method": method, "cross_outlet_clusters": cross, "false_merges": len(merged),
             "false_merge_share": len(merged) / cross if cross else 0.0, "within_event": cross - len(merged),
             "verifier_pairs": verified.get(method, "")}
        )  # fmt: skip
        for group in merged:
            published = out.published[group]
            published = published[~np.isnan(published)]  # an undated article says nothing about the span
            merges.append(
                {"corpus": "BASIL false merges", "method": method, "events": len({events[i] for i in group}),
                 "paragraphs": len(group), "days_apart": int(np.ptp(published) // 86_400) if published.size else "",
                 "first_member": out.text[group[0]][:80].replace("|", "/")}
            )  # fmt: skip
    return rows + merges


def false_merges(
    labels: Sequence[str], outlets: Sequence[str], events: Sequence[str]
) -> tuple[int, list[list[int]]]:
    """The number of cross_outlet clusters, and the members of those whose members come from two or more
    events; one label per paragraph."""
    members: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        members.setdefault(label, []).append(i)
    cross = [group for group in members.values() if len({outlets[i] for i in group}) >= 2]
    return len(cross), [group for group in cross if len({events[i] for i in group}) >= 2]


def eval_syndication(data: Path, configs: Sequence[Path], work: Path, seed: int) -> list[dict]:
    """ARI and pairwise P/R/F1 on the generated syndication corpus, over its content paragraphs; and of the
    judged pairs that are two copies of one wire paragraph, the share the pairs table calls ``copy``."""
    stories = corpora.load_stories(data / "reuters21578")
    corpus = syndication.generate(stories, seed=seed)
    out, labeled, verified, outputs = methods("syndication", corpus.articles, configs, work)
    truth_of = {
        (article_id, position): label
        for article_id, labels in corpus.labels.items()
        for position, label in enumerate(labels)
    }
    # Content paragraphs the job did not cluster (none should be excluded: the generator keeps >= 8 words)
    # count as singletons; added text (bylines, boilerplate) has no truth and is left out of the scores.
    keep = [
        i for i, key in enumerate(zip(out.article_id, out.position, strict=True)) if truth_of[key] is not None
    ]
    n_content = sum(label is not None for label in truth_of.values())
    truth = [truth_of[(out.article_id[i], out.position[i])] for i in keep]
    source = {
        p: truth_of[(a, n)] for p, a, n in zip(out.paragraph_id, out.article_id, out.position, strict=True)
    }
    rows = []
    for method, labels in labeled.items():
        s = partition_scores(truth, [labels[i] for i in keep])
        copies = ""
        if method in outputs:
            kinds = [
                link
                for (a, b), link in outputs[method].links.items()
                if source.get(a) and source.get(a) == source.get(b)
            ]
            copies = f"{kinds.count('copy') / len(kinds):.3f} of {len(kinds):,}" if kinds else ""
        rows.append({"corpus": f"Syndication (seed {seed})", "method": method, **s, "scored": len(keep),
                     "content_paragraphs": n_content, "copies_labeled_copy": copies,
                     "verifier_pairs": verified.get(method, "")})  # fmt: skip
    return rows


def eval_ecbplus(data: Path, configs: Sequence[Path], work: Path) -> list[dict]:
    """Same-event recall, sister-event share and other-fact share on ECB+ (benchmarks/ecbplus.py)."""
    documents = ecbplus.load(data / "ecbplus")
    pairs = ecbplus.labeled_pairs(documents)
    out, labeled, verified, _ = methods("ecbplus", ecbplus.articles(documents), configs, work)
    rows = []
    for method, labels in labeled.items():
        cluster_of = {
            (a, n): label if not label.startswith("single:") else None
            for a, n, label in zip(out.article_id, out.position, labels, strict=True)
        }
        rows.append({"corpus": "ECB+", "method": method, **ecbplus.score(pairs, cluster_of),
                     "verifier_pairs": verified.get(method, "")})  # fmt: skip
    return rows


def eval_seeds(configs: Sequence[Path], work: Path) -> list[dict]:
    """The shared facts of seeds/ (benchmarks/seeds_facts.yaml) each config finds, and what it joins wrongly."""
    rows = []
    for path in configs:
        result = run_job(_job_config(ROOT / "seeds", path, work / "seeds" / path.stem, work / "_cache"))
        s = seeds.score(result.output, result.run_id)
        rows.append(
            {"corpus": "Seeds", "method": f"newsdedup ({path.name})", "facts_found": f"{len(s.found)} of {s.facts}",
             "missing": "; ".join(s.missing), "fact_pair_recall": s.recall, "false_links": len(s.false_links),
             "boilerplate_in_cross_outlet": s.boilerplate_in_cross_outlet}
        )  # fmt: skip
    return rows


def _fmt(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown(rows: Sequence[dict], header: str) -> str:
    """One table per corpus, methods as rows."""
    parts = [header]
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        group = [r for r in rows if r["corpus"] == corpus]
        keys = [k for k in group[0] if k != "corpus"]
        parts += [f"### {corpus}", "", "| " + " | ".join(keys) + " |", "|" + " --- |" * len(keys)]
        parts += ["| " + " | ".join(_fmt(r[k]) for k in keys) + " |" for r in group]
        parts.append("")
    return "\n".join(parts)


def _commit() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        return head.stdout.strip() + ("+uncommitted" if dirty else "")
    except OSError:
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        type=Path,
        nargs="+",
        default=[
            ROOT / "configs" / "default.yaml",
            ROOT / "benchmarks" / "configs" / "torch.yaml",
            ROOT / "benchmarks" / "configs" / "onnx-int8.yaml",
            ROOT / "benchmarks" / "configs" / "no-window.yaml",
            ROOT / "benchmarks" / "configs" / "no-lexical.yaml",
            ROOT / "benchmarks" / "configs" / "sentences.yaml",
            ROOT / "benchmarks" / "configs" / "cut-0.5.yaml",
            ROOT / "benchmarks" / "configs" / "loose.yaml",
            ROOT / "benchmarks" / "configs" / "verifier.yaml",
        ],
        help="configs to compare (the first also sets the baselines' vectors, k and date window)",
    )
    parser.add_argument(
        "--data", type=Path, default=corpora.DATA, help="default: ../shared/data or $NEWSDEDUP_DATA"
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/newsdedup-quality"), help="job inputs/outputs, cache"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "quality.md")
    parser.add_argument("--seed", type=int, default=0, help="syndication generator seed")
    corpora_names = ["ecbplus", "mrpc", "basil", "syndication", "seeds"]
    parser.add_argument("--only", nargs="*", choices=corpora_names, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    hashes = ", ".join(f"{p.name} (hash {load_config(p).config_hash()})" for p in args.config)
    wanted = set(args.only or corpora_names)
    rows: list[dict] = []
    if "ecbplus" in wanted:
        rows += eval_ecbplus(args.data, args.config, args.work)
    if "mrpc" in wanted:
        rows += eval_mrpc(args.data, args.config, args.work)
    if "basil" in wanted:
        rows += eval_basil(args.data, args.config, args.work)
    if "syndication" in wanted:
        rows += eval_syndication(args.data, args.config, args.work, args.seed)
    if "seeds" in wanted:
        rows += eval_seeds(args.config, args.work)
    header = (
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {_commit()}, configs {hashes}, "
        "by `python -m benchmarks.quality`.\n"
    )
    text = markdown(rows, header)
    print(text)
    if args.only is None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(_DOC_INTRO + text, encoding="utf-8")
    return 0


_DOC_INTRO = """# Quality

Written by `python -m benchmarks.quality` (the module docstring says what each corpus measures); do not
edit by hand.

**The definition measured.** Two paragraphs are the same reporting when they report the same specific
fact: the same event, with the same who, what, where and when, names and numbers agreeing, whether one copied
the other (`copy`) or told it in other words (`rewrite`). A sister fact (the same kind of event about other
people, places, dates or numbers) is not the same reporting, nor is another fact of the same story.

Methods: `newsdedup (<config>)` is the job run with that config; `minhash` is MinHash LSH (Jaccard >= 0.5
over word 3-grams) + connected components; `cosine_components` is the first config's vectors with a plain
cosine of 0.75 (the job's threshold before the same-fact model) on the kNN graph + connected components.
Both baselines link only paragraphs published within the first config's `match.max_days_apart`, as the job
does; `no-window.yaml` is the default without it (MRPC and ECB+ have no dates). Every method scores the same
paragraphs: those the job clusters (8+ words, not boilerplate). `verifier_pairs`: the pairs the pair
verifier judged in that run, and the seconds it took (2 cores, PyTorch; the runs go one after another).

What was fitted where: the same-fact model and its cut on training data only (`python -m
benchmarks.fit_same_fact`: ECB+ as provided, the odd-numbered topics, which are also scored below; MRPC
train; STS-B train news pairs; Reuters-21578 stories outside the syndication benchmark); the verifier of
`verifier.yaml` on MRPC train (`python -m benchmarks.fit --verifier`). ECB+ is both fitted on and scored,
because only its provided topics exist here: `fit_same_fact` prints its held-out accuracy with whole topics
held out, the figure to trust for unseen events. MRPC test, BASIL, the syndication corpus and the seeds are
never fitted on; `match.candidate_similarity` (0.5), `cluster.min_link` (0.5) and `match.max_days_apart` (7)
are not fitted. With many small clusters, ARI is close to pairwise F1 by construction (both count pairs),
so the two columns are not independent evidence.

"""


if __name__ == "__main__":
    sys.exit(main())
