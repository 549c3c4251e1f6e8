"""The pure logic of the backup role's scripts: retention by count and age, the WAL a restore needs, the metrics.

The scripts run as they do on the hosts and in the containers (sh and bash with GNU date); the
commands tested here read only their arguments and stdin, or a state directory made by the test.
"""

import os
import re
import shutil
import subprocess

import pytest

FILES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "backup", "files")
PGBACKREST_TOOL = os.path.join(FILES, "pgbackrest-tool.sh")
RCLONE_TOOL = os.path.join(FILES, "rclone-tool.sh")
BACKUP = os.path.join(FILES, "soulmatting-backup.sh")
DAY = 86400
# 2026-11-24 12:00:00 UTC
NOW = 1795521600


def run(argv, stdin="", env=None):
    done = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def keep_count(count, days, labels):
    return int(run(["sh", PGBACKREST_TOOL, "keep-count", str(count), str(days), str(NOW)], "\n".join(labels) + "\n"))


class TestFullBackupRetention:
    # Newest first, as pgbackrest-tool.sh lists them: weekly full backups.
    WEEKLY = ["20261122-013000F", "20261115-013000F", "20261108-013000F", "20261101-013000F", "20261025-013000F"]

    def test_the_count_is_a_floor(self):
        assert keep_count(4, 0, self.WEEKLY) == 4

    def test_the_age_keeps_every_younger_backup_and_the_newest_older_one(self):
        # Younger than 14 days: 22nd and 15th; the 8th is kept too, so the whole 14 days stay recoverable.
        assert keep_count(1, 14, self.WEEKLY) == 3

    def test_the_rule_that_keeps_more_wins(self):
        assert keep_count(2, 30, self.WEEKLY) == 5
        assert keep_count(5, 1, self.WEEKLY) == 5

    def test_nothing_older_to_anchor(self):
        assert keep_count(1, 60, self.WEEKLY) == 5

    def test_differential_and_incremental_labels_do_not_count(self):
        labels = ["20261122-013000F_20261123-013000D", "20261122-013000F", "20261122-013000F_20261123-073000I", "backup.info"]
        assert keep_count(1, 0, labels) == 1

    def test_an_empty_repository(self):
        assert keep_count(2, 14, []) == 2


def test_the_wal_a_restore_needs():
    # A `pgbackrest repo-ls --recurse` of an archive: two timelines, history files, a backup history file.
    listing = "\n".join([
        "0000000100000000",
        "0000000100000000/000000010000000000000003-8d13683ff56ba7deaf451e9e1c00108ecb277ac0.lz4",
        "0000000100000000/000000010000000000000004-e0ca44be82620d26805b5a4c6181bbe389b0b6ba.lz4",
        "0000000100000000/000000010000000000000004.00000028.backup",
        "0000000100000000/000000010000000000000005-4d0aec688016f5cca38c6a1a82ef35afc316a1d4.lz4",
        "0000000200000000/000000020000000000000005-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.lz4",
        "0000000200000000/000000020000000000000006-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.lz4",
        "00000002.history",
    ]) + "\n"
    wanted = run(["sh", PGBACKREST_TOOL, "wal-wanted", "000000010000000000000004"], listing).split()
    assert wanted == sorted(["000000010000000000000004", "000000010000000000000005", "000000020000000000000005",
                             "000000020000000000000006", "00000002.history"])


class TestSetRetention:
    SETS = ["20261124T023000Z", "20261123T023000Z", "20261122T023000Z", "20261115T023000Z", "20261101T023000Z.tar.gz"]

    def doomed(self, count, days):
        return run(["sh", RCLONE_TOOL, "doomed", str(count), str(days), str(NOW)], "\n".join(self.SETS) + "\n").split()

    def test_a_set_goes_only_when_both_rules_allow(self):
        assert self.doomed(2, 7) == ["20261115T023000Z", "20261101T023000Z.tar.gz"]

    def test_the_count_keeps_old_sets(self):
        assert self.doomed(5, 0) == []

    def test_the_age_keeps_beyond_the_count(self):
        assert self.doomed(1, 30) == []
        assert self.doomed(1, 2) == ["20261122T023000Z", "20261115T023000Z", "20261101T023000Z.tar.gz"]


@pytest.fixture
def state(tmp_path):
    """A backup project's state (jobs and archiver) and the settings file that points at it."""
    project = tmp_path / "backup"
    jobs = project / "state" / "jobs"
    archiver = project / "state" / "archiver"
    jobs.mkdir(parents=True)
    archiver.mkdir(parents=True)
    for name, text in {"full.last_success": "1795500000", "full.last_failure": "1795510000", "full.failures": "2", "full.ok": "0",
                       "full.duration": "31", "dump.last_success": "1795511000", "dump.ok": "1", "dump.duration": "4"}.items():
        (jobs / name).write_text(text + "\n")
    for name, text in {"last_push": "1795512000", "backlog": "3", "failures": "7"}.items():
        (archiver / name).write_text(text + "\n")
    conf = tmp_path / "backup.conf"
    conf.write_text("INSTANCE=mytest\nPROJECT_DIR=%s\nMETRICS_DIR=%s\nPOSTGRES=1\n" % (project, tmp_path / "metrics"))
    return dict(conf=str(conf), metrics=tmp_path / "metrics")


def backup(state, *argv):
    env = dict(os.environ, SOULMATTING_BACKUP_CONF=state["conf"])
    return run(["bash", BACKUP] + list(argv), env=env)


def test_the_metrics_monitoring_reads(state):
    text = backup(state, "metrics-text")
    samples = dict(re.findall(r"^(\S+\{[^}]*\}) (\S+)$", text, re.M))
    assert samples['soulmatting_backup_last_success_timestamp_seconds{kind="full",stack="mytest"}'] == "1795500000"
    assert samples['soulmatting_backup_last_failure_timestamp_seconds{kind="full",stack="mytest"}'] == "1795510000"
    assert samples['soulmatting_backup_failures_total{kind="full",stack="mytest"}'] == "2"
    assert samples['soulmatting_backup_last_run_success{kind="full",stack="mytest"}'] == "0"
    assert samples['soulmatting_backup_last_success_timestamp_seconds{kind="dump",stack="mytest"}'] == "1795511000"
    assert samples['soulmatting_backup_wal_last_push_timestamp_seconds{stack="mytest"}'] == "1795512000"
    assert samples['soulmatting_backup_wal_spool_files{stack="mytest"}'] == "3"
    assert samples['soulmatting_backup_wal_push_failures_total{stack="mytest"}'] == "7"
    assert 'kind="config"' not in text  # a job that never ran has no sample


def test_the_metrics_are_valid_prometheus_text(state):
    text = backup(state, "metrics-text")
    families = re.findall(r"^# TYPE (\S+) (gauge|counter)$", text, re.M)
    assert len(families) == len(set(families)) == 8
    for line in text.splitlines():
        if not line.startswith("#"):
            name = line.split("{", 1)[0]
            assert name in dict(families), line
    promtool = shutil.which("promtool")
    if promtool:
        checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_metrics_file_is_replaced_whole_and_world_readable(state):
    backup(state, "render-metrics")
    prom = state["metrics"] / "soulmatting_backup_mytest.prom"
    assert prom.stat().st_mode & 0o777 == 0o644
    assert "soulmatting_backup_failures_total" in prom.read_text()
    assert [p.name for p in state["metrics"].iterdir()] == [prom.name]
