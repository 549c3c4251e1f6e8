"""Verify the postgres role against the running container, with a real psql client."""

import pytest

PORT = "15432"
FIRST_PASSWORD = "molecule-first-password-0001"
ROTATED_PASSWORD = "molecule-second-password-0002"
PROJECT_DIR = "/var/tmp/soulmatting-molecule/postgres"


def psql(host, password, sql, user="postgres"):
    return host.run(
        "PGPASSWORD=%s psql -X -tA -h 127.0.0.1 -p %s -U %s -d postgres -c %s",
        password, PORT, user, sql,
    )


def test_container_is_healthy(host):
    state = host.check_output("docker inspect -f '{{.State.Health.Status}} {{.HostConfig.RestartPolicy.Name}}' molecule-postgres")
    assert state == "healthy unless-stopped"


def test_rotated_password_works_and_data_survived(host):
    result = psql(host, ROTATED_PASSWORD, "SELECT note FROM kept")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "written before rotation"


@pytest.mark.parametrize("password", [FIRST_PASSWORD, "", "wrong-password-123456"])
def test_old_wrong_or_no_password_is_refused(host, password):
    result = psql(host, password, "SELECT 1")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr or "no password supplied" in result.stderr


@pytest.mark.parametrize("role", ["supabase_admin", "authenticator", "supabase_auth_admin", "supabase_storage_admin"])
def test_service_roles_use_the_rotated_password(host, role):
    result = psql(host, ROTATED_PASSWORD, "SELECT current_user", user=role)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == role


def test_supabase_objects_exist_on_a_vanilla_image(host):
    sql = (
        "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname IN ('auth','storage','extensions','realtime','_realtime')),"
        " (SELECT rolbypassrls FROM pg_roles WHERE rolname='service_role'),"
        " (SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid=m.roleid JOIN pg_roles u ON u.oid=m.member"
        "   WHERE u.rolname='authenticator' AND r.rolname IN ('anon','authenticated','service_role')),"
        " (SELECT count(*) FROM pg_database WHERE datname='_supabase')"
    )
    result = psql(host, ROTATED_PASSWORD, sql)
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "5|t|3|1"


def test_every_connection_uses_scram(host):
    # Over the network: SCRAM for everyone. Over the container's own Unix socket: the admin through
    # peer authentication mapped from the server's system user only, everyone else SCRAM. No trust.
    hba = host.file(PROJECT_DIR + "/conf/pg_hba.conf").content_string
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    assert [rule for rule in rules if rule[0] == "host"] == [
        ["host", "all", "all", "0.0.0.0/0", "scram-sha-256"], ["host", "all", "all", "::/0", "scram-sha-256"]]
    assert [rule for rule in rules if rule[0] == "local"] == [
        ["local", "all", "postgres", "peer", "map=soulmatting"], ["local", "all", "all", "scram-sha-256"]]
    assert not [rule for rule in rules if "trust" in rule]
    ident = host.file(PROJECT_DIR + "/conf/pg_ident.conf").content_string
    assert [line.split() for line in ident.splitlines() if line.strip() and not line.startswith("#")] == [
        ["soulmatting", "postgres", "postgres"]]


def test_the_socket_does_not_let_other_system_users_in(host):
    # Peer authentication is for the server's own system user: root in the container is refused.
    result = host.run("docker exec -u root molecule-postgres psql -X -tA -h /var/run/postgresql -U postgres -c 'select 1'")
    assert result.rc != 0
    assert "authentication failed" in result.stderr


def test_port_published_on_loopback_only(host):
    ports = host.check_output("docker port molecule-postgres 5432/tcp")
    assert ports.splitlines() == ["127.0.0.1:" + PORT]


def test_secrets_file_is_root_only(host):
    secrets = host.file(PROJECT_DIR + "/secrets.env")
    assert secrets.user == "root" and secrets.mode == 0o600
    compose = host.file(PROJECT_DIR + "/compose.yaml").content_string
    assert ROTATED_PASSWORD not in compose


def test_settings_sized_from_memory_limit(host):
    settings = "current_setting('shared_buffers'), current_setting('effective_cache_size'), current_setting('password_encryption')"
    result = psql(host, ROTATED_PASSWORD, "SELECT " + settings)
    assert result.stdout.strip() == "128MB|384MB|scram-sha-256"
    limit = host.check_output("docker inspect -f '{{.HostConfig.Memory}}' molecule-postgres")
    assert int(limit) == 512 * 1024 * 1024


def test_old_major_version_left_untouched(host):
    old = "/var/tmp/soulmatting-molecule/postgres-old"
    assert host.run("docker inspect molecule-postgres-old").rc != 0
    assert host.file(old + "/data").listdir() == ["PG_VERSION"]
    assert host.file(old + "/data/PG_VERSION").content_string == "14\n"
    assert not host.file(old + "/compose.yaml").exists


def test_server_reads_the_rendered_access_rules(host):
    rendered = host.file(PROJECT_DIR + "/conf/pg_hba.conf").content_string
    assert host.check_output("docker exec molecule-postgres cat /etc/soulmatting/pg_hba.conf") == rendered.strip()
    hba_file = host.check_output("docker exec -e PGPASSWORD=%s molecule-postgres psql -X -tA -h 127.0.0.1 -U postgres -c 'show hba_file'",
                                 ROTATED_PASSWORD)
    assert hba_file == "/etc/soulmatting/pg_hba.conf"
