"""Run ansible-playbook from integration tests with the collection resolvable by FQCN."""

import json
import os
import shutil
import subprocess
import sys

import yaml

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


def compose(project_dir, *args):
    """Runs `docker compose` on a rendered project directory."""
    return subprocess.run([shutil.which("docker"), "compose", "--project-directory", str(project_dir)] + list(args),
                          capture_output=True, text=True, check=False)


def resolved(project_dir):
    """The project as Compose v2 resolves it, after `docker compose config --quiet` accepted it."""
    checked = compose(project_dir, "config", "--quiet")
    assert checked.returncode == 0, checked.stderr
    return yaml.safe_load(compose(project_dir, "config", "--format", "json").stdout)
