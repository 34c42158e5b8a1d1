# syntax=docker/dockerfile:1
# kolite serve: torch-free CPU image (onnxruntime + tokenizers + FastAPI/uvicorn). No torch, no transformers.
# Tested by scripts/container_check.sh (x86-64 and arm64); docs/guides/containers.md has the measured numbers.
#
#   docker build -t kolite-serve .
#   docker run --rm -p 8080:8080 -v "$PWD/artifacts:/models:ro" kolite-serve /models/000-koelectra-small-v3-nsmc
#
# One model baked in, with only the variant(s) it serves (`kolite pack` runs in the build; BuildKit named context,
# so .dockerignore can keep artifacts/ out of the ordinary build context):
#   docker build --target with-model --build-context model=artifacts/000-koelectra-small-v3-nsmc \
#     --build-arg MODEL_NAME=000-koelectra-small-v3-nsmc --build-arg VARIANTS=int8-static -t kolite-000 .
#   docker run --rm -p 8080:8080 kolite-000
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# binutils for strip: uvloop, tokenizers and httptools ship their symbol tables (uvloop 13 MB → 1.6 MB).
RUN apt-get update -q && apt-get install -y -q --no-install-recommends binutils >/dev/null \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/kolite
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/ requirements/
COPY runtime/ runtime/
# setuptools maps all three import packages; export/ and benchmarks/ are plain source (their torch deps are NOT
# installed): `kolite export` / `kolite bench` in this image say which extra they need.
COPY export/ export/
COPY benchmarks/kolite_bench/ benchmarks/kolite_bench/
# The runtime lock with --no-deps, minus what serving never imports (measured with sys.modules of a serving
# process): hf-xet (left out of the lock already), PyYAML and fsspec (huggingface_hub imports them only for model
# cards and HfFileSystem; hub downloads work without them), protobuf and flatbuffers (onnxruntime's Python tools
# only). Then the serve extra's lock, then kolite.
RUN grep -v -E '^(PyYAML|fsspec|protobuf|flatbuffers)==' requirements/runtime.txt > /tmp/runtime-image.txt \
 && /opt/kolite/bin/pip install -q --no-deps -r /tmp/runtime-image.txt -r requirements/serve.txt \
 && /opt/kolite/bin/pip install -q --no-deps . \
 && /opt/kolite/bin/python -c "import kolite.server.app, sys; assert 'torch' not in sys.modules"
# Ship only what runs (each line measured; see docs/guides/containers.md):
# - pip/setuptools: nothing installs into a serving image;
# - onnxruntime's libonnxruntime.so (28 MB, the C API library: the Python module links its own copy), its
#   transformers/quantization/tools Python packages (export-time tools), and every package's tests;
# - numpy's random, fft, polynomial, ma (imported lazily, by nothing kolite runs: `import numpy.random` fails here);
# - symbol tables of the extension modules that keep them (uvloop, tokenizers, httptools); never of the
#   auditwheel-patched libraries (numpy.libs, numpy/_core): strip breaks their patched ELF headers;
# - bytecode except for the modules serving imports: the import below writes exactly those (a read-only root
#   filesystem could not cache them at run time, and compiling them on every start costs ~0.5 s).
RUN site=$(/opt/kolite/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
 && /opt/kolite/bin/python -m pip uninstall -q -y pip setuptools \
 && rm -rf "$site"/onnxruntime/capi/libonnxruntime.so* "$site"/onnxruntime/transformers \
      "$site"/onnxruntime/quantization "$site"/onnxruntime/tools "$site"/onnxruntime/datasets \
      "$site"/numpy/f2py "$site"/numpy/_pyinstaller "$site"/numpy/random "$site"/numpy/fft \
      "$site"/numpy/polynomial "$site"/numpy/ma \
 && find /opt/kolite \( -name tests -o -name testing -o -name __pycache__ \) -type d -prune -exec rm -rf {} + \
 && find "$site"/uvloop "$site"/tokenizers "$site"/httptools -name '*.so' -exec strip --strip-unneeded {} + \
 && PYTHONDONTWRITEBYTECODE= /opt/kolite/bin/python -c "import kolite.server.app, kolite.server.runner, \
      kolite.server.cli, kolite.classification, kolite.token_classification, kolite.parallel, kolite.cli, \
      uvicorn.protocols.http.httptools_impl, uvicorn.protocols.http.h11_impl, uvicorn.loops.uvloop, \
      uvicorn.lifespan.on, uvicorn.protocols.websockets.auto, onnxruntime"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/kolite/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TOKENIZERS_PARALLELISM=false \
    HF_HUB_OFFLINE=1 \
    KOLITE_PORT=8080 \
    KOLITE_MEMORY_PROFILE=default \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    MALLOC_TRIM_THRESHOLD_=131072
COPY --from=build /opt/kolite /opt/kolite
RUN useradd --create-home --uid 10001 kolite && mkdir -p /models && chown kolite /models
USER kolite
WORKDIR /home/kolite
VOLUME ["/models"]
EXPOSE 8080
# glibc malloc: 2 arenas instead of 8 per core, and a fixed mmap threshold, so that large tensors freed by
# onnxruntime (no arena in the edge profile) go back to the system instead of staying in the heap: RSS returns to
# ~140 MB after a burst (000) instead of keeping the burst's peak. KOLITE_MEMORY_PROFILE=edge: see kolite.memory.
# /health is 503 until every model is loaded. python, not curl: the slim image has no curl. The port is
# $KOLITE_PORT, the one the entrypoint binds: `-e KOLITE_PORT=9000` moves both.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('KOLITE_PORT', '8080'), timeout=2).status != 200)"]
# SIGTERM (docker stop) → /health says 503 for --drain-s, then uvicorn stops accepting, finishes in-flight
# requests, and exits. exec: kolite is PID 1 and gets the signal. Threads follow the cgroup CPU quota (--cpus N).
ENTRYPOINT ["sh", "-c", "exec kolite serve --host 0.0.0.0 --port \"$KOLITE_PORT\" \"$@\"", "--"]
CMD ["--help"]

FROM build AS packed
ARG MODEL_NAME=model
# What the with-model image serves; comma-separated (e.g. int8-static,fp32 to also allow --variant fp32).
ARG VARIANTS=int8-static
COPY --from=model . /tmp/artifact
RUN /opt/kolite/bin/kolite pack /tmp/artifact --variants "$VARIANTS" --out "/models/$MODEL_NAME"

FROM runtime AS with-model
ARG MODEL_NAME=model
COPY --from=packed --chown=kolite /models/${MODEL_NAME} /models/${MODEL_NAME}
ENV KOLITE_MODEL=/models/${MODEL_NAME}
# Extra `docker run` arguments are passed on to kolite serve.
ENTRYPOINT ["sh", "-c", "exec kolite serve --host 0.0.0.0 --port \"$KOLITE_PORT\" \"$KOLITE_MODEL\" \"$@\"", "--"]
CMD []
