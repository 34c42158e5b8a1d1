#!/usr/bin/env bash
# Build kolite's images and check them for real (docs/guides/containers.md):
#   runtime image, artifacts mounted:  /health, /predict, /tag byte-equal to the same artifacts served on the host;
#                                      non-root, --read-only root fs, --cpus 1 → 1 thread, --memory at the documented
#                                      minimum, HEALTHCHECK on a non-default $KOLITE_PORT, SIGTERM drains then exits
#   with-model image (000, packed):    only the served variant inside, same answers, size ≤ base + 150 MB
#   arm64 (--arch amd64,arm64):        the same image built for linux/arm64 and run under qemu: the CPU check's
#                                      variant, label agreement and max |Δlogit| against x86-64's answers
#
# usage: scripts/container_check.sh [--arch amd64[,arm64]] [--artifacts DIR]
#   DIR holds 000[-*]/ and 004[-*]/ artifacts (default: the test suite's .cache/test-artifacts/artifacts).
#   KOLITE_PYTHON: a python with kolite[serve] for the host-side reference server (default .venv-runtime, .venv).
#   KOLITE_MEMORY_MIN: the --memory the check serves under (default 200m, the documented minimum).
# Exit: 0 all checks passed, 1 a check failed, 3 the tooling failed (never reported as a pass).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
# shellcheck source=scripts/container_lib.sh
source scripts/container_lib.sh

arches=amd64
artifacts_dir="$repo/.cache/test-artifacts/artifacts"
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arches="$2"; shift 2 ;;
        --artifacts) artifacts_dir="$2"; shift 2 ;;
        *) echo "usage: $0 [--arch amd64[,arm64]] [--artifacts DIR]" >&2; exit 2 ;;
    esac
done
IFS=, read -r -a arch_list <<< "$arches"
memory_min="${KOLITE_MEMORY_MIN:-200m}"
work="$CACHE_DIR/run"
rm -rf "$work" && mkdir -p "$work"
failures=0
started=$SECONDS

fail() { printf '[container-check] FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
pass() { printf '[container-check] ok: %s\n' "$*" >&2; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
report() { printf '%s\n' "$*" >> "$work/report.txt"; printf '[container-check] %s\n' "$*" >&2; }

find_artifact() {  # find_artifact SEED → DIR/SEED or DIR/SEED-*
    local seed="$1" candidate
    for candidate in "$artifacts_dir/$seed" "$artifacts_dir/$seed"-*; do
        [ -f "$candidate/manifest.json" ] && { echo "$candidate"; return; }
    done
    tooling_failure "no $seed artifact under $artifacts_dir (run the tests first, or pass --artifacts)"
}

host_python() {
    if [ -n "${KOLITE_PYTHON:-}" ]; then echo "$KOLITE_PYTHON"
    elif [ -x .venv-runtime/bin/python ]; then echo "$repo/.venv-runtime/bin/python"
    elif [ -x .venv/bin/python ]; then echo "$repo/.venv/bin/python"
    else tooling_failure "no python with kolite[serve] for the reference server (set KOLITE_PYTHON)"; fi
}

wait_health() {  # wait_health PORT SECONDS → 0 once /health says 200
    local port="$1" deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")" = 200 ] && return 0
        sleep 0.05
    done
    return 1
}

containers=()
host_pid=""
cleanup() {
    [ -n "$host_pid" ] && kill "$host_pid" 2>/dev/null || true
    for name in "${containers[@]}"; do podman rm -f -t 0 "$name" >/dev/null 2>&1 || true; done
}
trap cleanup EXIT

run_container() {  # run_container NAME PODMAN_ARGS... → started detached on the host network
    local name="$1"; shift
    podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
    containers+=("$name")
    # --health-interval disable: no systemd here to run the timer; the check runs the HEALTHCHECK itself.
    podman run -d --name "$name" --network host --health-interval disable "$@" >/dev/null 2>"$work/$name.run.err" \
        || { fail "podman run $name: $(tail -2 "$work/$name.run.err")"; return 1; }
}

ensure_tools "${arch_list[@]}"
a000="$(find_artifact 000)"; a004="$(find_artifact 004)"
n000="$(basename "$a000")"; n004="$(basename "$a004")"
py="$(host_python)"
served_variant="$("$py" -c "import kolite, sys; print(kolite.load(sys.argv[1]).variant.name)" "$a000")" \
    || tooling_failure "the host python cannot load $a000"
log "artifacts: $a000, $a004 (auto serves $served_variant); host python: $py"

# ---- reference answers: the same artifacts served on the host, one thread like the --cpus 1 container ----
"$py" -m kolite.server "$a000" "$a004" --port 18180 --threads 1 --log-level warning >"$work/host.log" 2>&1 &
host_pid=$!
wait_health 18180 120 || tooling_failure "the host reference server did not start: $(tail -5 "$work/host.log")"
python3 scripts/container_probe.py probe http://127.0.0.1:18180 "$work/host" --classifier "$n000" --tagger "$n004" \
    || fail "host reference answers"
kill "$host_pid"; wait "$host_pid" 2>/dev/null || true; host_pid=""

build_images() {  # build_images ARCH → localhost/kolite:runtime-ARCH and localhost/kolite:000-ARCH
    local arch="$1" base t0
    base="$(base_image "$arch")"
    t0=$SECONDS
    log "building runtime image ($arch) from $base"
    # The host's CA bundle, mounted for the build only: HTTPS to the package index may pass an intercepting proxy.
    local common=(--format docker --platform "linux/$arch" --build-arg "PYTHON_IMAGE=$base"
                  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
    # shellcheck disable=SC2207
    common+=($(emulation_mounts "$arch"))
    podman build -q "${common[@]}" --target runtime -t "localhost/kolite:runtime-$arch" . >"$work/build-$arch.log" 2>&1 \
        || { tail -20 "$work/build-$arch.log" >&2; fail "podman build runtime ($arch)"; return 1; }
    podman build -q "${common[@]}" --target with-model --build-context "model=$a000" \
        --build-arg "MODEL_NAME=$n000" --build-arg "VARIANTS=$served_variant" -t "localhost/kolite:000-$arch" . \
        >>"$work/build-$arch.log" 2>&1 \
        || { tail -20 "$work/build-$arch.log" >&2; fail "podman build with-model ($arch)"; return 1; }
    report "built $arch images in $((SECONDS - t0)) s"
    local base_mb runtime_mb model_mb layer_mb
    base_mb=$(($(podman image inspect --format '{{.Size}}' "$base") / 1000000))
    runtime_mb=$(($(podman image inspect --format '{{.Size}}' "localhost/kolite:runtime-$arch") / 1000000))
    model_mb=$(($(podman image inspect --format '{{.Size}}' "localhost/kolite:000-$arch") / 1000000))
    layer_mb=$(podman run --rm --health-interval disable --entrypoint du "localhost/kolite:runtime-$arch" -sm /opt/kolite \
        2>/dev/null | cut -f1)
    report "sizes ($arch): base ${base_mb} MB, runtime ${runtime_mb} MB (kolite venv ${layer_mb} MB), with-model 000 ${model_mb} MB (base + $((model_mb - base_mb)) MB)"
    [ "$layer_mb" -le 120 ] || fail "kolite venv is ${layer_mb} MB, over 120 MB"
    [ $((model_mb - base_mb)) -le 150 ] || fail "with-model image is base + $((model_mb - base_mb)) MB, over 150 MB"
    local variants
    variants=$(podman run --rm --health-interval disable --entrypoint ls "localhost/kolite:000-$arch" "/models/$n000" 2>/dev/null \
        | grep -c '\.onnx$' || true)
    [ "$variants" = 1 ] && pass "with-model image holds 1 graph ($served_variant)" \
        || fail "with-model image holds $variants graphs, expected 1"
}

check_runtime_image() {  # every runtime property in one container: hardened, small, limited, then stopped
    local image="localhost/kolite:runtime-amd64" name=kolite-check-runtime port=18181 t0 code
    t0=$(now_ms)
    run_container "$name" --read-only --cpus 1 --memory "$memory_min" --memory-swap "$memory_min" \
        -e KOLITE_MEMORY_PROFILE=edge -e KOLITE_PORT=$port -v "$a000:/models/$n000:ro" -v "$a004:/models/$n004:ro" \
        "$image" "/models/$n000" "/models/$n004" --drain-s 2 || return 1
    if ! wait_health $port 60; then
        fail "runtime container never healthy: $(podman logs "$name" 2>&1 | tail -5)"; return 1
    fi
    report "cold start (podman run → first 200 on /health, 2 models, --cpus 1): $(($(now_ms) - t0)) ms"
    python3 scripts/container_probe.py probe "http://127.0.0.1:$port" "$work/runtime" --classifier "$n000" \
        --tagger "$n004" || fail "runtime container answers"
    for file in "$work"/host/*; do
        cmp -s "$file" "$work/runtime/$(basename "$file")" || fail "runtime container: $(basename "$file") differs from the host's"
    done
    [ "$failures" = 0 ] && pass "runtime container: /health, /predict, /tag bodies byte-equal to the host's"
    [ "$(podman exec "$name" id -u)" = 10001 ] && pass "runs as uid 10001" || fail "not running as uid 10001"
    podman exec "$name" sh -c 'touch /opt/kolite/x' 2>/dev/null && fail "root filesystem is writable" \
        || pass "--read-only root filesystem serves (no tmpfs needed)"
    podman logs "$name" > "$work/$name.log" 2>&1 || true  # grep -q on a pipe would SIGPIPE podman (pipefail)
    grep -q "1 threads (cgroup CPU quota" "$work/$name.log" && pass "--cpus 1 → 1 onnxruntime thread" \
        || fail "--cpus 1 did not give 1 thread: $(grep threads "$work/$name.log")"
    local rss
    rss=$(podman exec "$name" sh -c "grep -E 'VmRSS|VmHWM' /proc/1/status" | awk '{printf "%s %d MB  ", $1, $2/1024}')
    report "memory (--memory $memory_min, 000 + 004 served): $rss"
    podman healthcheck run "$name" >/dev/null 2>&1 && pass "HEALTHCHECK follows KOLITE_PORT=$port" \
        || fail "HEALTHCHECK fails on KOLITE_PORT=$port"
    # SIGTERM: /health turns 503 at once, requests are still served during the drain, then a clean exit.
    podman kill --signal TERM "$name" >/dev/null
    sleep 0.3
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/health")
    [ "$code" = 503 ] && pass "SIGTERM → /health 503 while draining" || fail "SIGTERM → /health $code, expected 503"
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d '{"inputs": "좋아요"}' "http://127.0.0.1:$port/models/$n000/predict")
    [ "$code" = 200 ] && pass "requests still served while draining" || fail "/predict while draining: $code"
    t0=$SECONDS
    code=$(timeout 40 podman wait "$name" 2>/dev/null || echo timeout)
    report "SIGTERM → exit status $code after $((SECONDS - t0 + 1)) s (--drain-s 2)"
    case "$code" in 0|143) pass "drained and exited" ;; *) fail "exit after SIGTERM: $code" ;; esac
    podman logs "$name" > "$work/$name.log" 2>&1 || true
    grep -q "draining" "$work/$name.log" || fail "no drain line in the log"
}

check_model_image() {  # check_model_image ARCH: the with-model image answers /predict as the host does
    local arch="$1" name="kolite-check-000-$1" port=18191 t0
    [ "$arch" = amd64 ] || port=18192
    t0=$(now_ms)
    local patience=60 limits=(--memory "$memory_min" --memory-swap "$memory_min")
    # emulated: minutes, speed means nothing, and qemu's own translation cache would count against --memory
    # shellcheck disable=SC2207
    [ "$arch" = amd64 ] || { patience=600; limits=($(emulation_mounts "$arch")); }
    run_container "$name" --read-only "${limits[@]}" -e KOLITE_MEMORY_PROFILE=edge -e KOLITE_PORT=$port \
        "localhost/kolite:000-$arch" || return 1
    if ! wait_health $port $patience; then
        fail "with-model container ($arch) never healthy: $(podman logs "$name" 2>&1 | tail -5)"; return 1
    fi
    report "cold start with-model 000 ($arch): $(($(now_ms) - t0)) ms"
    python3 scripts/container_probe.py probe "http://127.0.0.1:$port" "$work/000-$arch" --classifier "$n000" \
        --tagger "$n000" >/dev/null 2>&1 || true  # 000 is no tagger: only the predict answers are compared
    report "memory with-model 000 ($arch, edge profile, after the probe): $(podman exec "$name" sh -c \
        "grep -E 'VmRSS|VmHWM' /proc/1/status" | awk '{printf "%s %d MB  ", $1, $2/1024}')"
    podman logs "$name" 2>&1 | grep "ready:" | sed 's/^/[container-check]   /' >&2 || true
    podman logs "$name" > "$work/$name.log" 2>&1 || true
    podman rm -f -t 5 "$name" >/dev/null 2>&1 || true
}

for arch in "${arch_list[@]}"; do
    build_images "$arch" || continue
    check_model_image "$arch" || true
done
if printf '%s\n' "${arch_list[@]}" | grep -qx amd64; then
    check_runtime_image || true
    for file in "$work"/host/predict-{one,many,raw-*}.body; do
        cmp -s "$file" "$work/000-amd64/$(basename "$file")" \
            || fail "with-model image (amd64): $file differs from the host's"
    done
fi
if printf '%s\n' "${arch_list[@]}" | grep -qx arm64 && [ -f "$work/000-arm64/predict-one.body" ]; then
    # Another CPU: agreement at the fidelity bars, not byte equality. The tagger is checked through the runtime
    # image under emulation: 004 mounted, as on x86-64.
    name=kolite-check-runtime-arm64
    # shellcheck disable=SC2046
    run_container "$name" --read-only $(emulation_mounts arm64) -e KOLITE_MEMORY_PROFILE=edge -e KOLITE_PORT=18199 -v "$a000:/models/$n000:ro" -v "$a004:/models/$n004:ro" \
        "localhost/kolite:runtime-arm64" "/models/$n000" "/models/$n004" \
        && wait_health 18199 600 \
        && python3 scripts/container_probe.py probe http://127.0.0.1:18199 "$work/runtime-arm64" \
            --classifier "$n000" --tagger "$n004" || fail "arm64 runtime container answers"
    podman logs "$name" 2>&1 | grep "ready:" | sed 's/^/[container-check]   /' >&2 || true
    agreement=$(python3 scripts/container_probe.py agree "$work/host" "$work/runtime-arm64") \
        || fail "arm64 answers disagree with x86-64's beyond the fidelity bars: $agreement"
    report "arm64 vs x86-64: $agreement"
fi

report "total $((SECONDS - started)) s"
if [ "$failures" -gt 0 ]; then
    echo "[container-check] $failures check(s) FAILED (details above; logs in $work)" >&2
    exit 1
fi
echo "[container-check] all checks passed (report: $work/report.txt)" >&2
