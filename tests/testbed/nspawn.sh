#!/usr/bin/env bash
# Fresh Debian 12 hosts with systemd as PID 1 on this machine, reached only over SSH, for the tests
# that take the path users take (molecule/systemd): each host is a systemd-nspawn machine booted
# in a network namespace of its own, with sshd, python3, sudo and a `deploy` user with
# passwordless sudo and the test bed's SSH key. The hosts have no route out: on the bridge they
# share with this machine they find an apt proxy (tinyproxy) and the test bed's registry.
#
# Usage: tests/testbed/nspawn.sh build | net | start NAME ADDRESS | stop NAME | reboot NAME |
#                                destroy NAME... | down | status | key
#   build    the host's root file system, cached as a tarball by a hash of its recipe
#   net      the bridge (10.213.0.1/24), the apt proxy and the registry on the bridge address
#   start    creates NAME from the cached root file system when it does not exist, boots it, waits for sshd
#   stop     shuts NAME down in order (stop + start is the host's reboot; its disk is kept)
#   destroy  stops NAME and removes its disk and namespace; down does it for every host, then the network
set -euo pipefail
# shellcheck source=tests/testbed/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly SUITE="bookworm"
readonly TESTBED_DIR="/var/lib/soulmatting-testbed"
readonly STATE_DIR="${TESTBED_DIR}/nspawn"
readonly MACHINES_DIR="${STATE_DIR}/machines"
readonly KEY="${STATE_DIR}/id_ed25519"
readonly BRIDGE="smtb0"
readonly BRIDGE_ADDR="10.213.0.1"
readonly BRIDGE_CIDR="${BRIDGE_ADDR}/24"
readonly PROXY_PORT="8888"
readonly PROXY_CONF="${STATE_DIR}/tinyproxy.conf"
readonly PROXY_PIDFILE="${STATE_DIR}/tinyproxy.pid"
readonly PROXY_LOG="/var/log/soulmatting-testbed-tinyproxy.log"
# The test bed's registry (tests/testbed/setup.sh registry) listens on loopback, which the hosts
# cannot reach: a second registry process serves the same storage on the bridge address, read-only.
readonly REGISTRY_STORAGE="${TESTBED_DIR}/registry"
readonly REGISTRY_ADDR="${BRIDGE_ADDR}:5000"
readonly REGISTRY_CONF="${STATE_DIR}/registry.yml"
readonly REGISTRY_PIDFILE="${STATE_DIR}/registry.pid"
readonly REGISTRY_LOG="/var/log/soulmatting-testbed-nspawn-registry.log"
readonly PACKAGES=(systemd-container debootstrap tinyproxy docker-registry openssh-client iproute2 curl)
# What a fresh Debian 12 server has that the tests rely on: systemd, sshd, python3 and sudo.
readonly INCLUDE="systemd,systemd-sysv,dbus,openssh-server,python3,sudo,ca-certificates,iproute2,procps"
readonly SSH_OPTS=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=3)

export DEBIAN_FRONTEND=noninteractive

log() { printf '[nspawn] %s\n' "$*"; }
die() { printf '[nspawn] error: %s\n' "$*" >&2; exit 1; }

# Waits up to $1 seconds for the command to succeed.
wait_for() {
    local timeout="$1"; shift
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.5
    done
}

install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    log "installing ${missing[*]}"
    apt-get update -q >/dev/null
    apt-get install -y -q "${missing[@]}" >/dev/null
}


# ----------------------------------------------------------------------------------------------- build

# Runs on the fresh root file system: what makes it a test host rather than a plain Debian install.
# Per-host identity (hostname, machine-id, SSH host keys, the authorized key) is set by `start`.
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
    # No route out: apt goes through the proxy on this machine's side of the bridge.
    cat >"$rootfs/etc/apt/apt.conf.d/01testbed-proxy" <<EOF
Acquire::http::Proxy "http://$BRIDGE_ADDR:$PROXY_PORT";
Acquire::https::Proxy "http://$BRIDGE_ADDR:$PROXY_PORT";
EOF
    # The package registries are reached the way this machine reaches them, with the same TLS trust.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
        chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
    fi
    chroot "$rootfs" useradd --create-home --shell /bin/bash deploy
    echo 'deploy ALL=(ALL) NOPASSWD:ALL' >"$rootfs/etc/sudoers.d/deploy"
    chmod 0440 "$rootfs/etc/sudoers.d/deploy"
    printf 'PasswordAuthentication no\nUseDNS no\n' >"$rootfs/etc/ssh/sshd_config.d/testbed.conf"
    # Test bed only, for a machine whose kernel keeps the cgroup controllers on v1: nspawn mounts
    # them read-only in the host's cgroup namespace; mounted again read-write, Docker can apply the
    # stack's CPU and memory limits. Does nothing on a host booted on cgroup v2.
    cat >"$rootfs/usr/local/sbin/testbed-cgroups" <<'EOF'
#!/bin/sh
findmnt -rn -t cgroup -o TARGET,OPTIONS | while read -r target options; do
    case ",$options," in *,ro,*) ;; *) continue ;; esac
    case ",$options," in *,name=*) continue ;; esac
    umount "$target" && mount -t cgroup -o "rw,nosuid,nodev,noexec,$(basename "$target")" cgroup "$target"
done
EOF
    chmod 0755 "$rootfs/usr/local/sbin/testbed-cgroups"
    cat >"$rootfs/etc/systemd/system/testbed-cgroups.service" <<'EOF'
[Unit]
Description=Test bed: writable cgroup v1 controllers for Docker
DefaultDependencies=no
Before=containerd.service docker.service sysinit.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/testbed-cgroups
[Install]
WantedBy=sysinit.target
EOF
    mkdir -p "$rootfs/etc/systemd/system/sysinit.target.wants"
    ln -s ../testbed-cgroups.service "$rootfs/etc/systemd/system/sysinit.target.wants/testbed-cgroups.service"
    rm -f "$rootfs"/etc/ssh/ssh_host_*
    : >"$rootfs/etc/machine-id"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
}

recipe_hash() {
    local mirror="$1" security="$2"
    {
        echo "debootstrap --variant=minbase --include=$INCLUDE $SUITE $mirror $security"
        declare -f customise_rootfs
        echo "$BRIDGE_ADDR $PROXY_PORT"
        cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true
    } | sha256sum | cut -c1-16
}

rootfs_tarball() {
    local mirror security
    mirror="$(apt_mirror "$SUITE" http://deb.debian.org/debian)"
    security="$(apt_mirror "$SUITE-security" http://deb.debian.org/debian-security)"
    echo "$STATE_DIR/rootfs-$SUITE-$(recipe_hash "$mirror" "$security").tar"
}

cmd_build() {
    install_packages "${PACKAGES[@]}"
    local tarball mirror security start=$SECONDS
    tarball="$(rootfs_tarball)"
    if [ -f "$tarball" ]; then
        log "root file system: cached ($(basename "$tarball"))"
        return 0
    fi
    mirror="$(apt_mirror "$SUITE" http://deb.debian.org/debian)"
    security="$(apt_mirror "$SUITE-security" http://deb.debian.org/debian-security)"
    mkdir -p "$STATE_DIR"
    ROOTFS="$(mktemp -d /var/tmp/soulmatting-nspawn-rootfs.XXXXXX)"
    trap 'rm -rf --one-file-system "$ROOTFS"' EXIT
    debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOTFS" "$mirror" >"$ROOTFS.log" 2>&1 \
        || { tail -n 30 "$ROOTFS.log"; rm -f "$ROOTFS.log"; die "debootstrap failed"; }
    rm -f "$ROOTFS.log"
    customise_rootfs "$ROOTFS" "$mirror" "$security"
    tar -C "$ROOTFS" --numeric-owner --xattrs --xattrs-include='*' -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    # Older recipes' tarballs are of no more use.
    find "$STATE_DIR" -maxdepth 1 -name "rootfs-$SUITE-*.tar" ! -path "$tarball" -delete
    rm -rf --one-file-system "$ROOTFS"
    trap - EXIT
    log "root file system: built in $((SECONDS - start)) s ($(basename "$tarball"), $(du -m "$tarball" | cut -f1) MB)"
}

# ------------------------------------------------------------------------------------------------- net

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

proxy_up() { curl -fsS -o /dev/null --max-time 3 "http://$BRIDGE_ADDR:$PROXY_PORT/" 2>/dev/null || [ "$?" -eq 22 ]; }
registry_up() { curl -fsS -o /dev/null --max-time 3 "http://$REGISTRY_ADDR/v2/"; }

start_proxy() {
    if pid_alive "$PROXY_PIDFILE"; then return 0; fi
    local upstream=""
    # Chain to this machine's own proxy when it has one.
    if [ -n "${http_proxy:-${HTTP_PROXY:-}}" ]; then
        upstream="Upstream http ${http_proxy:-${HTTP_PROXY:-}}"
        upstream="${upstream/http:\/\//}"
        upstream="${upstream%/}"
    fi
    cat >"$PROXY_CONF" <<EOF
Port $PROXY_PORT
Listen $BRIDGE_ADDR
Timeout 600
MaxClients 100
Allow ${BRIDGE_CIDR%.*/*}.0/24
LogLevel Warning
LogFile "$PROXY_LOG"
$upstream
EOF
    setsid tinyproxy -d -c "$PROXY_CONF" </dev/null >>"$PROXY_LOG" 2>&1 &
    echo $! >"$PROXY_PIDFILE"
    wait_for 15 proxy_up || { tail -n 20 "$PROXY_LOG"; die "the apt proxy did not answer on $BRIDGE_ADDR:$PROXY_PORT"; }
}

start_registry() {
    if pid_alive "$REGISTRY_PIDFILE" && registry_up; then return 0; fi
    mkdir -p "$REGISTRY_STORAGE"
    cat >"$REGISTRY_CONF" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_STORAGE
  maintenance:
    readonly:
      enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
    setsid docker-registry serve "$REGISTRY_CONF" </dev/null >>"$REGISTRY_LOG" 2>&1 &
    echo $! >"$REGISTRY_PIDFILE"
    wait_for 30 registry_up || { tail -n 20 "$REGISTRY_LOG"; die "the registry did not answer on $REGISTRY_ADDR"; }
}

cmd_net() {
    install_packages "${PACKAGES[@]}"
    mkdir -p "$STATE_DIR"
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "$BRIDGE_CIDR" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
    # The engine on this machine drops forwarded traffic by default, bridged frames included
    # (br_netfilter): the hosts on the bridge may talk to each other.
    if iptables -nL FORWARD >/dev/null 2>&1 && ! iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; then
        iptables -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
    fi
    start_proxy
    start_registry
}

# ---------------------------------------------------------------------------------------------- machines

check_name() {
    [[ "$1" =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "a host name is 1-10 lowercase letters and digits, starting with a letter (got '$1')"
}

machine_dir() { echo "$MACHINES_DIR/$1"; }
netns() { echo "smtb-$1"; }

# Each host gets a cgroup of its own, under this script's, in every hierarchy: with --keep-unit,
# nspawn would otherwise put every host in the same `supervisor` and `payload` cgroups, and the
# host's cgroup namespace would be rooted where this machine's own processes are.
own_cgroups() {
    local _ ctrls path root
    while IFS=: read -r _ ctrls path; do
        case "$ctrls" in
            "") root="$(findmnt -rn -t cgroup2 -o TARGET | head -n 1)" ;;
            name=systemd) root=/sys/fs/cgroup/systemd ;;
            *) root="/sys/fs/cgroup/$ctrls" ;;
        esac
        if [ -n "$root" ] && [ -f "$root/cgroup.procs" ]; then echo "${root}${path%/}"; fi
    done </proc/self/cgroup
}

make_cgroups() {
    local name="$1" list="$2" parent cg
    : >"$list"
    while read -r parent; do
        cg="$parent/smtb-$name"
        mkdir -p "$cg"
        # A cpuset v1 cgroup takes no task before it has CPUs and memory nodes.
        if [ -f "$cg/cpuset.cpus" ] && [ -z "$(cat "$cg/cpuset.cpus")" ]; then
            cat "$parent/cpuset.cpus" >"$cg/cpuset.cpus"
            cat "$parent/cpuset.mems" >"$cg/cpuset.mems"
        fi
        echo "$cg" >>"$list"
    done < <(own_cgroups)
}

# Whatever a killed host left running in its cgroups.
kill_cgroups() {
    local list="$1" pids=()
    [ -f "$list" ] || return 0
    mapfile -t pids < <(xargs -r -I{} find {} -name cgroup.procs -exec cat {} + <"$list" 2>/dev/null | sort -u)
    [ "${#pids[@]}" -eq 0 ] || kill -KILL "${pids[@]}" 2>/dev/null || true
}

remove_cgroups() {
    local list="$1" cg
    [ -f "$list" ] || return 0
    while read -r cg; do
        if [ -d "$cg" ]; then find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
    done <"$list"
    rm -f "$list"
}

# Docker inside a host needs the cpu and memory controllers (the stack sets CPU and memory limits).
# Where this machine's cgroup v2 hierarchy has them, the hosts boot on it; where its kernel keeps
# them on cgroup v1 (a hybrid layout), the hosts boot on v1 and make their controllers writable
# (testbed-cgroups.service in the root file system).
unified_hierarchy() {
    local v2
    v2="$(findmnt -rn -t cgroup2 -o TARGET | head -n 1)"
    if [ -n "$v2" ] && grep -qw cpu "$v2/cgroup.controllers" && grep -qw memory "$v2/cgroup.controllers"; then
        echo 1
    else
        echo 0
    fi
}

ensure_key() {
    mkdir -p "$STATE_DIR"
    [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C soulmatting-testbed -f "$KEY"
}

# Creates the host's disk from the cached root file system, with its own identity.
create_machine() {
    local name="$1" address="$2" dir root tarball
    dir="$(machine_dir "$name")"
    root="$dir/root"
    tarball="$(rootfs_tarball)"
    [ -f "$tarball" ] || cmd_build
    mkdir -p "$root"
    tar -C "$root" --numeric-owner --xattrs --xattrs-include='*' -xpf "$tarball"
    # The build's temporary directory was 0700: the host's / is not.
    chmod 0755 "$root"
    echo "$name" >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n' "$name" >"$root/etc/hosts"
    systemd-id128 new >"$root/etc/machine-id"
    ssh-keygen -A -f "$root" >/dev/null
    local ids
    ids="$(awk -F: '$1 == "deploy" { print $3 ":" $4 }' "$root/etc/passwd")"
    install -d -m 0700 -o "${ids%:*}" -g "${ids#*:}" "$root/home/deploy/.ssh"
    install -m 0600 -o "${ids%:*}" -g "${ids#*:}" "$KEY.pub" "$root/home/deploy/.ssh/authorized_keys"
    echo "$address" >"$dir/address"
}

# The hosts' disks live in memory: unpacking a host, dpkg's and Docker's writes and removing a
# host cost next to nothing there, and a host's disk still outlives its reboots. `down` frees it.
ensure_machines_fs() {
    mkdir -p "$MACHINES_DIR"
    mountpoint -q "$MACHINES_DIR" || mount -t tmpfs -o size=12g,mode=0700 soulmatting-testbed-hosts "$MACHINES_DIR"
}

ensure_netns() {
    local name="$1" address="$2" ns
    ns="$(netns "$name")"
    [ -e "/run/netns/$ns" ] || ip netns add "$ns"
    if ! ip link show "$ns" >/dev/null 2>&1; then
        ip link add "$ns" type veth peer name eth0 netns "$ns"
        ip link set "$ns" master "$BRIDGE" up
    fi
    ip -n "$ns" link set lo up
    ip -n "$ns" addr replace "$address/24" dev eth0
    ip -n "$ns" link set eth0 up
}

ssh_ready() { ssh "${SSH_OPTS[@]}" -i "$KEY" "deploy@$1" true; }

cmd_start() {
    [ "$#" -eq 2 ] || die "usage: $0 start NAME ADDRESS"
    local name="$1" address="$2" dir
    check_name "$name"
    if ! [[ "$address" =~ ^${BRIDGE_ADDR%.*}\.([0-9]+)$ ]] || [ "${BASH_REMATCH[1]}" -lt 2 ] || [ "${BASH_REMATCH[1]}" -gt 254 ]; then
        die "ADDRESS must be in ${BRIDGE_ADDR%.*}.2-254 (got '$address')"
    fi
    dir="$(machine_dir "$name")"
    cmd_net
    ensure_key
    ensure_machines_fs
    if [ ! -d "$dir/root" ]; then
        create_machine "$name" "$address"
    elif [ "$(cat "$dir/address")" != "$address" ]; then
        die "$name exists with address $(cat "$dir/address"): destroy it first"
    fi
    ensure_netns "$name" "$address"
    if ! pid_alive "$dir/pid"; then
        remove_cgroups "$dir/cgroups"
        make_cgroups "$name" "$dir/cgroups"
        (
            # This subshell moves itself into the host's cgroups, then becomes the nspawn supervisor.
            while read -r cg; do echo "$BASHPID" >"$cg/cgroup.procs"; done <"$dir/cgroups"
            # Docker inside the host needs every capability and the keyring and bpf system calls;
            # --register=no --keep-unit because this machine has no systemd.
            SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="$(unified_hierarchy)" exec setsid systemd-nspawn --quiet \
                --directory="$dir/root" --machine="$name" --boot \
                --register=no --keep-unit --network-namespace-path="/run/netns/$(netns "$name")" \
                --capability=all --system-call-filter='@keyring bpf' \
                --resolv-conf=off --timezone=off --console=read-only
        ) </dev/null >>"$dir/console.log" 2>&1 &
        echo $! >"$dir/pid"
    fi
    local start=$SECONDS
    if ! wait_for 120 ssh_ready "$address"; then
        tail -n 30 "$dir/console.log" >&2
        die "$name did not answer over SSH on $address within 120 s (console: $dir/console.log)"
    fi
    log "$name: up on $address ($((SECONDS - start)) s to sshd)"
}

# stop NAME [SECONDS]: an orderly shutdown, given SECONDS (90) before the host is killed.
cmd_stop() {
    [ "$#" -ge 1 ] || die "usage: $0 stop NAME"
    local name="$1" grace="${2:-90}" dir pid
    check_name "$name"
    dir="$(machine_dir "$name")"
    if pid_alive "$dir/pid"; then
        pid="$(cat "$dir/pid")"
        # nspawn turns SIGTERM into an orderly shutdown of the host's systemd.
        kill -TERM "$pid"
        if ! wait_for "$grace" bash -c "! kill -0 $pid"; then
            log "$name: no orderly shutdown within $grace s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_for 10 bash -c "! kill -0 $pid" || true
        fi
        log "$name: stopped"
    fi
    rm -f "$dir/pid"
    kill_cgroups "$dir/cgroups"
    remove_cgroups "$dir/cgroups"
}

cmd_reboot() {
    [ "$#" -eq 1 ] || die "usage: $0 reboot NAME"
    local dir
    dir="$(machine_dir "$1")"
    [ -f "$dir/address" ] || die "no host $1"
    cmd_stop "$1"
    cmd_start "$1" "$(cat "$dir/address")"
}

cmd_destroy() {
    local name dir
    for name in "$@"; do
        check_name "$name"
        dir="$(machine_dir "$name")"
        # Its disk goes too: no need to wait long for an orderly shutdown.
        cmd_stop "$name" 10
        ip netns del "$(netns "$name")" 2>/dev/null || true
        ip link del "$(netns "$name")" 2>/dev/null || true
        if [ -d "$dir" ]; then
            # Never follow a mount a host may have left behind into this machine's own files.
            if findmnt -rno TARGET | grep -q "^$dir/"; then
                die "$name: something is still mounted under $dir"
            fi
            rm -rf --one-file-system "$dir"
            log "$name: destroyed"
        fi
    done
}

cmd_down() {
    local dir
    if [ -d "$MACHINES_DIR" ]; then
        for dir in "$MACHINES_DIR"/*/; do
            [ -d "$dir" ] && cmd_destroy "$(basename "$dir")"
        done
    fi
    local pidfile
    for pidfile in "$PROXY_PIDFILE" "$REGISTRY_PIDFILE"; do
        if pid_alive "$pidfile"; then kill "$(cat "$pidfile")"; fi
        rm -f "$pidfile"
    done
    if iptables -C FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; then
        iptables -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
    fi
    ip link del "$BRIDGE" 2>/dev/null || true
    if mountpoint -q "$MACHINES_DIR"; then umount "$MACHINES_DIR"; fi
    log "network down"
}

cmd_status() {
    local tarball dir name state
    tarball="$(rootfs_tarball)"
    if [ -f "$tarball" ]; then log "root file system: $(basename "$tarball")"; else log "root file system: not built"; fi
    if ip link show "$BRIDGE" >/dev/null 2>&1; then log "bridge: $BRIDGE $BRIDGE_CIDR"; else log "bridge: none"; fi
    if pid_alive "$PROXY_PIDFILE"; then log "apt proxy: $BRIDGE_ADDR:$PROXY_PORT"; else log "apt proxy: not running"; fi
    if pid_alive "$REGISTRY_PIDFILE"; then log "registry: $REGISTRY_ADDR"; else log "registry: not running"; fi
    [ -d "$MACHINES_DIR" ] || return 0
    for dir in "$MACHINES_DIR"/*/; do
        [ -d "$dir" ] || continue
        name="$(basename "$dir")"
        if pid_alive "$dir/pid"; then state="running"; else state="stopped"; fi
        log "host $name: $(cat "$dir/address" 2>/dev/null), $state"
    done
}

main() {
    [ "$(id -u)" -eq 0 ] || die "run as root: it installs packages, makes namespaces and boots machines"
    local cmd="${1:-}"
    [ "$#" -eq 0 ] || shift
    case "$cmd" in
        build) cmd_build ;;
        net) cmd_net ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        reboot) cmd_reboot "$@" ;;
        destroy) cmd_destroy "$@" ;;
        down) cmd_down ;;
        status) cmd_status ;;
        key) ensure_key; echo "$KEY" ;;
        *) die "usage: $0 build|net|start NAME ADDRESS|stop NAME|reboot NAME|destroy NAME...|down|status|key" ;;
    esac
}

main "$@"
