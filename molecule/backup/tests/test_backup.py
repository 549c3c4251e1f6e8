"""The backup role after the side effects: backups in the repository, restores done, outcomes where monitoring reads them."""

import hashlib
import json
import os
import re
import subprocess
import time

import pytest

ROOT = "/var/tmp/soulmatting-molbak"
PROJECT = ROOT + "/backup"
SCRIPT = PROJECT + "/bin/soulmatting-backup"
# (testinfra quotes each argument given for a %s)
PSQL = "docker exec -u postgres molbak-postgres psql -X -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -U postgres -At -d %s -c %s"
KINDS_SCHEDULED = ["full", "diff", "incr", "dump", "config", "mirror", "drill", "status"]


@pytest.fixture(scope="module")
def results():
    with open(os.path.join(ROOT, "results.json")) as handle:
        return json.load(handle)


def metrics(text):
    """{(name, frozenset(labels)): value} from Prometheus text."""
    found = {}
    for line in text.splitlines():
        match = re.match(r'^([a-z_]+)\{([^}]*)\} (\S+)$', line)
        if match:
            labels = frozenset(tuple(item.split("=", 1)) for item in match.group(2).replace('"', "").split(","))
            found[(match.group(1), labels)] = float(match.group(3))
    return found


def value(found, name, **labels):
    wanted = frozenset((key, str(val)) for key, val in labels.items())
    return found.get((name, wanted))


@pytest.mark.parametrize("container", ["molbak-backup-pgbackrest", "molbak-backup-rclone", "molbak-backup-relay"])
def test_service_is_healthy_with_the_stack_policies(host, container):
    state = host.check_output("docker inspect -f '{{.State.Health.Status}} {{.HostConfig.RestartPolicy.Name}} "
                              "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}' %s", container).split()
    assert state[:2] == ["healthy", "unless-stopped"] and int(state[2]) > 0 and int(state[3]) > 0


@pytest.mark.parametrize("path,owner", [("pgbackrest/pgbackrest.conf", 999), ("pgbackrest/pgpass", 999), ("rclone/rclone.conf", 65534),
                                        ("rclone/cipher", 65534), ("secret-store/secret-store.json", 0),
                                        ("tls/molbak-backup-relay.key", 65534)])
def test_secret_files_are_private(host, path, owner):
    item = host.file(os.path.join(PROJECT, path))
    assert item.uid == owner and item.mode in (0o600, 0o400)


def test_pgbackrest_runs_as_the_owner_of_the_data_and_reaches_the_repository_through_the_verified_relay(host):
    assert host.check_output("docker inspect -f '{{.Config.User}}' molbak-backup-pgbackrest") == "999:999"
    conf = host.file(PROJECT + "/pgbackrest/pgbackrest.conf").content_string
    assert "repo1-s3-endpoint=molbak-backup-relay" in conf and "repo1-storage-ca-file=" in conf
    assert "repo1-storage-verify-tls=n" not in conf and "repo1-cipher-type=aes-256-cbc" in conf


def test_the_repository_holds_encrypted_full_and_incremental_backups_and_the_wal(host):
    info = host.check_output("%s info", SCRIPT)
    assert "status: ok" in info and "cipher: aes-256-cbc" in info
    assert re.search(r"full backup: \d{8}-\d{6}F", info) and re.search(r"incr backup: \d{8}-\d{6}F_\d{8}-\d{6}I", info)
    assert re.search(r"wal archive min/max \(15\): [0-9A-F]{24}/[0-9A-F]{24}", info)


def test_the_wal_spool_is_empty_and_recent_wal_reached_the_repository(host):
    host.check_output("docker exec -u postgres molbak-postgres psql -X -h /var/run/postgresql -U postgres -d postgres -Atc 'SELECT pg_switch_wal()'")
    deadline = time.time() + 60
    while time.time() < deadline:
        left = host.check_output("find %s/postgres/data/soulmatting_pgbackrest_spool -type f ! -name '.*' | wc -l", ROOT)
        if left == "0":
            break
        time.sleep(1)
    assert left == "0"
    host.check_output("%s status", SCRIPT)
    found = metrics(host.file(ROOT + "/metrics/soulmatting_backup_molbak.prom").content_string)
    assert time.time() - value(found, "soulmatting_backup_wal_last_push_timestamp_seconds", stack="molbak") < 120
    assert value(found, "soulmatting_backup_wal_spool_files", stack="molbak") == 0


def test_restores_were_exact(host, results):
    rows = host.check_output(PSQL, "postgres", "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM molbak_rows")
    assert rows == results["rows_then"] and rows.count(",") == 5
    key = host.file(ROOT + "/postgres/config/pgsodium_root.key")
    assert key.sha256sum == results["key_sha256"]


def test_the_replaced_data_directories_were_kept_aside(host):
    kept = host.check_output("ls -d %s/postgres/data.before-restore-* | wc -l", ROOT)
    assert int(kept) == 2  # the two restores over a live database; the third found none


def test_the_failed_backup_was_recorded_and_the_next_good_run_is_what_monitoring_sees(host, results):
    found = metrics(host.file(ROOT + "/metrics/soulmatting_backup_molbak.prom").content_string)
    assert value(found, "soulmatting_backup_failures_total", kind="full", stack="molbak") >= 1
    assert value(found, "soulmatting_backup_last_failure_timestamp_seconds", kind="full", stack="molbak") == results["full_failed_at"]
    assert value(found, "soulmatting_backup_last_success_timestamp_seconds", kind="full", stack="molbak") > results["full_failed_at"]
    assert value(found, "soulmatting_backup_last_run_success", kind="full", stack="molbak") == 1
    for kind in ("incr", "dump", "config", "mirror", "drill"):
        assert value(found, "soulmatting_backup_last_success_timestamp_seconds", kind=kind, stack="molbak") > 0, kind
    assert host.file(ROOT + "/metrics/soulmatting_backup_molbak.prom").mode == 0o644


def test_the_node_exporter_reads_the_outcomes(host, results):
    # The monitoring role's collector, for real: the test bed's node exporter reading the metrics directory.
    name = "molbak-node-exporter-check"
    host.run("docker rm -f %s", name)
    host.check_output("docker run -d --name %s -p 127.0.0.1:20910:9100 -v %s/metrics:/textfile:ro soulmatting-testbed/node-exporter:latest "
                      "--collector.textfile.directory=/textfile", name, ROOT)
    try:
        text = ""
        for dummy in range(30):
            fetched = host.run("curl -fsS http://127.0.0.1:20910/metrics")
            if fetched.rc == 0 and "soulmatting_backup_last_success_timestamp_seconds" in fetched.stdout:
                text = fetched.stdout
                break
            time.sleep(1)
        found = metrics(text)
        seen = value(found, "soulmatting_backup_last_success_timestamp_seconds", kind="full", stack="molbak")
        assert seen is not None and seen > results["full_failed_at"]
        assert "node_textfile_scrape_error 0" in text
    finally:
        host.run("docker rm -f %s", name)


def test_a_dump_restores_into_a_scratch_database(host):
    latest = host.check_output("docker exec molbak-backup-rclone sh /opt/soulmatting-backup/rclone-tool.sh latest dumps")
    listed = host.check_output("docker exec molbak-backup-rclone rclone cat repo:dumps/%s/COMPLETE", latest).split()
    assert "postgres" in listed and "_supabase" in listed
    host.run(PSQL, "postgres", "DROP DATABASE IF EXISTS molbak_dump_check")
    host.check_output(PSQL, "postgres", "CREATE DATABASE molbak_dump_check")
    try:
        host.check_output("docker exec molbak-backup-rclone rclone cat repo:dumps/%s/postgres.dump | docker exec -i -u postgres molbak-postgres "
                          "pg_restore -h /var/run/postgresql -U postgres -d molbak_dump_check --no-owner", latest)
        rows = host.check_output(PSQL, "molbak_dump_check", "SELECT count(*) FROM molbak_rows")
        assert int(rows) >= 3
    finally:
        host.run(PSQL, "postgres", "DROP DATABASE IF EXISTS molbak_dump_check")


def test_dumps_and_archives_are_encrypted_at_rest(host):
    # Straight from the object store, below rclone's crypt layer: no plain file names, no dump or tar magic.
    listing = host.check_output("docker exec molbak-backup-rclone rclone lsf -R repo-s3:molbak-backup/files")
    assert listing and "dumps" not in listing and "postgres.dump" not in listing and ".tar.gz" not in listing
    first = [line for line in listing.splitlines() if not line.endswith("/")][0]
    head = host.check_output("docker exec molbak-backup-rclone rclone cat --count 8 'repo-s3:molbak-backup/files/%s' | od -An -c", first)
    assert "R   C   L   O   N   E" in head


def test_the_configuration_archive_holds_the_key_the_store_and_the_stack(host):
    latest = host.check_output("docker exec molbak-backup-rclone sh /opt/soulmatting-backup/rclone-tool.sh latest config")
    members = host.check_output("docker exec molbak-backup-rclone rclone cat repo:config/%s | tar -tz", latest).splitlines()
    root = ROOT.lstrip("/")
    assert root + "/postgres/config/pgsodium_root.key" in members
    assert root + "/backup/secret-store/secret-store.json" in members
    assert root + "/postgres/compose.yaml" in members
    assert not [m for m in members if m.startswith(root + "/postgres/data/") or m.startswith(root + "/minio/data/")]


def test_the_mirror_is_encrypted_on_the_off_site_target(host):
    listing = host.check_output("docker exec molbak-backup-rclone rclone lsf -R mirror-s3:molbak-mirror")
    assert listing and "a.bin" not in listing and "molbak-media" not in listing
    plain = host.check_output("docker exec molbak-backup-rclone rclone lsf -R mirror:current/molbak-media")
    assert set(plain.split()) >= {"a.bin", "dir/", "dir/b.bin", "dir/sub/", "dir/sub/c.bin"}


@pytest.mark.parametrize("kind", KINDS_SCHEDULED)
def test_systemd_units_are_written_for_every_job(host, kind):
    service = host.file("%s/systemd/molbak-backup-%s.service" % (ROOT, kind))
    timer = host.file("%s/systemd/molbak-backup-%s.timer" % (ROOT, kind))
    assert service.mode == 0o644 and "ExecStart=%s %s" % (SCRIPT, kind) in service.content_string
    assert "Type=oneshot" in service.content_string
    assert "OnCalendar=" in timer.content_string and "Unit=molbak-backup-%s.service" % kind in timer.content_string


def test_systemd_accepts_the_units(host):
    units = sorted(os.path.join(ROOT, "systemd", name) for name in os.listdir(os.path.join(ROOT, "systemd")))
    checked = subprocess.run(["systemd-analyze", "verify", "--man=no"] + units, capture_output=True, text=True, check=False)
    problems = [line for line in (checked.stdout + checked.stderr).splitlines()
                if "molbak-backup" in line or "Failed" in line or "Unknown" in line]
    assert checked.returncode == 0 and not problems, checked.stdout + checked.stderr
    for unit in units:
        if unit.endswith(".timer"):
            with open(unit) as handle:
                calendar = [line.split("=", 1)[1].strip() for line in handle if line.startswith("OnCalendar=")][0]
            assert subprocess.run(["systemd-analyze", "calendar", calendar], capture_output=True, check=False).returncode == 0, calendar


def test_nothing_is_left_of_the_drill(host):
    assert host.run("docker inspect molbak-backup-drill").rc != 0
    assert not host.file(PROJECT + "/drill").exists


def test_the_secret_store_came_back_from_the_configuration_archive(host):
    # Compared by hash: a failing assertion must not print a secret.
    live = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "secrets")
    restored = live + ".restored"
    assert os.stat(restored).st_mode & 0o777 == 0o700

    def hashes(directory):
        found = {}
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            if not name.startswith(".") and os.path.isfile(path):
                with open(path, "rb") as handle:
                    found[name] = hashlib.sha256(handle.read().strip()).hexdigest()
        return found

    assert set(hashes(live)) >= {"postgres_password", "minio_root_password", "backup_cipher_passphrase"}
    assert hashes(restored) == hashes(live)
    assert all(os.stat(os.path.join(restored, name)).st_mode & 0o777 == 0o600 for name in os.listdir(restored))
