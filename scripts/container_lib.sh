# shellcheck shell=bash
# Tooling for scripts/container_check.sh: install podman & co, configure them for a VM without a systemd-managed
# cgroup tree, and make a Python base image with or without a reachable container registry. Sourced, not run.

CACHE_DIR="${KOLITE_CONTAINER_CACHE:-$PWD/.cache/containers}"
DEBIAN_MIRROR="${KOLITE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SLIM_IMAGE="docker.io/library/python:3.11-slim-bookworm"
# Debian bookworm's own python3 is 3.11, as in python:3.11-slim: the same wheels install in either base.
BASE_PACKAGES="python3,python3-venv,python3-pip,python-is-python3,ca-certificates"

log() { printf '\033[1m[container-check] %s\033[0m\n' "$*" >&2; }

# A tool that cannot be installed or run is not the image's fault: say so and exit 3, never 0.
tooling_failure() {
    printf '[container-check] TOOLING FAILURE (not a test result): %s\n' "$*" >&2
    exit 3
}

ensure_tools() {  # ensure_tools ARCH...
    local missing=() packages=(podman buildah runc debootstrap curl)
    for tool in podman buildah runc debootstrap curl; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    for arch in "$@"; do
        if [ "$arch" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
            packages+=(qemu-user-static binfmt-support)
            command -v qemu-aarch64-static >/dev/null 2>&1 || missing+=(qemu-aarch64-static)
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${packages[*]} (missing: ${missing[*]})"
        [ "$(id -u)" = 0 ] || tooling_failure "need root to apt-get install ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
            || tooling_failure "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >&2 \
            || tooling_failure "apt-get install ${packages[*]} failed"
    fi
    mkdir -p "$CACHE_DIR"
    # crun refuses this VM's hybrid cgroup v1/v2 layout, and the sandbox cannot raise ulimits past its own: runc
    # and explicit limits (containers.conf, so podman run and podman build both see them).
    cat > "$CACHE_DIR/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
    export CONTAINERS_CONF="$CACHE_DIR/containers.conf"
    podman info >/dev/null 2>&1 || tooling_failure "podman info fails: $(podman info 2>&1 | tail -3)"
    if printf '%s\n' "$@" | grep -qx arm64 && [ "$(uname -m)" != aarch64 ]; then
        enable_arm64_emulation
    fi
}

enable_arm64_emulation() {
    if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
        mount binfmt_misc -t binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
            || tooling_failure "cannot mount binfmt_misc (arm64 emulation needs it)"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        update-binfmts --enable qemu-aarch64 >&2 || tooling_failure "update-binfmts --enable qemu-aarch64 failed"
    fi
    # F (fix binary): the kernel opens qemu once, so it runs inside chroots and containers that lack it.
    grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
        || tooling_failure "qemu-aarch64 binfmt handler lacks the F flag; containers could not find qemu"
    # qemu-user (7.2, bookworm) shows the emulated program the host's x86 /proc/cpuinfo; onnxruntime's CPU probe
    # (pytorch/cpuinfo) then crashes (SIGSEGV) or hangs at import. Emulated builds and containers get this arm64
    # one (a Neoverse N1 with dot-product instructions) mounted over /proc/cpuinfo instead.
    cat > "$CACHE_DIR/cpuinfo-arm64" <<'CPUINFO'
processor	: 0
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x3
CPU part	: 0xd0c
CPU revision	: 1

CPUINFO
}

emulation_mounts() {  # emulation_mounts ARCH → podman -v arguments an emulated ARCH needs (none when native)
    if [ "$1" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
        echo "-v $CACHE_DIR/cpuinfo-arm64:/proc/cpuinfo:ro"
    fi
}

# base_image ARCH → prints the image reference to build FROM.
base_image() {
    local arch="$1"
    if [ "${KOLITE_BASE_FROM_REGISTRY:-auto}" != no ] \
        && timeout 45 podman pull -q --arch "$arch" "$SLIM_IMAGE" >/dev/null 2>&1; then
        log "base: $SLIM_IMAGE ($arch) from the registry"
        # a tag per arch, or the next pull for the other arch would replace it
        podman tag "$SLIM_IMAGE" "localhost/kolite-base:slim-$arch"
        echo "localhost/kolite-base:slim-$arch"
        return
    fi
    [ "${KOLITE_BASE_FROM_REGISTRY:-auto}" = yes ] && tooling_failure "cannot pull $SLIM_IMAGE"
    local ref="localhost/kolite-base:bookworm-$arch" tarball="$CACHE_DIR/base-bookworm-$arch.tar"
    [ -s "$tarball" ] || debootstrap_base "$arch" "$tarball"
    local digest
    digest="$(sha256sum "$tarball" | cut -c1-16)"
    if [ "$(podman image inspect --format '{{ index .Labels "kolite.base" }}' "$ref" 2>/dev/null)" != "$digest" ]; then
        log "base: importing $tarball as $ref"
        podman import -q --arch "$arch" --change "LABEL kolite.base=$digest" \
            --change 'CMD ["python3"]' "$tarball" "$ref" >/dev/null \
            || tooling_failure "podman import $tarball failed"
    fi
    echo "$ref"
}

debootstrap_base() {  # debootstrap_base ARCH TARBALL: Debian bookworm minbase + Debian's python3, as a tar
    local arch="$1" tarball="$2" root
    root="$(mktemp -d "$CACHE_DIR/rootfs-$arch.XXXX")"
    log "base: no registry reachable; debootstrap bookworm ($arch) into $root (one time, a few minutes)"
    if [ "$arch" = "$(dpkg --print-architecture)" ]; then
        debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$root" "$DEBIAN_MIRROR" >&2 \
            || tooling_failure "debootstrap $arch failed (see above)"
    else
        # Foreign: unpack here, then run the second stage under qemu (binfmt F flag: no qemu copy in the root).
        debootstrap --variant=minbase --arch="$arch" --foreign --include="$BASE_PACKAGES" bookworm "$root" \
            "$DEBIAN_MIRROR" >&2 || tooling_failure "debootstrap --foreign $arch failed"
        chroot "$root" /debootstrap/debootstrap --second-stage >&2 \
            || tooling_failure "debootstrap second stage for $arch under qemu failed"
    fi
    # The image needs no package lists, caches or docs: smaller tarball, same Python.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
        "$root"/usr/share/locale/*
    tar --numeric-owner -C "$root" -cf "$tarball.part" . || tooling_failure "tar of the $arch base failed"
    mv "$tarball.part" "$tarball"
    rm -rf "$root"
}
