#!/usr/bin/env bash
# Every module, filter and role entry point of the collection must render in ansible-doc.
set -euo pipefail
shopt -s nullglob

cd "$(dirname "$0")/.."
doc=${VENV:-.venv}/bin/ansible-doc
export ANSIBLE_COLLECTIONS_PATH="$PWD/.cache/collections"
failed=0
check() {
  if ! out=$("$doc" "$@" 2>&1) || [ -z "$out" ] || grep -q '^\[WARNING\]: .*not found' <<<"$out"; then
    echo "ansible-doc $*: failed" >&2
    echo "$out" | tail -n 5 >&2
    failed=1
  fi
}
for f in plugins/modules/*.py; do
  check -t module "soulmatting.selfhosted.$(basename "$f" .py)"
done
for f in plugins/filter/*.py; do
  check -t filter "soulmatting.selfhosted.$(basename "$f" .py)"
done
for spec in roles/*/meta/argument_specs.yml; do
  role=$(basename "$(dirname "$(dirname "$spec")")")
  for entry in $("${VENV:-.venv}/bin/python" -c 'import sys, yaml; print(" ".join(yaml.safe_load(open(sys.argv[1]))["argument_specs"]))' "$spec"); do
    check -t role -e "$entry" "soulmatting.selfhosted.$role"
  done
done
[ "$failed" = 0 ] && echo "ansible-doc: every module, filter and role entry point renders"
exit "$failed"
