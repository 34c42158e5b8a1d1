# syntax=docker/dockerfile:1
# kolite serve: torch-free CPU image (onnxruntime + tokenizers + FastAPI/uvicorn). No torch, no transformers.
#
#   docker build -t kolite-serve .
#   docker run --rm -p 8080:8080 -v "$PWD/artifacts:/models:ro" kolite-serve /models/000-koelectra-small-v3-nsmc
#
# Models baked into the image instead of mounted (BuildKit named context, so .dockerignore can keep artifacts/
# out of the ordinary build context):
#   docker build --target with-model --build-context model=artifacts/000-koelectra-small-v3-nsmc \
#     --build-arg MODEL_NAME=000-koelectra-small-v3-nsmc -t kolite-000 .
#   docker run --rm -p 8080:8080 kolite-000
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/kolite
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY runtime/ runtime/
# setuptools maps all three import packages; export/ and benchmarks/ are plain source (their torch deps are NOT
# installed): `kolite export` / `kolite bench` in this image say which extra they need.
COPY export/ export/
COPY benchmarks/kolite_bench/ benchmarks/kolite_bench/
# The complete runtime lock with --no-deps (it leaves hf-xet out: huggingface_hub falls back to plain HTTP, and this
# image runs with HF_HUB_OFFLINE=1 on mounted artifacts), then the serve extra's complete lock, then kolite.
RUN /opt/kolite/bin/pip install --no-deps -r requirements/runtime.txt -r requirements/serve.txt \
 && /opt/kolite/bin/pip install --no-deps . \
 && /opt/kolite/bin/python -c "import kolite.server.app, sys; assert 'torch' not in sys.modules" \
 && find /opt/kolite -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/kolite/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TOKENIZERS_PARALLELISM=false \
    HF_HUB_OFFLINE=1
COPY --from=build /opt/kolite /opt/kolite
RUN useradd --create-home --uid 10001 kolite && mkdir -p /models && chown kolite /models
USER kolite
WORKDIR /home/kolite
VOLUME ["/models"]
EXPOSE 8080
# /health is 503 until every model is loaded and warmed up. python, not curl: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2).status != 200)"]
# SIGTERM (docker stop) → uvicorn stops accepting, finishes in-flight requests, then exits.
# In a container, bind all interfaces; with a CPU limit (--cpus N) also pass --threads N: onnxruntime counts the
# host's cores, not the cgroup quota.
ENTRYPOINT ["kolite", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD ["--help"]

FROM runtime AS with-model
ARG MODEL_NAME=model
COPY --from=model --chown=kolite . /models/${MODEL_NAME}
ENV KOLITE_MODEL=/models/${MODEL_NAME}
# exec: kolite stays PID 1 and gets docker's SIGTERM. Extra `docker run` arguments are passed on to kolite serve.
ENTRYPOINT ["sh", "-c", "exec kolite serve --host 0.0.0.0 --port 8080 \"$KOLITE_MODEL\" \"$@\"", "--"]
CMD []
