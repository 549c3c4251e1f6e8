"""Bad input to the backup role fails before anything on the host changes, naming the variable.

Each case applies the role as a user's playbook would, with an inventory where the database, the
object store and the backups are on this machine (or, for one case, the database elsewhere); the role
must stop in its argument validation or its preflight checks, so its project directory must not
exist afterwards. The restore playbook's refusal without the confirmation is checked the same way.
"""

import os
import subprocess
import sys

import pytest
import yaml

from playbook_runner import REPO_ROOT, ansible_env

PLAYBOOK = """
- name: Apply the backup role
  hosts: backup
  gather_facts: false
  roles:
    - role: soulmatting.selfhosted.backup
"""


def inventory(database_elsewhere=False, **host_vars):
    local = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable}, **host_vars)
    hosts = {"localhost": local}
    postgres = {"localhost": None}
    if database_elsewhere:
        hosts["db1"] = {"ansible_host": "10.0.0.5", "postgres_listen_address": "10.0.0.5"}
        postgres = {"db1": None}
    return {"all": {"hosts": hosts, "children": {"postgres": {"hosts": postgres}, "object_store": {"hosts": {"localhost": None}},
                                                 "backup": {"hosts": {"localhost": None}}}}}


def apply(tmp_path, playbook=PLAYBOOK, database_elsewhere=False, host_vars=None, **extra):
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump(inventory(database_elsewhere, **(host_vars or {}))))
    (tmp_path / "play.yml").write_text(playbook)
    variables = dict(selfhosted_root_dir=str(tmp_path / "root"), selfhosted_secrets_dir=str(tmp_path / "secrets"),
                     backup_systemd_manage=False, backup_systemd_unit_dir=str(tmp_path / "units"))
    variables.update(extra)
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(tmp_path / "hosts.yml"),
                           str(tmp_path / "play.yml"), "-e", yaml.safe_dump(variables, default_flow_style=True)],
                          env=ansible_env(), capture_output=True, text=True, check=False)


CASES = {
    "unknown mirror": (dict(backup_mirror="ftp"), {}, False, ["backup_mirror", "ftp"]),
    "unknown scheduler": (dict(backup_scheduler="anacron"), {}, False, ["backup_scheduler", "anacron"]),
    "short passphrase": (dict(backup_cipher_passphrase="short-passphrase"), {}, False, ["backup_cipher_passphrase", "at least 32"]),
    "s3 repository without endpoint": (dict(backup_repository="s3", backup_repository_access_key="AKID",
                                            backup_repository_secret_key="a-secret-key-0001"), {}, False,
                                       ["backup_repository_endpoint", "http(s)://host[:port]"]),
    "invalid bucket": (dict(backup_repository_bucket="Not_A_Bucket"), {}, False, ["backup_repository_bucket", "Not_A_Bucket"]),
    "s3 mirror without keys": (dict(backup_mirror="s3", backup_mirror_endpoint="https://mirror.example.org"), {}, False,
                               ["backup_mirror_access_key", "backup_mirror_secret_key"]),
    "unknown job": (dict(backup_schedules={"hourly": {"on_calendar": "hourly", "cron": "0 * * * *"}}), {}, False,
                    ["backup_schedules", "hourly"]),
    "cron schedule not five fields": (dict(backup_schedules={"full": {"on_calendar": "daily", "cron": "@daily"}}), {}, False,
                                      ["backup_schedules", "five fields"]),
    "retention of zero": (dict(backup_pgbackrest_retention_full=0), {}, False, ["backup_pgbackrest_retention_full", "at least 1"]),
    "database on another host": ({}, {}, True, ["must run on its", "host, db1", "backup group"]),
    "no WAL hand-over": ({}, {"postgres_wal_archive": False}, False, ["postgres_wal_archive", "run the postgres role again"]),
    "WAL handed over to nobody": (dict(backup_postgres=False), {}, False, ["postgres_wal_archive", "fill the"]),
    "systemd missing": (dict(backup_systemd_manage=True), {}, False, ["systemd does not run", "backup_scheduler to cron"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_any_change(tmp_path, case):
    extra, host_vars, elsewhere, expected = CASES[case]
    # The test machine has no systemd as PID 1, which is what this case needs; where systemd runs, the
    # systemd scenario proves the other side (timers enabled and active on a systemd host).
    if case == "systemd missing" and os.path.isdir("/run/systemd/system"):
        pytest.skip("this machine runs systemd")
    result = apply(tmp_path, database_elsewhere=elsewhere, host_vars=host_vars, **extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "has been hidden" not in output
    for text in expected:
        assert text in output, "%r not in the failure output:\n%s" % (text, output[-3000:])
    assert not (tmp_path / "root" / "backup").exists(), "the role changed the host before failing"
    assert "changed=0" in result.stdout


RESTORE = """
- name: Restore without the confirmation
  hosts: backup
  gather_facts: false
  tasks:
    - name: Check the request
      ansible.builtin.include_role:
        name: soulmatting.selfhosted.backup
        tasks_from: restore_check
"""


@pytest.mark.parametrize("extra,expected", [
    ({}, ["Nothing was changed", "-e backup_restore_confirm=yes"]),
    ({"backup_restore_confirm": "yes", "backup_restore_target": "yesterday"}, ["backup_restore_target", "yesterday"]),
    ({"backup_restore_confirm": "yes", "backup_restore_parts": ["everything"]}, ["backup_restore_parts", "everything"]),
])
def test_a_restore_request_is_checked_before_anything_is_stopped(tmp_path, extra, expected):
    result = apply(tmp_path, playbook=RESTORE, **extra)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for text in expected:
        assert text in output, "%r not in the failure output:\n%s" % (text, output[-3000:])


def test_the_restore_playbook_stops_nothing_without_the_confirmation(tmp_path):
    # The whole playbook: its first play refuses, so no later play runs (any_errors_fatal).
    result = apply(tmp_path, playbook=open(os.path.join(REPO_ROOT, "playbooks", "restore.yml")).read().replace(
        "hosts: soulmatting", "hosts: backup"))
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "Nothing was changed" in output
    assert "Stop what uses the database" not in output and "PLAY [Restore]" not in output
