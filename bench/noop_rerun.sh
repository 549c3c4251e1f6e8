#!/usr/bin/env bash
# How much a re-run costs: deploys the all-in-one data layer from nothing with the test bed's
# images, then runs the same playbook again (which must change nothing), side by side in one run.
# Prints both wall times, their ratio, and the task counts. Needs `make testbed` first.
#   bench/noop_rerun.sh [ROUNDS]
set -euo pipefail

cd "$(dirname "$0")/.."
rounds=${1:-3}
bin=${VENV:-.venv}/bin
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections"
scratch=$(mktemp -d)
args=(-i inventories/local/hosts.yml playbooks/site.yml -e @tests/testbed/deploy-vars.yml
      -e @bench/bench-vars.yml -e selfhosted_image_registry= -e "selfhosted_secrets_dir=$scratch/secrets")

teardown() {
  for project in postgres redis minio; do
    if [ -f "/var/tmp/soulmatting-bench/$project/compose.yaml" ]; then
      docker compose --project-directory "/var/tmp/soulmatting-bench/$project" down --volumes >/dev/null 2>&1 || true
    fi
  done
  rm -rf /var/tmp/soulmatting-bench
}
trap 'teardown; rm -rf "$scratch"' EXIT

timed_run() {
  # timed_run LOG: runs the playbook, prints "<seconds> <recap line>"
  local start end
  start=$(date +%s.%N)
  "$bin/ansible-playbook" "${args[@]}" >"$1" 2>&1 || { tail -n 40 "$1" >&2; exit 1; }
  end=$(date +%s.%N)
  printf '%s %s\n' "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')" "$(grep -E '^localhost +:' "$1" | tr -s ' ')"
}

printf '%-6s %-12s %-12s %-7s %s\n' round first_s noop_s ratio "no-op recap"
for round in $(seq 1 "$rounds"); do
  teardown
  read -r first _ < <(timed_run "$scratch/first.log")
  read -r noop recap < <(timed_run "$scratch/noop.log")
  printf '%-6s %-12s %-12s %-7s %s\n' "$round" "$first" "$noop" \
    "$(awk -v a="$noop" -v b="$first" 'BEGIN { printf "%.2f", a / b }')" "$recap"
done
