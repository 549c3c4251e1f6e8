"""The operations playbooks do nothing without their explicit confirmation, and say how to give it."""

import os
import subprocess
import sys

import pytest

from playbook_runner import ansible_env

PLAYBOOKS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "playbooks")
INVENTORY = """
all:
  hosts:
    localhost: {{ansible_connection: local, ansible_python_interpreter: {python}}}
  children:
    postgres: {{hosts: {{localhost: }}}}
    supabase: {{hosts: {{localhost: }}}}
  vars:
    selfhosted_secrets_dir: {secrets}
"""


@pytest.mark.parametrize("playbook, variable", [
    ("rotate_jwt.yml", "rotate_jwt_confirm"),
    ("change_db_password.yml", "change_db_password_confirm"),
    ("upgrade.yml", "upgrade_confirm"),
])
def test_refused_without_confirmation(tmp_path, playbook, variable):
    (tmp_path / "hosts.yml").write_text(INVENTORY.format(python=sys.executable, secrets=tmp_path / "secrets"))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
                           os.path.join(PLAYBOOKS, playbook)], env=ansible_env(), capture_output=True, text=True, check=False)
    assert proc.returncode != 0
    assert "-e %s=yes" % variable in proc.stdout
    # Nothing was rotated: no secret was written.
    secrets = tmp_path / "secrets"
    written = set(os.listdir(secrets)) if secrets.exists() else set()
    assert not written & {"supabase_jwt_secret", "postgres_password"}
