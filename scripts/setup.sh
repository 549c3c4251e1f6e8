#!/usr/bin/env bash
# Prepares a checkout to run the collection: a virtual environment with the pinned tools, the
# dependency collections, and this collection resolvable by its FQCN. Safe to run again: each
# step is skipped when its inputs have not changed.
#   scripts/setup.sh [runtime|test]     (default: runtime)
set -euo pipefail

cd "$(dirname "$0")/.."
profile=${1:-runtime}
venv=${VENV:-.venv}
# The interpreter the virtual environment is made from (PYTHON names the one inside it).
python=${SETUP_PYTHON:-python3}

case "$profile" in
  runtime) reqs=requirements.txt ;;
  test) reqs=requirements-test.txt ;;
  *) echo "usage: $0 [runtime|test]" >&2; exit 2 ;;
esac

if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating virtual environment $venv"
  "$python" -m venv "$venv"
fi

# Reinstall only when the requirement files change.
stamp="$venv/.requirements-$profile.sha256"
want=$(cat requirements.txt "$reqs" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing $reqs into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  echo "$want" >"$stamp"
fi

# This collection, found by FQCN from the checkout itself (no copy to keep in sync).
mkdir -p .cache/collections/ansible_collections/soulmatting
ln -sfn ../../../.. .cache/collections/ansible_collections/soulmatting/selfhosted

# Dependency collections: bundled with the pinned ansible package; from Galaxy on request.
if [ "${GALAXY:-0}" = "1" ]; then
  "$venv/bin/ansible-galaxy" collection install -r requirements.yml -p .cache/collections
fi
# The version from Python, not `ansible --version | head`: the CLI raises on the pipe head closes.
echo "setup: $profile environment ready (ansible [core $("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')])"
