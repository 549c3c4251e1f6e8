"""The all-in-one site: every service of the data layer runs healthy, reachable as the contract says."""

import os

import pytest

SECRETS = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "secrets")
ROTATED = "molecule-site-rotated-password-0001"


@pytest.mark.parametrize("container", ["molecule-postgres", "molecule-redis", "molecule-minio"])
def test_service_is_healthy_with_the_stack_policies(host, container):
    state = host.check_output("docker inspect -f '{{.State.Health.Status}} {{.HostConfig.RestartPolicy.Name}} "
                              "{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config \"max-size\"}}' %s", container)
    assert state == "healthy unless-stopped json-file 10m"


@pytest.mark.parametrize("container", ["molecule-postgres", "molecule-redis", "molecule-minio"])
def test_service_has_resource_limits(host, container):
    memory, cpus = host.check_output("docker inspect -f '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}' %s", container).split()
    assert int(memory) > 0 and int(cpus) > 0


def test_the_data_layer_shares_one_network(host):
    names = host.check_output("docker network inspect -f '{{range .Containers}}{{.Name}} {{end}}' molecule_data").split()
    assert {"molecule-postgres", "molecule-redis", "molecule-minio"} <= set(names)


def test_generated_secrets_are_kept_root_only_on_the_controller(host):
    # The controller is this machine: the store holds each generated secret in a 0600 file.
    for name in ("redis_password", "minio_root_password", "postgres_password"):
        path = os.path.join(SECRETS, name)
        assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(SECRETS).st_mode & 0o777 == 0o700
    with open(os.path.join(SECRETS, ".gitignore")) as handle:
        assert "*" in handle.read().split()


def test_database_takes_the_rotated_password_only(host):
    ok = host.run("docker exec -e PGPASSWORD=%s molecule-postgres psql -X -tA -h 127.0.0.1 -U supabase_auth_admin -d postgres "
                  "-c 'select current_user'", ROTATED)
    assert ok.rc == 0 and ok.stdout.strip() == "supabase_auth_admin"
    with open(os.path.join(SECRETS, "postgres_password")) as handle:
        generated = handle.read().strip()
    refused = host.run("docker exec -e PGPASSWORD=%s molecule-postgres psql -X -tA -h 127.0.0.1 -U postgres -d postgres -c 'select 1'",
                       generated)
    assert refused.rc != 0
