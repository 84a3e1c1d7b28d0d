#!/usr/bin/env sh
# The size of the single-stage image this project had before the two-stage Dockerfile (commit 7ac71cd),
# for docs/container.md's before/after: its Dockerfile and scripts as they were, on the same local base
# image as scripts/build_image.sh, with the CPU build of torch it was meant to have.
#
#   scripts/image_size_before.sh WHEELS [TAG]
#
# That Dockerfile took torch from PyTorch's own index, which these machines cannot reach, so WHEELS is a
# folder holding torch-2.13.0+cpu's wheel (on this project's machines: /opt/wheels), given to pip as
# --find-links; everything else comes from PyPI. Two build arguments are added to that Dockerfile for it
# (PIP_FIND_LINKS, and PIP_CERT as in scripts/build_image.sh); nothing else changes.
set -eu
wheels=${1:?usage: scripts/image_size_before.sh WHEELS [TAG]}
tag=${2:-newsdedup:before}
base=${BASE_IMAGE:-localhost/newsdedup-base:bookworm-py3.11}
here=$(cd "$(dirname "$0")/.." && pwd)
podman="podman"
if command -v runc >/dev/null 2>&1; then
  podman="podman --runtime runc"
fi
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
git -C "$here" archive 7ac71cd | tar -x -C "$context"
sed -i 's|^FROM python:3.11-slim$|ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG PIP_CERT=\nARG PIP_FIND_LINKS=|' "$context/Dockerfile"
cert=/etc/ssl/certs/ca-certificates.crt
# shellcheck disable=SC2086
$podman build --build-arg BASE_IMAGE="$base" --build-arg TORCH_INDEX_URL= \
  --volume "$(cd "$wheels" && pwd):/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels \
  --volume "$cert:/run/host-ca-certificates.crt:ro" --build-arg PIP_CERT=/run/host-ca-certificates.crt \
  --tag "$tag" "$context"
size=$($podman image inspect --format '{{.Size}}' "$tag")
echo "image $tag: $size bytes ($((size / 1000000)) MB)"
