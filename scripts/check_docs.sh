#!/usr/bin/env bash
# Builds the collection, installs the tarball into a scratch path the way a user would, and checks
# that every module, filter, lookup and role entry point of the installed copy renders in ansible-doc.
set -euo pipefail
shopt -s nullglob

cd "$(dirname "$0")/.."
bin=${VENV:-.venv}/bin
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

"$bin/ansible-galaxy" collection build --force --output-path "$scratch/dist" . >/dev/null
tarball=$(echo "$scratch"/dist/soulmatting-selfhosted-*.tar.gz)
export ANSIBLE_COLLECTIONS_PATH="$scratch/collections"
"$bin/ansible-galaxy" collection install --offline --no-deps -p "$scratch/collections" "$tarball" >/dev/null
installed="$scratch/collections/ansible_collections/soulmatting/selfhosted"

failed=0
check() {
  if ! out=$("$bin/ansible-doc" "$@" 2>&1) || [ -z "$out" ] || grep -q '^\[WARNING\]: .*not found' <<<"$out"; then
    echo "ansible-doc $*: failed" >&2
    echo "$out" | tail -n 5 >&2
    failed=1
  fi
}
for f in "$installed"/plugins/modules/*.py; do
  check -t module "soulmatting.selfhosted.$(basename "$f" .py)"
done
for kind in filter lookup; do
  for f in "$installed"/plugins/"$kind"/*.py; do
    check -t "$kind" "soulmatting.selfhosted.$(basename "$f" .py)"
  done
done
for spec in "$installed"/roles/*/meta/argument_specs.yml; do
  role=$(basename "$(dirname "$(dirname "$spec")")")
  for entry in $("$bin/python" -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["argument_specs"]))' "$spec"); do
    check -t role -e "$entry" "soulmatting.selfhosted.$role"
  done
done
# Test tooling stays out of the tarball.
for excluded in tests molecule scripts Makefile .ci; do
  if [ -e "$installed/$excluded" ]; then
    echo "the built collection contains $excluded" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] && echo "ansible-doc: $(basename "$tarball") installs; every module, filter, lookup and role entry point renders"
exit "$failed"
