"""A runtime-only install (``scripts/install.sh --runtime-only``, the container image) has no torch: the
default run must not import it, and what needs it must say what to install. Each case runs the real job in a
fresh interpreter. The ones without torch see this environment's site-packages less the torch stack (a folder
of links to the rest), as a runtime-only install would, so they need no second environment and uninstall
nothing."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from embeddings.encoder import Encoder
from tests.conftest import DEFAULT_CONFIG, ROOT, seeds_command

TORCH_STACK = ("torch", "sentence_transformers", "transformers")
# What requirements.txt adds to requirements-runtime.txt that the torch stack imports, and editable installs
# (this checkout is imported from the working directory).
_LEFT_OUT = re.compile(
    r"^(torch|torchgen|functorch|sentence_transformers|transformers)([-.]|$)|^__editable__"
)


@pytest.fixture(scope="module")
def without_torch(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Code that puts this environment's site-packages less the torch stack on ``sys.path`` (run with -S)."""
    site = Path(sysconfig.get_paths()["purelib"])
    lean = tmp_path_factory.mktemp("site-packages")
    for entry in site.iterdir():
        if not _LEFT_OUT.match(entry.name):
            (lean / entry.name).symlink_to(entry)
    return f"import site; site.addsitedir({str(lean)!r}); "


def python(code: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *options, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def cli(args: list[str], prelude: str = "") -> str:
    """``newsdedup ARGS`` as code that prints the exit code, then which torch stack modules were imported."""
    return prelude + (
        f"import sys; from jobs.cli import main; code = main({args!r}); "
        f"print(code, sorted({{m.split('.')[0] for m in sys.modules}} & {set(TORCH_STACK)!r}))"
    )


def sets(*overrides: str) -> list[str]:
    return [arg for override in overrides for arg in ("--set", override)]


def test_the_default_run_on_the_seeds_imports_no_torch(
    encoder: Encoder, export_dir: Path, tmp_path: Path
) -> None:
    # `encoder` has made the default config's export in export_dir, as the image's build stage does.
    done = python(
        cli(seeds_command(tmp_path, *sets("embed.progress=false", f"embed.export_path={export_dir}")))
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout  # succeeded, and no torch stack module loaded
    assert (tmp_path / "clusters").is_dir()


@pytest.mark.parametrize(
    ("case", "overrides", "feature"),
    [
        ("run", ["embed.backend=torch"], "embed.backend torch needs PyTorch"),
        ("export-model", [], "the ONNX export of all-MiniLM-L6-v2 (newsdedup export-model"),
        ("run", ["verify.model=all-MiniLM-L6-v2-verifier"], "the pair verifier (verify.model) needs PyTorch"),
    ],
)
def test_torch_features_without_torch_say_what_to_install(
    case: str,
    overrides: list[str],
    feature: str,
    without_torch: str,
    encoder: Encoder,
    export_dir: Path,
    tmp_path: Path,
) -> None:
    # export-model gets an empty export folder, so it has an export to make; runs get the default's export.
    exports = tmp_path / "exports" if case == "export-model" else export_dir
    overrides = [*overrides, f"embed.export_path={exports}"]
    if case == "run":
        args = seeds_command(tmp_path / "out", *sets("embed.progress=false", *overrides))
    else:
        args = ["export-model", "--config", str(DEFAULT_CONFIG), *sets(*overrides)]
    done = python(cli(args, without_torch), "-S")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "2 []"  # a usage error (exit 2), and nothing half-imported
    assert feature in done.stderr
    assert "install torch==2.13.0 and requirements.txt" in done.stderr
    assert not (tmp_path / "out" / "clusters").exists()
    assert not (tmp_path / "exports").exists()  # checked before the export folder is made


def test_fine_tuning_without_torch_says_what_to_install(without_torch: str) -> None:
    done = python(without_torch + "import embeddings.finetune", "-S")
    assert done.returncode == 1
    assert "ModelError: fine-tuning (embeddings/finetune.py) needs PyTorch" in done.stderr
    assert "install torch==2.13.0 and requirements.txt" in done.stderr
