"""The endpoint and secret lookups, run by ansible-playbook against a two-host inventory.

Nothing is deployed: the lookups compute on the controller what a consumer on one host needs to reach
a provider on another, from the inventory and the collection's role files alone, so `--limit` to the
consumer (the provider's play does not run) must give the same answer.
"""

import json
import os
import subprocess
import sys

import pytest

from playbook_runner import ansible_env

INVENTORY = """
all:
  vars:
    # Never connected to: the only task runs on the controller.
    ansible_connection: ssh
    selfhosted_secrets_dir: {secrets}
  children:
    postgres:
      hosts:
        db1:
          ansible_host: 10.0.0.5
          postgres_listen_address: "{{{{ ansible_host }}}}"
          postgres_port: 6543
          postgres_password: supplied-for-db1-only-0001
    redis:
      hosts:
        db1:
    object_store:
      hosts:
        store1:
          ansible_host: 10.0.0.7
          minio_listen_address: 127.0.0.1
    apps:
      hosts:
        app1:
          ansible_host: 10.0.0.6
"""

PLAYBOOK = """
- name: Ask the contract
  hosts: all
  gather_facts: false
  roles:
    - role: soulmatting.selfhosted.selfhosted
  tasks:
    - name: Write the answer as JSON
      ansible.builtin.copy:
        content: "{{{{ {expression} | to_json }}}}"
        dest: "{answer}"
        mode: "0600"
      delegate_to: localhost
      vars:
        ansible_connection: local
        ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
"""


def ask(tmp_path, expression, limit, *extra):
    """Runs the lookup EXPRESSION for the LIMIT host; returns (its answer or None, the process)."""
    answer = tmp_path / "answer.json"
    if answer.exists():
        answer.unlink()
    (tmp_path / "hosts.yml").write_text(INVENTORY.format(secrets=tmp_path / "secrets"))
    (tmp_path / "ask.yml").write_text(PLAYBOOK.format(expression=expression, answer=answer))
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
               "--limit", limit, str(tmp_path / "ask.yml")] + list(extra)
    proc = subprocess.run(command, env=ansible_env(), capture_output=True, text=True, check=False)
    return (json.loads(answer.read_text()) if answer.exists() else None), proc


def test_from_another_host_by_the_published_address(tmp_path):
    answer, proc = ask(tmp_path, "lookup('soulmatting.selfhosted.endpoint', 'postgres')", "app1")
    assert answer, proc.stdout + proc.stderr
    assert (answer["provider"], answer["same_host"], answer["host"], answer["port"]) == ("db1", False, "10.0.0.5", 6543)
    assert answer["network"] is None and answer["url"] == "postgresql://10.0.0.5:6543"
    assert answer["users"]["admin"] == "supabase_admin" and answer["users"]["auth"] == "supabase_auth_admin"
    assert answer["secrets"] == {"password": "postgres_password"}


def test_from_the_same_host_by_container_name(tmp_path):
    answer, proc = ask(tmp_path, "lookup('soulmatting.selfhosted.endpoint', 'postgres')", "db1")
    assert answer, proc.stdout + proc.stderr
    assert (answer["same_host"], answer["host"], answer["port"], answer["network"]) == (True, "soulmatting-postgres", 5432, "soulmatting_data")


def test_a_secret_supplied_for_its_owner_reaches_the_consumer(tmp_path):
    answer, proc = ask(tmp_path, "lookup('soulmatting.selfhosted.secret', 'postgres_password', host='db1')", "app1")
    assert answer == "supplied-for-db1-only-0001", proc.stdout + proc.stderr
    generated, proc = ask(tmp_path, "lookup('soulmatting.selfhosted.secret', 'redis_password', host='db1')", "app1")
    assert len(generated) == 40
    assert (tmp_path / "secrets" / "redis_password").read_text().strip() == generated


@pytest.mark.parametrize("part, words", [
    ("redis", ["redis on db1 does not publish its port", "app1 cannot reach it"]),
    ("object_store", ["object_store on store1 listens on 127.0.0.1 only", "private address of store1"]),
    ("supabase_gateway", ["is not a part of the stack", "known parts"]),
])
def test_what_a_consumer_cannot_use_is_named(tmp_path, part, words):
    answer, proc = ask(tmp_path, "lookup('soulmatting.selfhosted.endpoint', '%s')" % part, "app1")
    assert answer is None and proc.returncode != 0
    for word in words:
        assert word in proc.stdout, proc.stdout[-2000:]


def test_a_missing_group_is_named(tmp_path):
    (tmp_path / "override.yml").write_text("selfhosted_groups: {postgres: databases}\n")
    answer, proc = ask(tmp_path, "lookup('soulmatting.selfhosted.endpoint', 'postgres')", "app1", "-e", "@%s" % (tmp_path / "override.yml"))
    assert answer is None and proc.returncode != 0
    assert "the inventory group 'databases' (selfhosted_groups.postgres) is empty or missing" in proc.stdout
