"""The backup role's project, configuration and schedules, rendered and checked by real validators.

The role is applied with selfhosted_start=false (everything written on this machine under a scratch
directory, nothing started), for the production images and several repository and mirror choices:
Compose v2 validates each project (`docker compose config`), `systemd-analyze verify` the units, and
the postgres role is rendered beside it to show that WAL archiving is on only when backups are. The
backups and restores themselves run for real in molecule/backup.
"""

import os
import subprocess
import sys

import pytest
import yaml

from playbook_runner import ansible_env, resolved

PLAYBOOK = """
- name: Render the database and its backups
  hosts: all
  gather_facts: false
  roles:
    - role: soulmatting.selfhosted.postgres
      when: inventory_hostname in groups['postgres']
    - role: soulmatting.selfhosted.backup
      when: inventory_hostname in groups.get('backup', [])
"""
SECRET_KEY = "render-test-repository-secret-0001"


def inventory(with_backup=True):
    groups = {"postgres": {"hosts": {"localhost": None}}, "object_store": {"hosts": {"localhost": None}}}
    if with_backup:
        groups["backup"] = {"hosts": {"localhost": None}}
    return {"all": {"hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
                    "children": groups}}


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    """Renders with EXTRA variables (cached per combination); returns the scratch root."""
    cache = {}

    def run(with_backup=True, **extra):
        key = (with_backup,) + tuple(sorted((k, str(v)) for k, v in extra.items()))
        if key in cache:
            return cache[key]
        base = tmp_path_factory.mktemp("backup")
        (base / "hosts.yml").write_text(yaml.safe_dump(inventory(with_backup)))
        (base / "render.yml").write_text(PLAYBOOK)
        (base / "systemd").mkdir()
        variables = dict(selfhosted_start=False, selfhosted_root_dir=str(base / "root"), selfhosted_secrets_dir=str(base / "secrets"),
                         selfhosted_metrics_dir=str(base / "metrics"), postgres_image="postgres:15.8", backup_systemd_manage=False,
                         backup_systemd_unit_dir=str(base / "systemd"), backup_cron_file=str(base / "cron"), postgres_memory_mb=512)
        variables.update(extra)
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(base / "hosts.yml"),
                               str(base / "render.yml"), "-e", yaml.safe_dump(variables, default_flow_style=True)],
                              env=ansible_env(), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert SECRET_KEY not in proc.stdout + proc.stderr
        cache[key] = base
        return base

    return run


def read(path):
    with open(path) as handle:
        return handle.read()


def test_the_default_project_runs_pgbackrest_beside_the_database_and_a_tls_relay_to_the_object_store(render):
    base = render()
    config = resolved(base / "root" / "backup")
    services = config["services"]
    assert set(services) == {"pgbackrest", "rclone", "relay"}
    assert services["pgbackrest"]["image"] == "woblerr/pgbackrest:2.56.0"
    assert services["rclone"]["image"] == "rclone/rclone:1.71.1" and services["relay"]["image"] == "alpine/socat:1.8.0.3"
    for name, service in services.items():
        assert service["healthcheck"]["test"] and service["deploy"]["resources"]["limits"]["memory"], name
        assert service["restart"] == "unless-stopped", name
    pgbackrest = services["pgbackrest"]
    mounts = dict((volume["target"], volume["source"]) for volume in pgbackrest["volumes"])
    assert mounts["/var/lib/postgresql/data"] == str(base / "root" / "postgres" / "data")
    assert pgbackrest["user"] == "999:999" and pgbackrest["environment"]["PGHOST"] == "soulmatting-postgres"
    assert not [value for value in pgbackrest["environment"].values() if "render-test" in str(value)]
    assert services["relay"]["command"][-1] == "TCP:soulmatting-minio:9000"
    assert "relay" in pgbackrest["depends_on"]
    rclone_mounts = dict((volume["target"], volume["source"]) for volume in services["rclone"]["volumes"])
    assert rclone_mounts["/mirror"] == str(base / "root" / "backup" / "mirror")


def test_pgbackrest_verifies_the_relay_and_encrypts_the_repository(render):
    project = render() / "root" / "backup"
    conf = read(project / "pgbackrest" / "pgbackrest.conf")
    assert "repo1-s3-endpoint=soulmatting-backup-relay\n" in conf and "repo1-storage-port=8443\n" in conf
    assert "repo1-storage-ca-file=/etc/soulmatting-relay/soulmatting-backup-relay.crt\n" in conf
    assert "repo1-cipher-type=aes-256-cbc\n" in conf and "expire-auto=n\n" in conf
    assert "archive_command" not in conf and "[soulmatting]\npg1-path=/var/lib/postgresql/data\n" in conf
    for path in ("pgbackrest/pgbackrest.conf", "pgbackrest/pgpass", "rclone/rclone.conf", "rclone/cipher",
                 "secret-store/secret-store.json"):
        assert os.stat(project / path).st_mode & 0o777 == 0o600, path


def test_an_off_site_https_repository_needs_no_relay(render):
    base = render(backup_repository="s3", backup_repository_endpoint="https://s3.example.org", backup_repository_access_key="AKIDRENDER",
                  backup_repository_secret_key=SECRET_KEY, backup_repository_bucket="offsite-backups", backup_repository_prefix="site/a",
                  backup_mirror="none")
    config = resolved(base / "root" / "backup")
    assert set(config["services"]) == {"pgbackrest", "rclone"}
    conf = read(base / "root" / "backup" / "pgbackrest" / "pgbackrest.conf")
    assert "repo1-s3-endpoint=s3.example.org\nrepo1-storage-port=443\nrepo1-storage-verify-tls=y\n" in conf
    assert "repo1-s3-bucket=offsite-backups\n" in conf and "repo1-path=/site/a/pgbackrest\n" in conf
    rclone = read(base / "root" / "backup" / "rclone" / "rclone.conf")
    assert "endpoint = https://s3.example.org" in rclone and "remote = repo-s3:offsite-backups/site/a/files" in rclone
    assert "[mirror]" not in rclone


def test_a_host_without_the_database_backs_up_only_what_it_can(render):
    base = render(backup_postgres=False, backup_dumps=False, backup_config=False, backup_mirror="s3", postgres_wal_archive=False,
                  backup_mirror_endpoint="http://mirror.example.org:9000", backup_mirror_access_key="mirror-key",
                  backup_mirror_secret_key=SECRET_KEY)
    config = resolved(base / "root" / "backup")
    assert set(config["services"]) == {"rclone"}
    assert sorted(os.listdir(base / "systemd")) == ["soulmatting-backup-mirror.service", "soulmatting-backup-mirror.timer"]


def database_command(base):
    return resolved(base / "root" / "postgres")["services"]["db"]["command"]


def test_the_database_archives_its_wal_only_with_backups(render):
    with_backups = database_command(render())
    without = database_command(render(with_backup=False))
    archive = [item for item in with_backups if item.startswith("archive_")]
    assert archive[0] == "archive_command=mkdir -p soulmatting_pgbackrest_spool && cp %p soulmatting_pgbackrest_spool/.%f.tmp && " \
                         "sync soulmatting_pgbackrest_spool/.%f.tmp && mv -f soulmatting_pgbackrest_spool/.%f.tmp " \
                         "soulmatting_pgbackrest_spool/%f && sync soulmatting_pgbackrest_spool"
    assert archive[1:] == ["archive_mode=on", "archive_timeout=30"]
    # Without a backup host the database runs exactly as before the backup role existed.
    assert not [item for item in without if "archive" in item]
    assert [item for item in with_backups if item not in archive and item != "-c"] == [item for item in without if item != "-c"]


def test_systemd_accepts_the_units(render):
    base = render()
    units = sorted(str(base / "systemd" / name) for name in os.listdir(base / "systemd"))
    assert len(units) == 16
    checked = subprocess.run(["systemd-analyze", "verify", "--man=no"] + units, capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "soulmatting-backup" not in checked.stdout + checked.stderr, checked.stdout + checked.stderr


def test_the_cron_alternative_is_written_disabled_until_the_stack_starts(render):
    base = render(backup_scheduler="cron")
    lines = [line for line in read(base / "cron").splitlines() if "soulmatting-backup" in line]
    assert len(lines) == 8
    assert all(line.startswith("#") for line in lines)
    assert "#30 1 * * 0 root %s full --quiet" % (base / "root" / "backup" / "bin" / "soulmatting-backup") in lines
    assert os.listdir(base / "systemd") == []


def test_the_metrics_directory_is_readable_by_the_exporter(render):
    assert os.stat(render() / "metrics").st_mode & 0o777 == 0o755
