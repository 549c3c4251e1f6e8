"""Run ansible-playbook from integration tests with the collection resolvable by FQCN."""

import json
import os
import subprocess
import sys

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS_ROOT = os.path.join(REPO_ROOT, ".cache", "collections")


def ansible_env(**extra):
    """Environment for ansible commands: collection path, no cows, no retry files."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT,
        ANSIBLE_NOCOWS="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_playbook(playbook, extra_vars=None, check=False, diff=False, verbosity=0, env=None):
    """Run a playbook against localhost and return the CompletedProcess (stdout and stderr as text)."""
    bin_dir = os.path.dirname(sys.executable)
    cmd = [os.path.join(bin_dir, "ansible-playbook"), "-i", "localhost,", "-c", "local", playbook]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    return subprocess.run(cmd, env=ansible_env(**(env or {})), capture_output=True, text=True, check=False)
