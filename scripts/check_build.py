"""The built collection carries no secret, no local state and no cache, whatever ran in the checkout.

Generates secrets in the checkout the way the roles do (the soulmatting.selfhosted.secret lookup, into
the default store beside an inventory and into a store named plainly `secrets`), leaves caches behind
as tools do, builds the collection with ansible-galaxy and inspects the tarball:
- no path runs through a secret store, a dot-directory or a cache directory;
- no file holds a generated secret value (nor one of a real store already in the checkout);
- the top-level entries are exactly the expected ones, so a new stray entry fails here.
Cleans up what it created. Run from the repository root with the virtual environment's Python.
"""

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
EXPECTED_TOP = {"FILES.json", "MANIFEST.json", "LICENSE", "README.md", "changelogs", "docs", "inventories", "meta",
                "playbooks", "plugins", "roles"}
FORBIDDEN_PARTS = {"secrets", "__pycache__", "tests", "molecule", "build"}
BIN = os.path.dirname(sys.executable)

PLAYBOOK = """
- name: Generate every secret of the stack the way the roles do
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Read (and so generate) each secret
      ansible.builtin.set_fact:
        generated: "{{ query('soulmatting.selfhosted.secret', names) }}"
      no_log: true
"""


def generate_secrets(store):
    """Runs the secret lookup for every name of the catalogue into STORE; returns the values."""
    sys.path.insert(0, os.path.join(ROOT, ".cache", "collections"))
    from ansible_collections.soulmatting.selfhosted.plugins.plugin_utils._secret_store import CATALOGUE  # noqa: E402

    names = sorted(CATALOGUE)
    with tempfile.TemporaryDirectory() as scratch:
        playbook = os.path.join(scratch, "generate.yml")
        with open(playbook, "w") as handle:
            handle.write(PLAYBOOK)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".cache", "collections"))
        subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local", playbook,
                        "-e", "selfhosted_secrets_dir=%s" % store, "-e", '{"names": %s}' % str(names).replace("'", '"')],
                       env=env, check=True, stdout=subprocess.DEVNULL)
    return read_store(store)


def read_store(store):
    values = []
    for name in os.listdir(store):
        path = os.path.join(store, name)
        if not name.startswith(".") and os.path.isfile(path):
            with open(path) as handle:
                value = handle.read().strip().split(" salt=")[0]
            if len(value) >= 8:
                values.append(value)
    return values


def main():
    created = []
    scratch_inventory = tempfile.mkdtemp(prefix="build-check-", dir=os.path.join(ROOT, "inventories"))
    created.append(scratch_inventory)
    try:
        values = generate_secrets(os.path.join(scratch_inventory, ".secrets"))
        values += generate_secrets(os.path.join(scratch_inventory, "secrets"))
        # A real store left by `make deploy` must stay out too.
        for dirpath, dirnames, dummy in os.walk(os.path.join(ROOT, "inventories")):
            for name in dirnames:
                if name in (".secrets", "secrets") and not dirpath.startswith(scratch_inventory):
                    values += read_store(os.path.join(dirpath, name))
        # Caches as tools leave them.
        for cache in (os.path.join(ROOT, "plugins", "__pycache__"), os.path.join(ROOT, ".pytest_cache"),
                      os.path.join(scratch_inventory, ".ansible")):
            if not os.path.exists(cache):
                os.makedirs(cache)
                created.append(cache)
            with open(os.path.join(cache, "stray.pyc"), "wb") as handle:
                handle.write(b"cache")

        dist = tempfile.mkdtemp()
        created.append(dist)
        subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", dist, ROOT],
                       check=True, stdout=subprocess.DEVNULL)
        tarball = os.path.join(dist, os.listdir(dist)[0])
        problems = inspect(tarball, values)
    finally:
        for path in reversed(created):
            shutil.rmtree(path, ignore_errors=True)
    if problems:
        print("the built collection is not clean:\n  " + "\n  ".join(problems[:40]), file=sys.stderr)
        return 1
    print("build: %s holds no secret store, generated secret, local state or cache; top level as expected"
          % os.path.basename(tarball))
    return 0


def inspect(tarball, values):
    problems = []
    with tarfile.open(tarball) as archive:
        members = archive.getmembers()
        top = set(member.name.split("/")[0] for member in members)
        if top != EXPECTED_TOP:
            problems.append("top-level entries differ from the expected set: extra %s, missing %s"
                            % (sorted(top - EXPECTED_TOP), sorted(EXPECTED_TOP - top)))
        for member in members:
            parts = member.name.split("/")
            if any(part.startswith(".") for part in parts) or FORBIDDEN_PARTS & set(parts[:-1] if member.isfile() else parts):
                problems.append("%s: a dot-directory, secret store or cache" % member.name)
            if member.isfile():
                data = archive.extractfile(member).read().decode("utf-8", "replace")
                if any(value in data for value in values):
                    problems.append("%s: holds a generated secret value" % member.name)
    return problems


if __name__ == "__main__":
    sys.exit(main())
