#!/usr/bin/env bash
# The CUDA check (issue 25): kolite's CUDA path on a lent GPU against PyTorch, the machine's CPU and torch CUDA.
#
# Here (needs .venv, artifacts with fp16/fp32-opt/int8-static, ../shared):
#   scripts/gpu_check.sh pack                 onnxruntime-gpu bundle + payload, split into .gpu/part-N (≤ 59 MiB each:
#                                             the device tool carries 64 MiB a call)
#   scripts/gpu_check.sh dry-run [ARGS]       the whole check on CPU (CI: everything up to the first CUDA call)
# On the GPU machine (bare, no registry), in the repository root:
#   scripts/gpu_check.sh stash N              keep .gpu/part-N (carried by this call) for the next calls; once the
#                                             bundle is complete, install it and probe CUDA with kolite's options
#   scripts/gpu_check.sh run [ARGS]           assemble the parts, install the bundle, run the check → $OUT
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
stash="${KOLITE_GPU_STASH:-/tmp/kolite-gpu}"
parts=.gpu
ort_wheel_version=1.31.1
t0=$(date +%s)
log() { printf '[gpu_check +%ss] %s\n' "$(( $(date +%s) - t0 ))" "$*" >&2; }

cmd_pack() {
    local py=.venv/bin/python work="${KOLITE_GPU_WORK:-/tmp/kolite-gpu-pack}"
    mkdir -p "$work"
    if [ ! -f "$work/ort.tar.xz" ]; then
        log "downloading onnxruntime-gpu $ort_wheel_version (cp312, the GPU image's Python)"
        "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            -d "$work/wheel" "onnxruntime-gpu==$ort_wheel_version"
        "$py" scripts/gpu_ort_bundle.py "$work"/wheel/onnxruntime_gpu-*.whl "$work/ort.tar.xz"
    fi
    if [ ! -f "$work/payload/004/reference.npz" ] || [ -n "${GPU_FRESH:-}" ]; then
        rm -rf "$work/payload"
        log "payload: artifacts, texts, PyTorch references (CPU), peer weights"
        "$py" -m kolite_bench.gpu_payload --out "$work/payload" --texts "${GPU_TEXTS:-2000}" \
            --seed 000 "${ART_000:-artifacts/gpu-000}" "${KOLITE_SHARED:-../shared}/standins/koelectra-small-v3-nsmc" \
            --seed 004 "${ART_004:-artifacts/gpu-004}" "${KOLITE_SHARED:-../shared}/standins/koelectra-small-v3-modu-ner"
    fi
    (cd "$work" && XZ_OPT="-6 -T2" tar -cJf payload.tar.xz payload)
    rm -rf "$parts" && mkdir -p "$parts"
    cat "$work/ort.tar.xz" > "$parts/all.bin"
    cat "$work/payload.tar.xz" >> "$parts/all.bin"
    local ort_size; ort_size=$(stat -c %s "$work/ort.tar.xz")
    printf '%s %s\n' "$ort_size" "$(stat -c %s "$work/payload.tar.xz")" > "$parts/sizes"
    (cd "$parts" && split -b 59M -d -a 1 all.bin part- && rm all.bin && sha256sum part-* > SHA256SUMS)
    for f in "$parts"/part-?; do mkdir -p "$f.d" && mv "$f" "$f.d/"; done
    grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    ls -la "$parts" "$parts"/*.d >&2
}

# Keep part N (carried by this call); once the parts so far hold the whole bundle, install it and probe CUDA once.
cmd_stash() {
    local n="$1"
    mkdir -p "$stash"
    cp "$parts/part-$n.d/part-$n" "$parts/SHA256SUMS" "$parts/sizes" "$stash/"
    log "stashed part $n: $(ls "$stash" | tr '\n' ' ')"
    if [ ! -f "$stash/probed" ] && install_bundle; then
        PYTHONPATH="$stash/site:$here/runtime" python3 scripts/gpu_probe.py && touch "$stash/probed"
        python3 -c 'import sys, numpy, tokenizers; print(sys.version, numpy.__version__, tokenizers.__version__)'
    fi
}

# The bundle comes first in the parts: once the parts so far hold it, install it (once) into $stash/site.
install_bundle() {
    local site="$stash/site" ort_size
    [ -f "$site/.installed" ] && return 0
    read -r ort_size _ < "$stash/sizes"
    cat "$stash"/part-? | head -c "$ort_size" > "$stash/ort.tar.xz"
    [ "$(stat -c %s "$stash/ort.tar.xz")" -eq "$ort_size" ] || { log "bundle not complete yet"; rm -f "$stash/ort.tar.xz"; return 1; }
    mkdir -p "$site" && tar -xJf "$stash/ort.tar.xz" -C "$site" && rm -f "$stash/ort.tar.xz" && touch "$site/.installed"
    log "installed the onnxruntime-gpu bundle into $site"
}

cmd_run() {
    local out="${OUT:-/tmp/kolite-gpu-out}" site="$stash/site" ort_size
    mkdir -p "$out"
    for d in "$parts"/part-?.d; do [ -d "$d" ] && cp "$d"/part-? "$stash/" 2>/dev/null || true; done
    [ -f "$parts/SHA256SUMS" ] && cp "$parts/SHA256SUMS" "$parts/sizes" "$stash/" 2>/dev/null || true
    if [ ! -f "$stash/unpacked" ]; then
        (cd "$stash" && sha256sum -c SHA256SUMS) >&2 || { log "a part is missing or corrupt"; exit 3; }
        install_bundle
        read -r ort_size _ < "$stash/sizes"
        cat "$stash"/part-? | tail -c +"$((ort_size + 1))" | tar -xJf - -C "$stash"
        touch "$stash/unpacked"
        log "unpacked onnxruntime-gpu and the payload"
    fi
    export PYTHONPATH="$site:$here/runtime:$here/benchmarks" PYTHONUNBUFFERED=1
    python3 -c 'import onnxruntime as o; o.preload_dlls(); print(o.__file__, o.get_available_providers())' >&2
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true
    python3 -m kolite_bench.gpu_check --payload "$stash/payload" --out "$out/gpu-check.json" "$@" \
        2>&1 | tee "$out/gpu-check.log"
    log "done"
}

cmd_dry_run() {
    local py="${PYTHON:-.venv/bin/python}"
    PYTHONPATH="$here/runtime:$here/benchmarks" "$py" -m kolite_bench.gpu_check --dry-run "$@"
}

case "${1:-}" in
    pack) shift; cmd_pack "$@" ;;
    stash) shift; cmd_stash "$@" ;;
    run) shift; cmd_run "$@" ;;
    dry-run) shift; cmd_dry_run "$@" ;;
    *) echo "usage: scripts/gpu_check.sh pack|stash N|run [ARGS]|dry-run --payload DIR --out FILE [ARGS]" >&2; exit 2 ;;
esac
