"""Typed, validated job configuration.

Every key has a default here and is documented in ``configs/default.yaml``; a test keeps the two in
step. Unknown keys are errors, so a typo in a config file stops the run instead of being ignored.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(ValueError):
    """The configuration or the paths it names cannot be used; the message says what to change."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ColumnsConfig(_Section):
    """Names of the input columns (JSONL keys, CSV headers, Parquet columns, manifest headers)."""

    article_id: str = "article_id"
    outlet: str = "outlet"
    text: str = "text"
    title: str = "title"
    url: str = "url"
    published_at: str = "published_at"


class InputConfig(_Section):
    # A local path, or a URI read through a pyarrow filesystem (s3://, gs://, hdfs://, file://) kept as text:
    # Path would turn "s3://bucket/x" into "s3:/bucket/x".
    path: Path | str = Path("seeds")
    format: Literal["auto", "text", "json", "jsonl", "csv", "parquet"] = "auto"
    manifest: str = "manifest.csv"
    header: bool = True
    outlet_from_url: bool = True
    columns: ColumnsConfig = Field(default_factory=ColumnsConfig)

    @staticmethod
    def is_uri(value: str) -> bool:
        """Whether ``value`` names a place by URI (``scheme://...``) rather than as a local path.

        A scheme has two letters or more, so a Windows drive written ``C://data`` stays a path.
        """
        import re

        return re.match(r"[A-Za-z][A-Za-z0-9+.-]+://", value) is not None

    @field_validator("path", mode="before")
    @classmethod
    def _path_or_uri(cls, value: Any) -> Any:
        # Decided here, not by the union: pydantic would keep every string (a plain folder too) as str.
        if isinstance(value, str) and not cls.is_uri(value):
            return Path(value)
        return value


class OutputConfig(_Section):
    path: Path = Path("output")
    mode: Literal["append", "replace_date"] = "append"
    lock_timeout: float = Field(600.0, gt=0.0)


class ParagraphsConfig(_Section):
    split: Literal["line", "blank_line"] = "line"
    min_words: int = Field(8, ge=1)
    max_chars: int = Field(20_000, ge=100)
    boilerplate_min_articles: int = Field(3, ge=2)
    boilerplate_patterns: list[str] = Field(
        default_factory=lambda: [
            # Credit lines: "Photo by ...", "Source: AlJazeera", "Featured photos: Reuters", "Author: ...".
            r"^(featured )?(photo|photos|image|images|picture|video|source|sources|author|authors|credit|credits"
            r"|copyright)( credits?)?\s*(by\b|:).{0,120}$",
            r"^(©|\(c\) |all rights reserved).{0,160}$",
            # Navigation and ads: "Also read: ...", "Recommended Videos", "Advertisement".
            r"^(also read|read more|read also|related( articles| stories| coverage)?"
            r"|recommended( videos| stories| articles| reading)?|more from|advertisement|sponsored( content)?"
            r"|subscribe|sign up|follow us|share this( article)?|click here|watch)\s*([:|\-\u2013\u2014].{0,160})?$",
            r"^for more (videos|news|updates|stories)\b.{0,160}$",
            r"^(published|updated|last updated)\s*:.{0,60}$",
        ]
    )


class EmbedConfig(_Section):
    model: str = "all-MiniLM-L6-v2"
    adapter: str | None = None
    backend: Literal["torch", "onnx", "onnx-int8"] = "onnx"
    export_path: Path | None = None
    batch_size: int = Field(32, ge=1)
    max_seq_length: int | None = Field(None, ge=8)
    cache: bool = True
    cache_path: Path | None = None
    progress: bool = True


class IndexConfig(_Section):
    kind: Literal["auto", "flat", "hnsw", "ivf"] = "auto"
    exact_max: int = Field(50_000, ge=1)
    approximate: Literal["hnsw", "ivf"] = "ivf"
    k: int = Field(10, ge=1)
    hnsw_m: int = Field(32, ge=4)
    hnsw_ef_construction: int = Field(80, ge=8)
    hnsw_ef_search: int = Field(64, ge=8)
    ivf_nlist: int | None = Field(None, ge=1)
    ivf_nprobe: int = Field(8, ge=1)
    seed: int = 1234
    save: bool = True


class MatchConfig(_Section):
    """Which pairs of paragraphs report the same fact (configs/default.yaml says each key)."""

    candidate_similarity: float = Field(0.5, gt=0.0, lt=1.0)
    lexical: bool = True
    minhash_threshold: float = Field(0.5, gt=0.0, le=1.0)
    minhash_ngram: int = Field(3, ge=1)
    minhash_permutations: int = Field(64, ge=16)
    copy_wording: float = Field(0.8, gt=0.0, le=1.0)
    copy_length_ratio: float = Field(0.5, gt=0.0, le=1.0)
    model: str = "same-fact"
    min_probability: float | None = Field(None, gt=0.0, lt=1.0)
    sentence_probability: float | None = Field(None, ge=0.0, lt=1.0)
    max_days_apart: float | None = Field(7.0, gt=0.0)


class ClusterConfig(_Section):
    min_cluster_size: int = Field(2, ge=2)
    min_samples: int = Field(1, ge=1)
    min_link: float = Field(0.5, gt=0.0, lt=1.0)
    max_component_size: int = Field(50_000, ge=2)
    include_boilerplate: bool = False


class VerifyConfig(_Section):
    model: str | None = None
    min_probability: float = Field(0.5, gt=0.0, lt=1.0)
    max_sentence_pairs: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)


class HistoryConfig(_Section):
    """Which earlier runs a run matches its paragraphs against (configs/default.yaml says each key)."""

    days: int = Field(7, ge=0)


class RayConfig(_Section):
    """Where and how the ``ray`` executor runs the job's parallel steps (configs/default.yaml says each key)."""

    address: str | None = None
    num_cpus: int | None = Field(None, ge=1)
    embed_actors: int | None = Field(None, ge=1)
    cpus_per_actor: int = Field(1, ge=1)
    embed_batch_size: int = Field(512, ge=1)
    max_retries: int = Field(3, ge=0)


class ReportConfig(_Section):
    """The HTML report every run writes (jobs/report.py; configs/default.yaml says each key)."""

    enabled: bool = True
    max_clusters: int = Field(200, ge=1)
    max_members: int = Field(20, ge=2)
    max_outlets: int = Field(30, ge=2)


class JobConfig(_Section):
    """The whole configuration of one ``newsdedup run``."""

    run_date: dt.date | None = None
    threads: int | None = Field(None, ge=1)
    executor: Literal["local", "ray"] = "local"
    ray: RayConfig = Field(default_factory=RayConfig)
    input: InputConfig = Field(default_factory=InputConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    paragraphs: ParagraphsConfig = Field(default_factory=ParagraphsConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    index: IndexConfig = Field(default_factory=IndexConfig)
    match: MatchConfig = Field(default_factory=MatchConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)

    @field_validator("run_date", mode="before")
    @classmethod
    def _parse_date(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip():
            try:
                return dt.date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(f"run_date {value!r} is not a date: use YYYY-MM-DD") from None
        return value

    @model_validator(mode="after")
    def _check_patterns(self) -> JobConfig:
        import re

        for i, pattern in enumerate(self.paragraphs.boilerplate_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(
                    f"paragraphs.boilerplate_patterns[{i}] is not a valid regex: {exc}"
                ) from None
        return self

    def canonical_json(self) -> str:
        """The config as sorted, compact JSON: what the runs table stores and hashes."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {key!r} is not a section")
        node = child
    node[keys[-1]] = value


def parse_override(item: str) -> tuple[str, Any]:
    """Parse one ``--set key=value``; the value is read as YAML, so numbers, booleans and lists work."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. --set match.min_probability=0.6")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML ({exc})") from None
    return key.strip(), value


def config_keys(model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """Every dotted key of the config (``cluster.min_link``, ...), sections included."""
    model = model or JobConfig
    keys = []
    for name, field in model.model_fields.items():
        keys.append(prefix + name)
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            keys += config_keys(section, f"{prefix}{name}.")
    return keys


def _describe(exc: ValidationError, source: str, overridden: set[str]) -> str:
    """One line naming each bad key, where it was set (``--set`` or the file), and what to do."""
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        from_set = any(o == key or o.startswith(key + ".") for o in overridden)
        where = "--set " if from_set else ""
        if err["type"] == "extra_forbidden":
            near = difflib.get_close_matches(key, config_keys(), n=1, cutoff=0.75)
            hint = f"did you mean {near[0]}?" if near else "see configs/default.yaml for the keys"
            problems.append(f"{where}{key}: unknown key; {hint}")
        else:
            problems.append(f"{where}{key}: {err['msg']}")
    if all(p.startswith("--set ") for p in problems):
        return "; ".join(problems)
    return f"invalid config {source}: " + "; ".join(problems)


def load_config(
    path: Path | None = None,
    overrides: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
) -> JobConfig:
    """Read a YAML config file (or the built-in defaults when ``path`` is None) and apply overrides.

    ``overrides`` are ``--set key=value`` strings whose values are read as YAML; ``values`` maps dotted keys
    to values used as they are (``--input 2025-11-21`` is a folder name, not a date). Relative paths stay
    relative to the working directory, as on the command line.
    """
    tree: dict[str, Any] = {}
    source = "(defaults)"
    if path is not None:
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found: pass --config with an existing YAML file")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must be a mapping of sections (see configs/default.yaml)")
        tree = loaded or {}
    overridden = set()
    for item in overrides:
        key, value = parse_override(item)
        _set_dotted(tree, key, value)
        overridden.add(key)
    for key, value in (values or {}).items():
        _set_dotted(tree, key, value)
    try:
        return JobConfig.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source, overridden)) from None
