#!/usr/bin/env bash
# kolite's two entry points for a fresh machine that has only Python:
#   ./kolite.sh demo   export the five seed models (stand-ins offline), validate, run them torch-free, quick bench
#   ./kolite.sh test   lint + the whole test suite, then the runtime tests again in a torch-free venv, then the
#                      container images built and checked (scripts/container_check.sh; as root on Linux), then the docs
#   ./kolite.sh docs   the docs site: generated pages up to date, mkdocs build --strict, the docs' code blocks run
# Both create or reuse local virtual environments built from the repository's own pinned files:
#   .venv          everything (torch 2.13.0 CPU build, transformers, optimum) for export/bench/tests
#   .venv-runtime  the runtime (onnxruntime, tokenizers, numpy, huggingface_hub) + serve/label extras + pytest:
#                  no torch, no transformers; the runtime tests run here to prove it
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
python_bin="${PYTHON:-python3}"
export KOLITE_SHARED="${KOLITE_SHARED:-$here/../shared}"
# Lets pip find the CPU build of torch that lies on this image's disk; without it, torch==2.13.0 from the index
# is the CUDA build (several GB).
pip_links=()
[ -d /opt/wheels ] && pip_links=(--find-links /opt/wheels)

log() { printf '\033[1m[kolite] %s\033[0m\n' "$*" >&2; }

stamp_of() { cat pyproject.toml "$@" | sha256sum | cut -c1-16; }

# make_venv DIR STAMP INSTALL_FN: (re)build DIR unless its stamp matches (a re-run reuses it).
make_venv() {
    local dir="$1" stamp="$2" installer="$3"
    if [ -f "$dir/.kolite-stamp" ] && [ "$(cat "$dir/.kolite-stamp")" = "$stamp" ]; then
        return 0
    fi
    log "creating $dir (one time, a few minutes)"
    rm -rf "$dir"
    "$python_bin" -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade "pip==25.3" >&2
    "$installer" "$dir/bin/python"
    echo "$stamp" > "$dir/.kolite-stamp"
}

install_dev() {
    local py="$1"
    # torch first and pinned, so nothing later can pull a CUDA build.
    "$py" -m pip install -q "${pip_links[@]}" "torch==2.13.0" >&2
    "$py" -m pip install -q "${pip_links[@]}" -r requirements/dev.txt >&2
    "$py" -m pip install -q --no-deps -e . >&2
}

install_runtime() {
    local py="$1"
    # Both locks are complete; --no-deps keeps hf-xet out, as in the shipped runtime (see requirements/runtime.txt).
    "$py" -m pip install -q --no-deps -r requirements/runtime.txt -r requirements/runtime-extras.txt >&2
}

dev_venv() { make_venv .venv "$(stamp_of requirements/dev.txt)" install_dev; }
runtime_venv() {
    make_venv .venv-runtime "$(stamp_of requirements/runtime.txt requirements/runtime-extras.txt requirements/serve.txt)" \
        install_runtime
    # kolite itself goes in as a user gets it (not editable), so a reused venv would keep an old copy of the code:
    # it is (re)installed on every run; the locked dependencies stay.
    .venv-runtime/bin/python -m pip install -q --no-deps --force-reinstall . >&2
}

# mkdocs build --strict into .cache/site (Material's banner about its successor is not a build problem).
build_site() { NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet; }

cmd_docs() {
    dev_venv
    log "docs: generated pages match the code and results (scripts/gen_docs.py --check)"
    .venv/bin/python scripts/gen_docs.py --check
    log "docs: mkdocs build --strict"
    build_site
    log "docs: the docs' code blocks against tiny artifacts, and the drift tests"
    .venv/bin/python -m pytest -q -p no:cacheprovider tests/docs "$@"
}

cmd_demo() {
    dev_venv
    .venv/bin/python scripts/demo.py "$@"
}

cmd_test() {
    dev_venv
    log "ruff"
    .venv/bin/ruff check runtime export benchmarks tests scripts
    log "full test suite (torch environment; the docs' tests run with the docs below)"
    local rc=0
    # --durations: CI machines differ from ours; the slowest tests show where a slow run spent its time.
    .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 --ignore=tests/docs "$@" || rc=$?
    [ "$rc" -eq 0 ] || exit "$rc"
    runtime_venv
    log "runtime tests in the torch-free environment (.venv-runtime, artifacts built above)"
    KOLITE_TEST_ARTIFACTS="$here/.cache/test-artifacts/artifacts" .venv-runtime/bin/python -m pytest -q \
        -p no:cacheprovider -m "not torch" tests/runtime
    container_check
    cmd_docs
}

# The images, built and checked for real (scripts/container_check.sh), on the artifacts the tests just built.
# KOLITE_CONTAINER_CHECK: auto (default: run where it can, i.e. as root on Linux, as CI does; elsewhere say it was
# skipped), 1 (required: not being able to run it fails), 0 (off). Its tooling failures fail the run (exit 3).
container_check() {
    local mode="${KOLITE_CONTAINER_CHECK:-auto}"
    if [ "$mode" = 0 ]; then
        log "container check: off (KOLITE_CONTAINER_CHECK=0)"
        return 0
    fi
    if [ "$mode" = auto ] && { [ "$(id -u)" != 0 ] || [ "$(uname -s)" != Linux ]; }; then
        log "container check: SKIPPED, not run (needs root on Linux to install and run podman; KOLITE_CONTAINER_CHECK=1 requires it)"
        return 0
    fi
    log "container check (scripts/container_check.sh)"
    KOLITE_PYTHON="$here/.venv-runtime/bin/python" scripts/container_check.sh \
        --arch "${KOLITE_CONTAINER_ARCH:-amd64}" --artifacts "$here/.cache/test-artifacts/artifacts"
}

case "${1:-}" in
    demo) shift; cmd_demo "$@" ;;
    test) shift; cmd_test "$@" ;;
    docs) shift; cmd_docs "$@" ;;
    *) echo "usage: ./kolite.sh demo|test|docs [args]" >&2; exit 2 ;;
esac
