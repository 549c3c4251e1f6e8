"""Verify the redis role against the running container, with a real redis-cli on the data network."""

import pytest

FIRST_PASSWORD = "molecule-redis-password-0001"
PASSWORD = "molecule-redis-password-0002"
CONTAINER = "molecule-redis"
IMAGE = "soulmatting-testbed/redis:latest"
PROJECT_DIR = "/var/tmp/soulmatting-molecule/redis"
STATE_FILE = "/var/tmp/soulmatting-molecule/redis-before-recreate.id"


def redis_cli(host, *args, password=None):
    """Run redis-cli in a throwaway container on the stack's network, as a service of the stack would connect."""
    auth = ["-e", "REDISCLI_AUTH=" + password] if password is not None else []
    command = ["docker", "run", "--rm", "--network", "molecule_data", "--entrypoint", "redis-cli"] + auth
    command += [IMAGE, "-h", CONTAINER] + list(args)
    return host.run(" ".join(["%s"] * len(command)), *command)


def test_container_is_healthy(host):
    state = host.check_output("docker inspect -f '{{.State.Health.Status}} {{.HostConfig.RestartPolicy.Name}}' %s", CONTAINER)
    assert state == "healthy unless-stopped"


def test_unauthenticated_commands_are_refused(host):
    for command in (["PING"], ["GET", "molecule:kept"], ["CONFIG", "GET", "requirepass"]):
        result = redis_cli(host, *command)
        assert "NOAUTH" in result.stdout + result.stderr, (command, result.stdout, result.stderr)
        assert "written-before-recreate" not in result.stdout


@pytest.mark.parametrize("password", [FIRST_PASSWORD, "wrong-password-0000000000", PASSWORD.upper()])
def test_old_or_wrong_password_is_refused(host, password):
    result = redis_cli(host, "PING", password=password)
    assert "WRONGPASS" in result.stdout + result.stderr or "invalid password" in result.stdout + result.stderr
    assert "PONG" not in result.stdout


def test_rotated_password_is_accepted(host):
    result = redis_cli(host, "PING", password=PASSWORD)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "PONG"


def test_data_survived_a_recreation(host):
    before = host.file(STATE_FILE).content_string.strip()
    now = host.check_output("docker inspect -f '{{.Id}}' %s", CONTAINER)
    assert before and now != before, "the side effect did not recreate the container"
    result = redis_cli(host, "GET", "molecule:kept", password=PASSWORD)
    assert result.stdout.strip() == "written-before-recreate"


def test_aof_persistence_and_memory_policy(host):
    expected = {
        "appendonly": "yes",
        "appendfsync": "everysec",
        # 60% of the 256 MiB container limit.
        "maxmemory": str(153 * 1024 * 1024),
        "maxmemory-policy": "volatile-lru",
        "dir": "/data",
    }
    for name, value in expected.items():
        result = redis_cli(host, "CONFIG", "GET", name, password=PASSWORD)
        assert result.stdout.split() == [name, value]
    assert host.file(PROJECT_DIR + "/data/appendonlydir").is_directory
    limit = host.check_output("docker inspect -f '{{.HostConfig.Memory}}' %s", CONTAINER)
    assert int(limit) == 256 * 1024 * 1024


def test_no_port_published(host):
    assert host.check_output("docker port %s", CONTAINER) == ""
    bindings = host.check_output("docker inspect -f '{{json .HostConfig.PortBindings}}' %s", CONTAINER)
    assert bindings in ("{}", "null")


def test_password_only_in_the_container_users_config(host):
    config = host.file(PROJECT_DIR + "/config/redis.conf")
    assert config.mode == 0o600 and config.uid == 999 and config.gid == 999
    assert "requirepass " + PASSWORD in config.content_string
    config_dir = host.file(PROJECT_DIR + "/config")
    assert config_dir.uid == 0 and config_dir.mode == 0o750
    assert PASSWORD not in host.file(PROJECT_DIR + "/compose.yaml").content_string
    environment = host.check_output("docker inspect -f '{{json .Config.Env}} {{json .Config.Healthcheck}} {{json .Args}}' %s", CONTAINER)
    assert PASSWORD not in environment and FIRST_PASSWORD not in environment


def test_runs_as_the_configured_user(host):
    assert host.check_output("docker inspect -f '{{.Config.User}}' %s", CONTAINER) == "999:999"
    data = host.file(PROJECT_DIR + "/data")
    assert data.uid == 999 and data.mode == 0o700
