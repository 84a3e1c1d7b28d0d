#!/usr/bin/env sh
# Build the container image with podman where Docker Hub is out of reach (docs/container.md): a local base
# image of Debian bookworm with its Python 3.11 (what python:3.11-slim is), made by mmdebstrap from Debian's
# packages, then the Dockerfile on it, pip taking every package from PyPI.
#
#   scripts/build_image.sh [TAG] [more podman build options, e.g. --build-arg WITH_RAY=1]
#
# Needs (Debian): apt-get install podman mmdebstrap uidmap fuse-overlayfs runc. Run as root, or as a user
# podman runs rootless for (mmdebstrap then needs --mode=unshare, which this script picks).
set -eu
tag=${1:-newsdedup}
if [ $# -gt 0 ]; then shift; fi
base=${BASE_IMAGE:-localhost/newsdedup-base:bookworm-py3.11}
here=$(cd "$(dirname "$0")/.." && pwd)
for tool in podman mmdebstrap; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "build_image.sh: $tool is missing: apt-get install podman mmdebstrap uidmap fuse-overlayfs runc" >&2
    exit 2
  fi
done
# runc, not podman's default crun: crun cannot run on a host whose cgroups are in hybrid mode (this
# project's machines), runc can.
podman="podman"
if command -v runc >/dev/null 2>&1; then
  podman="podman --runtime runc"
fi
if ! $podman image exists "$base"; then
  mode=root
  [ "$(id -u)" = 0 ] || mode=unshare
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  # --variant=apt: Debian's essential packages and apt; python3-venv for scripts/install.sh, passwd for
  # the Dockerfile's useradd, ca-certificates as python:3.11-slim has them.
  mmdebstrap --mode="$mode" --variant=apt --include=python3,python3-venv,ca-certificates,passwd \
    bookworm "$rootfs/rootfs.tar"
  $podman import --change 'CMD ["python3"]' "$rootfs/rootfs.tar" "$base"
fi
# pip in the build trusts the host's CA certificates too: a TLS-intercepting proxy's CA is among them on
# machines that have one, and on others the same public CAs as pip's own.
cert=/etc/ssl/certs/ca-certificates.crt
certs=""
if [ -f "$cert" ]; then
  certs="--volume $cert:/run/host-ca-certificates.crt:ro --build-arg PIP_CERT=/run/host-ca-certificates.crt"
fi
# shellcheck disable=SC2086  # $podman and $certs are lists of words
$podman build --build-arg BASE_IMAGE="$base" $certs --tag "$tag" "$@" "$here"
size=$($podman image inspect --format '{{.Size}}' "$tag")
echo "image $tag: $size bytes ($((size / 1000000)) MB)"
# podman run sets the container's open-file and process limits to the most it may, and fails where root may
# not raise them (no CAP_SYS_RESOURCE, as on this project's machines): ask for what the host allows.
limits="--ulimit nofile=$(ulimit -Hn):$(ulimit -Hn) --ulimit nproc=4096:4096"
# shellcheck disable=SC2086
$podman run --rm $limits --entrypoint python "$tag" -c \
  "import importlib.util as u; assert u.find_spec('torch') is None, 'torch in the image'; print('no torch in the image')"
# The job on the sample corpus, as `make run` does it, into $IMAGE_OUTPUT (default output-image/):
# scripts/compare_outputs.py output output-image compares the two.
out=${IMAGE_OUTPUT:-$here/output-image}
mkdir -p "$out"
chmod a+rwx "$out"  # the image runs as the user newsdedup (uid 10001)
# shellcheck disable=SC2086
$podman run --rm $limits --volume "$out:/output" "$tag"
echo "the image's run on seeds/ is in $out"
