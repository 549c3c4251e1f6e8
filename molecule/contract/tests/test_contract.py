"""The contract across two inventory hosts: each consumer found the data layer and really uses it.

`provider` runs the data layer and a consumer; `consumer` (another inventory host on this machine)
runs only a consumer. The consumers' client containers are healthy only while their real connections
to PostgreSQL, Redis and the S3 store succeed; the checks below also connect again and look at what
each consumer was given.
"""

import pytest

CLIENTS = ("postgres-client", "redis-client", "s3-client")
INSTANCE = {"provider": "mprov", "consumer": "mcons"}
# What each consumer must have been told: by container name on the provider host, by the published
# loopback ports from the other host (both hosts are this machine).
EXPECTED = {
    "provider": {"REDIS_HOST": "mprov-redis", "REDIS_PORT": "6379", "db": "@mprov-postgres:5432/postgres",
                 "S3_URL": "http://mprov-minio:8333"},
    "consumer": {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "16379", "db": "@127.0.0.1:16432/postgres",
                 "S3_URL": "http://127.0.0.1:19100"},
}
SUPPLIED_REDIS_PASSWORD = "molecule-contract-redis-0001"


def name_of(host):
    return host.backend.get_hostname()


def container(host, client):
    return "%s-consumer-%s-1" % (INSTANCE[name_of(host)], client)


def clients_env(host):
    text = host.file("/var/tmp/soulmatting-molecule/%s/consumer/clients.env" % name_of(host)).content_string
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


@pytest.mark.parametrize("client", CLIENTS)
def test_client_is_healthy(host, client):
    assert host.check_output("docker inspect -f '{{.State.Health.Status}}' %s", container(host, client)) == "healthy"


def test_consumer_was_pointed_at_the_right_face_of_each_endpoint(host):
    env = clients_env(host)
    expected = EXPECTED[name_of(host)]
    assert env["REDIS_HOST"] == expected["REDIS_HOST"] and env["REDIS_PORT"] == expected["REDIS_PORT"]
    assert env["DATABASE_URL"].endswith(expected["db"])
    assert env["S3_URL"] == expected["S3_URL"]


def test_secret_supplied_for_the_provider_only_reached_both_consumers(host):
    assert clients_env(host)["REDISCLI_AUTH"] == SUPPLIED_REDIS_PASSWORD


def test_database_answers_with_the_contract_password(host):
    out = host.check_output("docker exec %s sh -c 'psql \"$DATABASE_URL\" -XtAc \"select current_user\"'",
                            container(host, "postgres-client"))
    assert out == "postgres"


def test_a_wrong_password_is_refused(host):
    url = clients_env(host)["DATABASE_URL"]
    user, rest = url.split("://", 1)[1].split(":", 1)
    wrong = "postgresql://%s:wrong-password-000000@%s" % (user, rest.split("@", 1)[1])
    result = host.run("docker exec %s psql %s -XtAc 'select 1'", container(host, "postgres-client"), wrong)
    assert result.rc != 0 and "password authentication failed" in result.stderr


def test_redis_answers(host):
    out = host.check_output("docker exec %s sh -c 'redis-cli -h \"$REDIS_HOST\" -p \"$REDIS_PORT\" set contract:%s ok'",
                            container(host, "redis-client"), name_of(host))
    assert out == "OK"


def test_objects_written_by_the_consumer_are_in_its_bucket(host):
    listing = host.check_output(
        "docker exec %s sh -c 'curl -fsS --aws-sigv4 \"aws:amz:$S3_REGION:s3\" --user \"$S3_ACCESS_KEY:$S3_SECRET_KEY\""
        " -H \"x-amz-content-sha256: UNSIGNED-PAYLOAD\""
        " \"$S3_URL/$S3_BUCKET?list-type=2\"'", container(host, "s3-client"))
    assert "<Key>probe.txt</Key>" in listing
