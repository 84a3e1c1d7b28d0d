from pathlib import Path

import pytest
import yaml

from jobs.config import ConfigError, JobConfig, load_config
from jobs.same_fact import SameFactModel

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_documents_every_key_with_its_default() -> None:
    documented = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert JobConfig.model_validate(documented).model_dump() == JobConfig().model_dump()

    def keys(tree: dict, prefix: str = "") -> set[str]:
        out = set()
        for key, value in tree.items():
            out.add(prefix + key)
            if isinstance(value, dict):
                out |= keys(value, prefix + key + ".")
        return out

    assert keys(documented) == keys(JobConfig().model_dump(mode="json"))


def test_overrides_are_typed_and_validated(tmp_path: Path) -> None:
    config = load_config(
        ROOT / "configs" / "default.yaml",
        ["match.candidate_similarity=0.6", "index.k=5", "run_date=2025-01-02", "match.min_probability=0.7"],
    )
    assert config.match.candidate_similarity == 0.6
    assert config.match.min_probability == 0.7
    assert config.index.k == 5
    assert str(config.run_date) == "2025-01-02"
    with pytest.raises(ConfigError, match=r"match\.candidate_similarity"):
        load_config(None, ["match.candidate_similarity=1.5"])
    with pytest.raises(ConfigError, match=r"cluster\.min_link"):
        load_config(None, ["cluster.min_link=0"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["match.candidate_similarity"])


def test_unknown_key_is_an_error_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster:\n  treshold: 0.8\n")
    with pytest.raises(ConfigError, match=r"cluster\.treshold: unknown key"):
        load_config(bad)


def test_bad_files_and_values_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        load_config(None, ["run_date=22/11/2025"])
    with pytest.raises(ConfigError, match=r"boilerplate_patterns\[0\]"):
        load_config(None, ["paragraphs.boilerplate_patterns=['(unclosed']"])


def test_config_hash_follows_content() -> None:
    assert JobConfig().config_hash() == JobConfig().config_hash()
    assert JobConfig().config_hash() != load_config(None, ["match.candidate_similarity=0.9"]).config_hash()


def test_plain_values_are_not_read_as_yaml() -> None:
    config = load_config(
        None, values={"input.path": "2025-11-21", "output.path": "news #1", "run_date": "2025-11-21"}
    )
    assert str(config.input.path) == "2025-11-21" and str(config.output.path) == "news #1"
    assert str(config.run_date) == "2025-11-21"
    with pytest.raises(ConfigError, match=r"input\.path"):  # via --set the same text is a YAML date
        load_config(None, ["input.path=2025-11-21"])


def test_every_shipped_config_loads() -> None:
    for path in sorted(
        [*(ROOT / "configs").glob("*.yaml"), *(ROOT / "benchmarks" / "configs").glob("*.yaml")]
    ):
        config = load_config(path)
        assert SameFactModel.load(config.match.model).weights.size, path


def test_a_mistyped_key_names_where_it_was_set_and_the_nearest_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, ["cluster.min_lnk=0.3"])
    assert str(caught.value) == "--set cluster.min_lnk: unknown key; did you mean cluster.min_link?"
    bad = tmp_path / "bad.yaml"
    bad.write_text("match:\n  candidate_similarty: 0.6\n")
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    assert str(caught.value) == (
        f"invalid config {bad}: match.candidate_similarty: unknown key; did you mean match.candidate_similarity?"
    )
    with pytest.raises(ConfigError, match=r"^--set nothing_like_it: unknown key; see configs/default\.yaml"):
        load_config(None, ["nothing_like_it=1"])
