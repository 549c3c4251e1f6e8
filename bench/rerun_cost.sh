#!/usr/bin/env bash
# What a re-run that changes nothing costs, against the floor of any Compose-based role: the
# all-in-one data layer of `make deploy` (playbooks/site.yml with the test bed's images) re-run on a
# deployed host, side by side with a one-task playbook whose only task is a no-op
# community.docker.docker_compose_v2 on a running one-service project. Rounds alternate the two;
# the medians and their ratio are printed, with the no-op run's task count (it must be changed=0).
# Needs the test bed's images (`make testbed`).
#   bench/rerun_cost.sh [ROUNDS]        BENCH_REPO=DIR measures another checkout the same way
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
repo=${BENCH_REPO:-$here}
rounds=${1:-5}
bin=$here/${VENV:-.venv}/bin
export ANSIBLE_COLLECTIONS_PATH="$repo/.cache/collections" ANSIBLE_PIPELINING=1 ANSIBLE_NOCOWS=1
scratch=$(mktemp -d)
root=/var/tmp/soulmatting-bench
site=(-i "$repo/inventories/local/hosts.yml" "$repo/playbooks/site.yml" -e "@$here/tests/testbed/deploy-vars.yml"
      -e "@$here/bench/bench-vars.yml" -e selfhosted_image_registry= -e "selfhosted_secrets_dir=$scratch/secrets")

teardown() {
  local dir
  for dir in "$root"/*/; do
    if [ -f "$dir/compose.yaml" ]; then
      docker compose --project-directory "$dir" down >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$root"
}
trap 'teardown; rm -rf "$scratch"' EXIT

# The floor: one running service, one task that finds nothing to do.
cat >"$scratch/floor.yml" <<YAML
- name: The floor
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Keep a running project as it is
      community.docker.docker_compose_v2: {project_src: $root/floor, state: present, pull: missing, wait: true}
YAML

seconds() {
  # seconds LOG COMMAND...: runs the command, prints its wall time; fails loudly with its log.
  local start end
  start=$(date +%s.%N)
  "${@:2}" >"$1" 2>&1 || { tail -n 40 "$1" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

teardown
mkdir -p "$root/floor"
cat >"$root/floor/compose.yaml" <<YAML
name: bench-floor
services:
  redis:
    image: soulmatting-testbed/redis:latest
    healthcheck: {test: [CMD, redis-cli, ping], interval: 10s}
YAML
first=$(seconds "$scratch/first.log" "$bin/ansible-playbook" "${site[@]}")
seconds "$scratch/floor-warm.log" "$bin/ansible-playbook" -i localhost, -c local -e "ansible_python_interpreter=$bin/python" "$scratch/floor.yml" >/dev/null

: >"$scratch/floor.times"; : >"$scratch/noop.times"
for round in $(seq 1 "$rounds"); do
  seconds "$scratch/floor.log" "$bin/ansible-playbook" -i localhost, -c local -e "ansible_python_interpreter=$bin/python" "$scratch/floor.yml" >>"$scratch/floor.times"; echo >>"$scratch/floor.times"
  seconds "$scratch/noop.log" "$bin/ansible-playbook" "${site[@]}" >>"$scratch/noop.times"; echo >>"$scratch/noop.times"
  recap=$(grep -E '^localhost +:' "$scratch/noop.log" | tr -s ' ')
  case "$recap" in *" changed=0 "*) ;; *) echo "round $round: the re-run changed something: $recap" >&2; exit 1 ;; esac
done

floor=$(median <"$scratch/floor.times")
noop=$(median <"$scratch/noop.times")
tasks=$(grep -cE '^TASK \[' "$scratch/noop.log")
echo "checkout:        $(git -C "$repo" log -1 --format='%h %s' | cut -c1-72)"
echo "machine:         $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), ansible-core $("$bin/python" -c 'import ansible.release as r; print(r.__version__)')"
echo "first run:       ${first} s"
echo "floor (median):  ${floor} s   one no-op docker_compose_v2 task; all: $(tr '\n' ' ' <"$scratch/floor.times")"
echo "no-op (median):  ${noop} s   $tasks tasks, $recap; all: $(tr '\n' ' ' <"$scratch/noop.times")"
echo "ratio:           $(awk -v a="$noop" -v b="$floor" 'BEGIN { printf "%.1f", a / b }')x the floor ($rounds rounds, alternating)"
