#!/usr/bin/env bash
# Deploys the stack with playbooks/site.yml.
#   scripts/deploy.sh testbed [INVENTORY]   images built from tests/images, served by a local
#                                           registry on 127.0.0.1:5000 (the air-gapped route)
#   scripts/deploy.sh upstream [INVENTORY]  the pinned upstream images, pulled by each host
set -euo pipefail

cd "$(dirname "$0")/.."
source=${1:-testbed}
inventory=${2:-inventories/local/hosts.yml}
venv=${VENV:-.venv}
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections"
export PYTHON="$PWD/$venv/bin/python"

scripts/setup.sh runtime
args=(-i "$inventory" playbooks/site.yml)
case "$source" in
  testbed)
    # This machine cannot reach Docker Hub: build the images here, serve them from a private
    # registry, and point the roles at it, exactly as an air-gapped site would.
    tests/testbed/setup.sh engine
    tests/testbed/setup.sh base
    images=(postgres redis seaweedfs envoy postgres-meta pgbackrest prometheus alertmanager blackbox-exporter
            node-exporter postgres-exporter redis-exporter traefik)
    tests/testbed/setup.sh images "${images[@]}"
    tests/testbed/setup.sh registry
    tests/testbed/setup.sh push "${images[@]}"
    # Drop the registry-named tags pushing left behind, so the hosts really pull from the registry.
    for name in "${images[@]}"; do
      docker image rm "127.0.0.1:5000/soulmatting-testbed/$name:latest" >/dev/null 2>&1 || true
    done
    args+=(-e @tests/testbed/deploy-vars.yml)
    ;;
  upstream) ;;
  *) echo "usage: $0 testbed|upstream [INVENTORY]" >&2; exit 2 ;;
esac
exec "$venv/bin/ansible-playbook" "${args[@]}"
