"""The output tables: their pyarrow schemas, declared once and used by the writer, the tests and the docs.

Layout: ``<output>/<table>/run_date=YYYY-MM-DD/<run_id>.parquet`` (Hive partitions). ``run_date`` lives in the
path only, so DuckDB, Spark and pyarrow add it as a column when they read the folder. Folders starting with
``_`` (the staging area, the commit journal, the saved indexes, the embedding cache) are skipped by those
readers. How a run's files get there all at once is jobs/commit.py's business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

INDEX = "_index"  # saved FAISS indexes: <output>/_index/run_date=.../<run_id>.faiss
# What later runs match against (jobs/history.py): <output>/_history/run_date=.../<run_id>.parquet (the run's
# own paragraphs and their vectors) and <run_id>.links.parquet (the judged pairs inside its clusters).
HISTORY = "_history"
# HTML reports (jobs/report.py): <output>/report/run_date=.../<run_id>.html. Not a table: it holds no Parquet,
# and every reader names the table folder it reads.
REPORT = "report"
PARTITION = pa.field(
    "run_date", pa.date32(), nullable=False, metadata={"doc": "Day the run is for (partition)."}
)


def _f(name: str, type_: pa.DataType, doc: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"doc": doc})


_TS = pa.timestamp("us", tz="UTC")
_RUN_ID = _f("run_id", pa.string(), "Run that wrote the row; joins every table.")

RUNS = pa.schema(
    [
        _RUN_ID,
        _f("started_at", _TS, "When the run started (UTC)."),
        _f("finished_at", _TS, "When the run committed its tables (UTC)."),
        _f("status", pa.string(), "'succeeded', or 'empty' when no article passed ingest."),
        _f("config_json", pa.string(), "Full effective config, canonical JSON."),
        _f(
            "config_hash",
            pa.string(),
            "SHA-256 prefix of config_json: equal hashes mean identical settings.",
        ),
        _f("input_path", pa.string(), "Input path read."),
        _f("model", pa.string(), "Embedding model as configured."),
        _f(
            "model_identity",
            pa.string(),
            "Digest of the model files and max_seq_length, plus +adapter-<digest> with an adapter; null if "
            "nothing was embedded.",
            True,
        ),
        _f(
            "index_kind",
            pa.string(),
            "FAISS index used: flat, hnsw or ivf; null if nothing was indexed.",
            True,
        ),
        _f("threads", pa.int32(), "CPU threads used by PyTorch and FAISS."),
        _f(
            "executor",
            pa.string(),
            "Where the parallel steps ran: local or ray; null for runs before executors existed.",
            True,
        ),
        _f(
            "executor_resources",
            pa.string(),
            "What the executor had, as JSON: cpus and nodes, and for ray the address, memory_gib, "
            "embed_actors, cpus_per_actor and the Ray version.",
            True,
        ),
        _f("n_input_files", pa.int64(), "Input files read."),
        _f("n_articles", pa.int64(), "Articles accepted."),
        _f("n_rejects", pa.int64(), "Records rejected (see the rejects table)."),
        _f("n_paragraphs", pa.int64(), "Paragraphs of accepted articles."),
        _f("n_boilerplate", pa.int64(), "Paragraphs flagged as boilerplate."),
        _f(
            "n_clustered_candidates",
            pa.int64(),
            "Paragraphs embedded and clustered (not short, not boilerplate).",
        ),
        _f("n_unique_texts", pa.int64(), "Distinct normalised texts among the candidates."),
        _f("n_cache_hits", pa.int64(), "Distinct texts whose vectors came from the embedding cache."),
        _f("n_embedded", pa.int64(), "Distinct texts the model encoded in this run."),
        _f(
            "n_truncated",
            pa.int64(),
            "Candidates embedded cut: over the model's token limit or paragraphs.max_chars.",
        ),
        _f(
            "n_pairs",
            pa.int64(),
            "Candidate pairs judged (the pairs table): neighbours at or above match.candidate_similarity and "
            "paragraphs sharing wording, within the date window.",
        ),
        _f(
            "n_pairs_apart",
            pa.int64(),
            "Candidate pairs left out: their articles were published more than match.max_days_apart apart.",
        ),
        _f("n_links_copy", pa.int64(), "Pairs judged copies: most of their wording is shared."),
        _f("n_links_rewrite", pa.int64(), "Pairs judged the same fact in other words."),
        _f("n_pairs_rejected", pa.int64(), "Rewrites the pair verifier judged not the same (not clustered)."),
        _f("n_clusters", pa.int64(), "Clusters found."),
        _f("n_cross_outlet_clusters", pa.int64(), "Clusters spanning two or more outlets."),
        _f("seconds_ingest", pa.float64(), "Seconds reading the input."),
        _f("seconds_paragraphs", pa.float64(), "Seconds splitting, normalising and flagging."),
        _f(
            "seconds_embed",
            pa.float64(),
            "Seconds loading the model and embedding (cache look-ups included).",
        ),
        _f(
            "seconds_index",
            pa.float64(),
            "Seconds building the FAISS index, searching neighbours and finding the candidate pairs.",
        ),
        _f(
            "seconds_history",
            pa.float64(),
            "Seconds reading the earlier runs' paragraphs, vectors and clusters (history.days).",
        ),
        _f("seconds_match", pa.float64(), "Seconds weighing the evidence of each candidate pair."),
        _f("seconds_verify", pa.float64(), "Seconds loading the pair verifier and judging pairs (0: none)."),
        _f("seconds_cluster", pa.float64(), "Seconds clustering the linked pairs."),
        _f("seconds_write", pa.float64(), "Seconds building and staging the tables and the index."),
        _f("seconds_total", pa.float64(), "Seconds from start to commit."),
        _f(
            "versions",
            pa.struct(
                [
                    pa.field(name, pa.string())
                    for name in (
                        "newsdedup",
                        "python",
                        "torch",
                        "sentence_transformers",
                        "transformers",
                        "faiss",
                        "hdbscan",
                        "pyarrow",
                        "numpy",
                    )
                ]
            ),
            "Versions of Python and the packages that decide the results.",
        ),
    ]
)

ARTICLES = pa.schema(
    [
        _RUN_ID,
        _f("article_id", pa.string(), "Article id from the input (file path without .txt for text folders)."),
        _f("outlet", pa.string(), "Publishing outlet."),
        _f("title", pa.string(), "Title, when the input has one.", nullable=True),
        _f("url", pa.string(), "URL, when the input has one.", nullable=True),
        _f("published_at", _TS, "Publication time (UTC), when the input has one.", nullable=True),
        _f("source", pa.string(), "File (and line or row) the article was read from."),
        _f("n_paragraphs", pa.int32(), "Paragraphs in the article."),
        _f("n_paragraphs_shared", pa.int32(), "Paragraphs in a cross_outlet cluster."),
    ]
)

PARAGRAPHS = pa.schema(
    [
        _RUN_ID,
        _f("paragraph_id", pa.string(), "'<article_id>:<position, 4 digits>': stable across runs."),
        _f("article_id", pa.string(), "Article the paragraph belongs to."),
        _f("outlet", pa.string(), "Outlet of the article."),
        _f("position", pa.int32(), "0-based position among the article's non-empty paragraphs."),
        _f("text", pa.string(), "Paragraph as written (surrounding whitespace stripped)."),
        _f("text_hash", pa.string(), "BLAKE2b-128 of the normalised text: equal for exact duplicates."),
        _f("n_words", pa.int32(), "Words in the normalised text."),
        _f(
            "n_tokens",
            pa.int32(),
            "Model tokens, capped at max_seq_length + 1; null when not embedded.",
            True,
        ),
        _f("truncated", pa.bool_(), "Embedded text was cut (token limit or paragraphs.max_chars).", True),
        _f("is_boilerplate", pa.bool_(), "Credit, ad or navigation line, or repeated within one outlet."),
        _f("boilerplate_reason", pa.string(), "'pattern' or 'repeated_in_outlet'; null otherwise.", True),
        _f(
            "excluded_reason",
            pa.string(),
            "Why not clustered: 'short' or 'boilerplate'; null if clustered.",
            True,
        ),
        _f(
            "cluster_id",
            pa.string(),
            "Cluster of paragraphs reporting the same fact (its id lasts across runs: README, Scheduled "
            "runs); null when unclustered.",
            True,
        ),
        _f(
            "link",
            pa.string(),
            "How the member shares its cluster's reporting: 'representative'; 'copy' (its wording, through "
            "copies of copies); 'rewrite' (the same fact in other words); null when unclustered.",
            True,
        ),
        _f("similarity_to_representative", pa.float32(), "Cosine to the cluster's representative.", True),
        _f(
            "origin_run_id",
            pa.string(),
            "Run that read the paragraph: this run, or for a paragraph of an earlier day that joined one of "
            "this run's clusters (history), the run of that day.",
        ),
        _f("origin_run_date", pa.date32(), "run_date of origin_run_id."),
    ]
)

CLUSTERS = pa.schema(
    [
        _RUN_ID,
        _f(
            "cluster_id",
            pa.string(),
            "The id of the earlier cluster it continues (history), else a digest of the sorted member "
            "paragraph ids: same input and history, same id.",
        ),
        _f("kind", pa.string(), "'cross_outlet' (two or more outlets) or 'single_outlet'."),
        _f("n_paragraphs", pa.int32(), "Member paragraphs."),
        _f("n_articles", pa.int32(), "Distinct articles among the members."),
        _f("n_outlets", pa.int32(), "Distinct outlets among the members."),
        _f("outlets", pa.list_(pa.string()), "Distinct outlets, sorted."),
        _f(
            "link",
            pa.string(),
            "'copy' when every member copies the representative's wording, else 'rewrite' (some member "
            "reports the same fact in other words).",
        ),
        _f("n_copies", pa.int32(), "Members other than the representative that copy its wording."),
        _f("n_rewrites", pa.int32(), "Members that report the same fact in other words."),
        _f(
            "representative_paragraph_id",
            pa.string(),
            "Member with the most link weight to the others (identical text counting fully).",
        ),
        _f("representative_text", pa.string(), "Text of the representative."),
        _f("mean_similarity", pa.float32(), "Mean cosine of the other members to the representative."),
        _f("min_similarity", pa.float32(), "Lowest cosine of a member to the representative."),
        _f(
            "first_published_at",
            _TS,
            "Earliest publication time among member articles, over the whole history.",
            True,
        ),
        _f(
            "first_outlet",
            pa.string(),
            "Outlet of the earliest member article over the whole history; null unless every member is dated.",
            True,
        ),
        _f(
            "first_article_id",
            pa.string(),
            "Earliest member article over the whole history; null unless every member is dated.",
            True,
        ),
        _f(
            "first_seen_at",
            _TS,
            "Midnight UTC of the first run_date on which the cluster (or an earlier cluster it continues) held "
            "a member.",
        ),
        _f("n_runs", pa.int32(), "Runs in which the cluster appeared, this one included."),
    ]
)

PAIRS = pa.schema(
    [
        _RUN_ID,
        _f("paragraph_id_a", pa.string(), "Lesser paragraph id of the pair."),
        _f("paragraph_id_b", pa.string(), "Greater paragraph id of the pair."),
        _f("similarity", pa.float32(), "Cosine similarity of the two paragraphs' vectors."),
        _f("cross_outlet", pa.bool_(), "The two paragraphs come from different outlets."),
        _f(
            "same_fact_probability",
            pa.float32(),
            "The same-fact model's probability that both report the same fact (match.model).",
        ),
        _f(
            "link",
            pa.string(),
            "'copy' (most wording shared), 'rewrite' (the same fact in other words) or null: not the same "
            "reporting (another fact, a sister fact, or numbers or weekdays that conflict).",
            True,
        ),
        _f("cluster_id", pa.string(), "Cluster holding both paragraphs; null otherwise.", True),
        _f(
            "verifier_probability",
            pa.float32(),
            "The pair verifier's probability that both report the same thing (verify.model); rewrites under "
            "verify.min_probability are not linked. Null: not judged (no verifier, or a copy).",
            True,
        ),
    ]
)

REJECTS = pa.schema(
    [
        _RUN_ID,
        _f("source", pa.string(), "Input file of the rejected record."),
        _f("record", pa.string(), "Where in the file: 'line N', 'row N', empty for a whole file."),
        _f("reason", pa.string(), "What is wrong and what to do."),
    ]
)

CLUSTER_CHANGES = pa.schema(
    [
        _RUN_ID,
        _f("cluster_id", pa.string(), "The cluster, as this run names it."),
        _f(
            "change",
            pa.string(),
            "'new' (no earlier cluster), 'grown' (members added), 'merged' (earlier clusters joined) or "
            "'split' (an earlier cluster's members went to several clusters).",
        ),
        _f("n_paragraphs", pa.int32(), "Members after this run."),
        _f("n_added", pa.int32(), "Members that were not in the cluster (or a cluster it absorbed) before."),
        _f("added_outlets", pa.list_(pa.string()), "Distinct outlets of the added members, sorted."),
        _f(
            "related_ids",
            pa.list_(pa.string()),
            "merged: the earlier cluster ids absorbed into this one; split: the other clusters the earlier "
            "cluster split into; empty otherwise.",
        ),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "runs": RUNS,
    "articles": ARTICLES,
    "paragraphs": PARAGRAPHS,
    "clusters": CLUSTERS,
    "pairs": PAIRS,
    "rejects": REJECTS,
    "cluster_changes": CLUSTER_CHANGES,
}

# The history store (not a table readers see: its folder starts with "_"). One row per paragraph of the run's
# own articles, with what a later run needs to match against it without reading the input or embedding again.
HISTORY_PARAGRAPHS = pa.schema(
    [
        pa.field("paragraph_id", pa.string()),
        pa.field("article_id", pa.string()),
        pa.field("outlet", pa.string()),
        pa.field("title", pa.string()),
        pa.field("url", pa.string()),
        pa.field("published_at", _TS),
        pa.field("source", pa.string()),
        pa.field("position", pa.int32()),
        pa.field("text", pa.string()),
        pa.field("norm_text", pa.string()),
        pa.field("text_hash", pa.string()),
        pa.field("n_words", pa.int32()),
        pa.field("boilerplate_reason", pa.string()),
        pa.field("excluded_reason", pa.string()),
        pa.field("n_tokens", pa.int32()),
        pa.field("truncated", pa.bool_()),
        pa.field("vector", pa.list_(pa.float32())),  # null when not clustered
    ]
)
# The judged pairs of a run inside one of its clusters, with the link codes of jobs/same_fact.py.
HISTORY_LINKS = pa.schema(
    [
        pa.field("paragraph_id_a", pa.string()),
        pa.field("paragraph_id_b", pa.string()),
        pa.field("similarity", pa.float32()),
        pa.field("same_fact", pa.float32()),
        pa.field("link", pa.int8()),
        pa.field("probability", pa.float32()),  # NaN: not judged by the verifier
    ]
)


def dataset_schema(name: str) -> pa.Schema:
    """The schema a reader sees for table ``name``: the file schema plus the ``run_date`` partition column."""
    return SCHEMAS[name].append(PARTITION)


def open_table(output: Path, name: str) -> ds.Dataset:
    """Table ``name`` of every run under the output folder ``output``, read with its declared schema."""
    return ds.dataset(output / name, schema=dataset_schema(name), partitioning="hive")


def to_table(name: str, columns: Mapping[str, Any]) -> pa.Table:
    """Build table ``name`` from column lists/arrays; a missing, extra or mistyped column is an error."""
    schema = SCHEMAS[name]
    if set(columns) != set(schema.names):
        raise ValueError(f"table {name}: columns {sorted(columns)} do not match the schema {schema.names}")
    return pa.Table.from_pydict({field.name: columns[field.name] for field in schema}, schema=schema)


def partition_path(root: Path, table: str, run_date: dt.date, run_id: str) -> Path:
    return root / table / f"run_date={run_date.isoformat()}" / f"{run_id}.parquet"


def markdown_reference() -> str:
    """The table reference in the README, generated from the schemas (a test keeps the README in step)."""
    lines = []
    for name in SCHEMAS:
        lines += [f"#### `{name}`", "", "| column | type | description |", "| --- | --- | --- |"]
        for field in dataset_schema(name):
            nullable = ", nullable" if field.nullable else ""
            doc = field.metadata[b"doc"].decode()
            lines.append(f"| `{field.name}` | `{field.type}`{nullable} | {doc} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
