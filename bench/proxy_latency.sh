#!/usr/bin/env bash
# What the public door costs: requests per second and p50/p99 latency to a backend directly, through
# the Supabase gateway (the real Envoy of the supabase role), and through the proxy (the traefik and the
# caddy role, HTTPS with a certificate from Pebble) and the gateway, side by side in one run, with wrk
# (Debian's package, installed when missing). The backend stands in for PostgREST behind the gateway's
# keyed REST route (the apikey is matched there, as for every API call): a static responder (Caddy's
# `respond`), fast, so that the hops' own cost shows. Not the tests' Python echo stand-in: it sends
# headers and body in two writes, so every keep-alive request waits about 40 ms for the client's delayed
# ACK, which would be all a benchmark of it measured. Each target is measured with one connection
# (latency) and with CONNECTIONS (throughput); wrk runs on the host and reaches the containers at their
# addresses on the edge network, so no Docker port proxy is in the path.
# Needs the test bed's images (`make testbed`); deploys under /var/tmp/soulmatting-bench-proxy with its
# own names (benchpx-*) and removes everything when it ends.
# Rounds alternate the paths; the medians are reported, with their ratios to the direct path.
#   bench/proxy_latency.sh [SECONDS] [ROUNDS]    PROXIES="traefik caddy" CONNECTIONS=32 THREADS=2
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-10}
rounds=${2:-3}
proxies=${PROXIES:-traefik caddy}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
bin=$here/${VENV:-.venv}/bin
export ANSIBLE_COLLECTIONS_PATH="$here/.cache/collections" ANSIBLE_PIPELINING=1 ANSIBLE_NOCOWS=1
instance=benchpx
root=/var/tmp/soulmatting-bench-proxy
scratch=$(mktemp -d)
domain=bench.test

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk (Debian's package)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; }
fi

teardown() {
  local dir
  for dir in "$root"/*/; do
    if [ -f "$dir/compose.yaml" ]; then
      docker compose --project-directory "$dir" down --remove-orphans >/dev/null 2>&1 || true
    fi
  done
  docker rm -f "$instance-pebble-traefik" "$instance-pebble-caddy" >/dev/null 2>&1 || true
  docker network rm "${instance}_edge" "${instance}_data" >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap 'teardown; rm -rf "$scratch"' EXIT

# --- The stack: data layer, Supabase with its real gateway, both proxies ------------------------------
cat >"$scratch/hosts.yml" <<YAML
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: $bin/python
  children:
    soulmatting: {hosts: {localhost: }}
    postgres: {hosts: {localhost: }}
    object_store: {hosts: {localhost: }}
    supabase: {hosts: {localhost: }}
    proxy: {hosts: {localhost: }}
YAML
cat >"$scratch/vars.yml" <<YAML
selfhosted_instance: $instance
selfhosted_root_dir: $root
selfhosted_secrets_dir: $scratch/secrets
selfhosted_healthcheck_interval: 2s
docker_service_manage: false
postgres_image: soulmatting-testbed/postgres:latest
postgres_major_version: "15"
postgres_port: 27432
postgres_memory_mb: 512
minio_engine: seaweedfs
minio_seaweedfs_image: soulmatting-testbed/seaweedfs:latest
minio_api_port: 27300
minio_memory_mb: 512
supabase_gateway_port: 27000
supabase_public_url: https://api.$domain
supabase_disabled_services: [auth, realtime, storage, imgproxy, meta, functions, studio]
supabase_image_overrides:
  envoy: soulmatting-testbed/envoy:latest
  rest: soulmatting-testbed/caddy:latest
supabase_service_overrides:
  rest:
    command: [caddy, respond, --listen, ":3000", --body, '[{"stand_in": "rest", "static": true}]']
    healthcheck: {test: [CMD, curl, -fsS, "http://localhost:3000/health"]}
selfhosted_proxy_hosts: {api: api.$domain}
selfhosted_acme_challenge: http
traefik_image: soulmatting-testbed/traefik:latest
traefik_listen_address: 127.0.0.1
traefik_http_port: 27080
traefik_https_port: 27443
caddy_image: soulmatting-testbed/caddy:latest
caddy_listen_address: 127.0.0.1
caddy_http_port: 27081
caddy_https_port: 27444
YAML
cat >"$scratch/site.yml" <<YAML
- {name: Docker Engine, hosts: soulmatting, gather_facts: false, roles: [soulmatting.selfhosted.docker]}
- {name: PostgreSQL, hosts: postgres, gather_facts: false, roles: [soulmatting.selfhosted.postgres]}
- {name: Object store, hosts: object_store, gather_facts: false, roles: [soulmatting.selfhosted.minio]}
- {name: Supabase services, hosts: supabase, gather_facts: false, roles: [soulmatting.selfhosted.supabase]}
YAML
for proxy in $proxies; do
  cat >>"$scratch/site.yml" <<YAML
- name: The $proxy door
  hosts: proxy
  gather_facts: false
  vars:
    selfhosted_acme_ca: https://$instance-pebble-$proxy:14000/dir
    selfhosted_acme_ca_root: $scratch/pebble-$proxy/ca.pem
  roles: [soulmatting.selfhosted.$proxy]
YAML
done

ip_of() { docker inspect -f "{{(index .NetworkSettings.Networks \"${instance}_edge\").IPAddress}}" "$1"; }

teardown
docker network create "${instance}_edge" >/dev/null
# One Pebble per proxy: each one's mock DNS answers every name with its proxy's address.
port=27150
for proxy in $proxies; do
  mkdir -p "$scratch/pebble-$proxy"
  docker run -d --name "$instance-pebble-$proxy" --network "${instance}_edge" -e "PEBBLE_DEFAULT_IPV4=$instance-$proxy" \
    -e "PEBBLE_CERT_NAMES=$instance-pebble-$proxy" -v "$scratch/pebble-$proxy:/etc/pebble/certs" \
    -p "127.0.0.1:$port:15000" soulmatting-testbed/pebble:latest >/dev/null
  for _ in $(seq 1 60); do
    [ -s "$scratch/pebble-$proxy/ca.pem" ] && curl -fsS --cacert "$scratch/pebble-$proxy/ca.pem" -o "$scratch/root-$proxy.pem" \
      "https://127.0.0.1:$port/roots/0" 2>/dev/null && break
    sleep 1
  done
  port=$((port + 1))
done

echo "deploying the stack (about two minutes)" >&2
"$bin/ansible-playbook" -i "$scratch/hosts.yml" "$scratch/site.yml" -e "@$scratch/vars.yml" >"$scratch/deploy.log" 2>&1 \
  || { tail -n 40 "$scratch/deploy.log" >&2; exit 1; }

anon=$("$bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["anon_key"])' "$scratch/secrets/supabase_keys.json")
gateway=$(ip_of "$instance-gateway")
direct="http://$(ip_of "$instance-rest"):3000/todos?select=id"
through_gateway="http://$gateway:8000/rest/v1/todos?select=id"
through_proxy="https://api.$domain/rest/v1/todos?select=id"

# wrk resolves api.bench.test through /etc/hosts: a private copy, in a mount namespace of its own.
in_hosts() {
  # in_hosts ADDRESS COMMAND...: runs the command with api.$domain resolving to ADDRESS.
  { cat /etc/hosts; echo "$1 api.$domain"; } >"$scratch/hosts.$1"
  local hosts="$scratch/hosts.$1"
  shift
  unshare -m sh -c "mount --bind \"\$0\" /etc/hosts && exec \"\$@\"" "$hosts" "$@"
}
for proxy in $proxies; do
  address=$(ip_of "$instance-$proxy")
  for _ in $(seq 1 60); do
    in_hosts "$address" curl -fsS -o /dev/null --cacert "$scratch/root-$proxy.pem" -H "apikey: $anon" "$through_proxy" 2>/dev/null && break
    sleep 1
  done
  in_hosts "$address" curl -fsS -o /dev/null --cacert "$scratch/root-$proxy.pem" -H "apikey: $anon" "$through_proxy" \
    || { echo "no certificate from Pebble for $proxy" >&2; exit 1; }
done

ms() {
  # A wrk duration (850.00us, 1.20ms, 1.01s) in milliseconds.
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}
wrk_run() {
  # wrk_run CONNECTIONS DURATION URL [ADDRESS]: wrk's report; with ADDRESS, api.$domain resolves to it.
  local conns=$1 duration=$2 target=$3 address=${4:-} t=$threads
  [ "$conns" -lt "$t" ] && t=$conns
  if [ -n "$address" ]; then
    in_hosts "$address" wrk -t "$t" -c "$conns" -d "$duration" --latency -H "apikey: $anon" "$target"
  else
    wrk -t "$t" -c "$conns" -d "$duration" --latency -H "apikey: $anon" "$target"
  fi
}
cpu_us() {
  # CPU time a container (cgroup v1 or v2) or, for "dockerd", the Docker daemon (which carries every log
  # line) has used, in microseconds.
  local id
  if [ "$1" = dockerd ]; then
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1000000 / hz }' "/proc/$(pidof dockerd | cut -d' ' -f1)/stat"
    return
  fi
  id=$(docker inspect -f '{{.Id}}' "$1")
  if [ -r "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage" ]; then
    echo $(($(cat "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage") / 1000))
  else
    awk '$1 == "usage_usec" { print $2 }' "/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat" 2>/dev/null \
      || awk '$1 == "usage_usec" { print $2 }' "/sys/fs/cgroup/docker/$id/cpu.stat"
  fi
}
measure() {
  # measure LABEL CONNECTIONS URL [ADDRESS]: a warm-up, then one run; prints "LABEL c=N rps p50 p99 errors
  # CPU-per-request" (microseconds in the proxy, the gateway, the backend and dockerd).
  local label=$1 conns=$2 out rps p50 p99 errors proxy before after count
  proxy=${label%+gateway}
  [ "$proxy" = "$label" ] && proxy=none
  wrk_run "$conns" 2s "${@:3}" >/dev/null
  before=$(for part in "$proxy" gateway rest dockerd; do
    if [ "$part" = none ]; then echo 0; elif [ "$part" = dockerd ]; then cpu_us dockerd; else cpu_us "$instance-$part"; fi; done)
  out=$(wrk_run "$conns" "${seconds}s" "${@:3}")
  after=$(for part in "$proxy" gateway rest dockerd; do
    if [ "$part" = none ]; then echo 0; elif [ "$part" = dockerd ]; then cpu_us dockerd; else cpu_us "$instance-$part"; fi; done)
  count=$(awk '/requests in/ { print $1 }' <<<"$out")
  rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
  p50=$(ms "$(awk '$1 == "50%" { print $2 }' <<<"$out")")
  p99=$(ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  errors=$(awk '/Non-2xx/ { e = e "non2xx=" $NF "," } /Socket errors/ { gsub(/,/, ""); e = e "socket=" $4 "/" $6 "/" $8 "/" $10 "," }
                END { sub(/,$/, "", e); print (e == "" ? "none" : e) }' <<<"$out")
  printf '%s c=%s %s %s %s %s %s\n' "$label" "$conns" "$rps" "$p50" "$p99" "$errors" \
    "$(paste -d' ' <(echo "$before") <(echo "$after") | awk -v n="${count:-1}" '{ printf "%s%d", (NR > 1 ? "/" : ""), ($2 - $1) / n }')"
}

results="$scratch/results"
: >"$results"
for _ in $(seq 1 "$rounds"); do
  for conns in 1 "$connections"; do
    measure "direct" "$conns" "$direct" | tee -a "$results"
    measure "gateway" "$conns" "$through_gateway" | tee -a "$results"
    for proxy in $proxies; do
      measure "$proxy+gateway" "$conns" "$through_proxy" "$(ip_of "$instance-$proxy")" | tee -a "$results"
    done
  done
done >&2

echo
echo "checkout:  $(git -C "$here" log -1 --format='%h %s' | cut -c1-72)"
echo "machine:   $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "wrk:       $rounds rounds of ${seconds}s per path, 1 and $connections connections, $threads threads at most; $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo
"$bin/python" - "$results" <<'PY'
import statistics
import sys

rows = {}
for line in open(sys.argv[1]):
    label, conns, rps, p50, p99, errors, cpu = line.split()
    entry = rows.setdefault((label, conns[2:]), {"rps": [], "p50": [], "p99": [], "errors": [], "cpu": []})
    entry["rps"].append(float(rps or 0))
    entry["p50"].append(float(p50))
    entry["p99"].append(float(p99))
    entry["cpu"].append([int(part) for part in cpu.split("/")])
    if errors != "none":
        entry["errors"].append(errors)
print("%-16s %5s %8s %8s %8s %6s %9s  %-40s %s" % ("path (medians)", "conns", "req/s", "p50 ms", "p99 ms", "x rps", "p50 added",
                                                   "CPU us per request: proxy/gw/backend/dockerd", "errors"))
for (label, conns), entry in rows.items():
    base = rows[("direct", conns)]
    rps, p50, p99 = (statistics.median(entry[k]) for k in ("rps", "p50", "p99"))
    base_rps, base_p50 = statistics.median(base["rps"]), statistics.median(base["p50"])
    cpu = "/".join("%d" % statistics.median(run[i] for run in entry["cpu"]) for i in range(4))
    print("%-16s %5s %8.0f %8.3f %8.3f %6.2f %9.3f  %-40s %s" % (label, conns, rps, p50, p99, rps / base_rps if base_rps else 0,
                                                               p50 - base_p50, cpu, ",".join(entry["errors"]) or "none"))
PY
