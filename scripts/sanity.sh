#!/usr/bin/env bash
# Runs `ansible-test sanity` on a copy of the collection placed where ansible-test requires it
# (a path ending in ansible_collections/soulmatting/selfhosted). Files git tracks or would track
# are copied, so the result matches what would be committed.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
work=${SANITY_DIR:-build/sanity}   # several checkouts or runs side by side each give their own
root=$work/ansible_collections/soulmatting/selfhosted
pyver=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# ansible-test downloads a get-pip bootstrap script; offline, a stand-in that bootstraps pip from
# the interpreter's own ensurepip and installs from the package index pip is configured for.
cache="$HOME/.ansible/test/cache"
mkdir -p "$cache"
for name in get_pip_24_2.py get_pip_25_0.py get_pip_25_1.py get_pip_25_2.py; do
  cp scripts/get_pip_offline.py "$cache/$name"
done

rm -rf "$work"
mkdir -p "$root"
git ls-files -z --cached --others --exclude-standard | xargs -0 -r tar -c --ignore-failed-read -f - | tar -x -C "$root"
cd "$root"
git init -q . && git add -A >/dev/null 2>&1   # ansible-test lists files through git when it can
exec "$OLDPWD/$venv/bin/ansible-test" sanity --color no --venv --python "$pyver" "$@"
