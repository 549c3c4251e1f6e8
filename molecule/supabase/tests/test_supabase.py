"""The supabase role on the real engine: keys, the real Envoy gateway's every rule, real postgres-meta,
the database preparation, Storage's S3 identity against the real S3 server.

Echo servers stand in for GoTrue, PostgREST, Realtime, Storage, imgproxy, the edge runtime and Studio:
a response with "stand_in" proves where the gateway sent the request and what it sent, not that the
service works.
"""

import base64
import json
import os
import socket

import boto3
import jwt
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

GATEWAY = "http://127.0.0.1:18000"
S3 = "http://127.0.0.1:19300"
SECRETS = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "secrets")
PROJECT = "/var/tmp/soulmatting-molecule/supabase"
DASHBOARD_PASSWORD = "molecule-dashboard-password-0001"


def secret(name):
    with open(os.path.join(SECRETS, name)) as handle:
        return handle.read().strip()


@pytest.fixture(scope="module")
def keys():
    with open(os.path.join(SECRETS, "supabase_keys.json")) as handle:
        return json.load(handle)


def get(path, key=None, query_key=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if key:
        headers["apikey"] = key
    params = {"apikey": query_key} if query_key else None
    return requests.get(GATEWAY + path, headers=headers, params=params, timeout=10, **kwargs)


def env_file(host, service):
    text = host.file("%s/env/%s.env" % (PROJECT, service)).content_string
    return dict((line.split("=", 1)[0], line.split("=", 1)[1].strip("'")) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def test_the_keys_verify_under_the_stacks_secret(keys):
    jwt_secret = secret("supabase_jwt_secret")
    assert keys["jwt_secret"] == jwt_secret
    for name, role in (("anon_key", "anon"), ("service_role_key", "service_role")):
        claims = jwt.decode(keys[name], jwt_secret.encode(), algorithms=["HS256"])
        assert claims["role"] == role and claims["iss"] == "supabase"


@pytest.mark.parametrize("container", ["molecule-gateway", "molecule-meta", "molecule-auth", "molecule-rest",
                                       "realtime-dev.molecule-realtime", "molecule-storage", "molecule-imgproxy",
                                       "molecule-functions", "molecule-studio"])
def test_every_service_is_healthy(host, container):
    assert host.check_output("docker inspect -f '{{.State.Health.Status}}' %s", container) == "healthy"


def test_optional_services_are_off_by_default(host):
    for container in ("molecule-pooler", "molecule-analytics", "molecule-vector"):
        assert host.run("docker inspect %s", container).rc != 0


@pytest.mark.parametrize("path, upstream, upstream_path", [
    ("/auth/v1/user", "auth", "/user"),
    ("/rest/v1/todos", "rest", "/todos"),
    ("/graphql/v1", "rest", "/rpc/graphql"),
    ("/realtime/v1/api/ping", "realtime", "/api/ping"),
])
def test_keyed_routes_take_either_key_in_header_or_query(keys, path, upstream, upstream_path):
    for key in (keys["anon_key"], keys["service_role_key"]):
        for response in (get(path, key=key), get(path, query_key=key)):
            assert response.status_code == 200, response.text
            echoed = response.json()
            assert echoed["stand_in"] == upstream and echoed["path"] == upstream_path
            assert echoed["headers"]["apikey"] == key
            assert echoed["headers"]["authorization"] == "Bearer " + key


@pytest.mark.parametrize("path", ["/auth/v1/user", "/rest/v1/todos", "/graphql/v1", "/realtime/v1/api/ping", "/pg/schemas", "/rest/v1/"])
def test_a_missing_or_wrong_key_is_refused(path):
    assert get(path).status_code == 401
    assert get(path, key="not-a-key").status_code == 401
    forged = jwt.encode({"role": "service_role", "iss": "supabase"}, "another-secret-of-at-least-32-chars", algorithm="HS256")
    assert get(path, key=forged).status_code == 401


def test_a_users_own_bearer_token_is_kept(keys):
    echoed = get("/rest/v1/todos", key=keys["anon_key"], headers={"Authorization": "Bearer user-session-token"}).json()
    assert echoed["headers"]["authorization"] == "Bearer user-session-token"


def test_graphql_asks_for_the_public_graphql_schema(keys):
    assert get("/graphql/v1", key=keys["anon_key"]).json()["headers"]["content-profile"] == "graphql_public"


def test_the_openapi_root_is_for_the_service_role_only(keys):
    assert get("/rest/v1/", key=keys["anon_key"]).status_code == 403
    assert get("/rest/v1/", key=keys["service_role_key"]).json()["stand_in"] == "rest"


def test_pg_reaches_the_real_postgres_meta_with_the_service_role_only(keys):
    assert get("/pg/schemas", key=keys["anon_key"]).status_code == 403
    assert get("/pg/schemas", query_key=keys["anon_key"]).status_code == 403
    response = get("/pg/schemas", key=keys["service_role_key"])
    assert response.status_code == 200, response.text
    # postgres-meta read the catalog with the credentials the role gave it: the schemas the database has.
    names = {schema["name"] for schema in response.json()}
    assert {"public", "auth", "storage", "_realtime", "extensions"} <= names


@pytest.mark.parametrize("path", ["/realtime/v1/api/tenants", "/realtime/v1/api/openapi", "/mcp", "/api/mcp"])
def test_blocked_routes(keys, path):
    assert get(path, key=keys["service_role_key"]).status_code == 403


@pytest.mark.parametrize("path, upstream, upstream_path", [
    ("/auth/v1/verify", "auth", "/verify"),
    ("/auth/v1/callback", "auth", "/callback"),
    ("/auth/v1/authorize", "auth", "/authorize"),
    ("/auth/v1/.well-known/jwks.json", "auth", "/.well-known/jwks.json"),
    ("/storage/v1/object/public/avatars/a.png", "storage", "/object/public/avatars/a.png"),
    ("/functions/v1/hello", "functions", "/hello"),
])
def test_open_and_passed_through_routes_need_no_key(path, upstream, upstream_path):
    response = get(path)
    assert response.status_code == 200, response.text
    assert (response.json()["stand_in"], response.json()["path"]) == (upstream, upstream_path)


def test_storage_learns_its_public_prefix():
    assert get("/storage/v1/object/x").json()["headers"]["x-forwarded-prefix"] == "/storage/v1"


def test_studio_is_behind_the_dashboard_login():
    assert get("/").status_code == 401
    assert get("/", auth=("supabase", "wrong-password")).status_code == 401
    response = get("/project/default", auth=("supabase", DASHBOARD_PASSWORD))
    assert response.status_code == 200 and response.json()["stand_in"] == "studio"
    assert "authorization" not in response.json()["headers"]


class WebSocket:
    """Just enough of a websocket client: the upgrade, then unfragmented text frames."""

    def __init__(self, path):
        self.sock = socket.create_connection(("127.0.0.1", 18000), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: api.molecule.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        self.status, _separator, self.buffer = self.buffer.partition(b"\r\n\r\n")

    def _read(self, count):
        while len(self.buffer) < count:
            self.buffer += self.sock.recv(4096)
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive(self):
        head = self._read(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(self._read(2), "big")
        return self._read(length)

    def send(self, text):
        mask = os.urandom(4)
        self.sock.sendall(bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))


def test_realtime_websocket_upgrades_and_stays_open(keys):
    ws = WebSocket("/realtime/v1/websocket?apikey=%s&vsn=1.0.0" % keys["anon_key"])
    assert ws.status.startswith(b"HTTP/1.1 101"), ws.status
    upgrade = json.loads(ws.receive())
    assert upgrade["stand_in"] == "realtime" and upgrade["path"] == "/socket/websocket"
    # The tenant comes from the host name, as Realtime needs; the key reaches it in x-api-key.
    assert upgrade["headers"]["host"].startswith("realtime-dev.")
    assert upgrade["headers"]["x-api-key"] == keys["anon_key"]
    for text in (b"first", b"second"):
        ws.send(text)
        assert ws.receive() == text
    ws.sock.close()


def test_realtime_websocket_without_a_key_is_refused():
    ws = WebSocket("/realtime/v1/websocket?vsn=1.0.0")
    assert ws.status.startswith(b"HTTP/1.1 401")
    ws.sock.close()


def test_auth_is_configured_from_the_public_url(host):
    # GoTrue's own settings, as the stand-in received them: links through the public URL, never localhost.
    env = json.loads(host.check_output("docker inspect -f '{{json .Config.Env}}' molecule-auth"))
    settings = dict(item.split("=", 1) for item in env)
    assert settings["API_EXTERNAL_URL"] == "https://api.molecule.test/auth/v1"
    assert settings["GOTRUE_SITE_URL"] == "https://api.molecule.test"
    assert settings["GOTRUE_URI_ALLOW_LIST"] == "https://app.molecule.test/welcome"
    assert "localhost" not in settings["GOTRUE_MAILER_URLPATHS_CONFIRMATION"]
    assert settings["GOTRUE_DB_DATABASE_URL"].startswith("postgres://supabase_auth_admin:")


def test_storage_s3_identity_is_limited_to_its_bucket(host):
    env = env_file(host, "storage")
    settings = json.loads(host.check_output("docker inspect -f '{{json .Config.Env}}' molecule-storage"))
    bucket = dict(item.split("=", 1) for item in settings)["GLOBAL_S3_BUCKET"]
    config = Config(s3={"addressing_style": "path"})
    storage = boto3.client("s3", endpoint_url=S3, region_name="us-east-1", config=config,
                           aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    assert env["AWS_ACCESS_KEY_ID"] != "soulmatting-admin"
    storage.put_object(Bucket=bucket, Key="molecule/probe.txt", Body=b"written by storage")
    assert storage.get_object(Bucket=bucket, Key="molecule/probe.txt")["Body"].read() == b"written by storage"
    root = boto3.client("s3", endpoint_url=S3, region_name="us-east-1", config=config,
                        aws_access_key_id="soulmatting-admin", aws_secret_access_key=secret("minio_root_password"))
    root.create_bucket(Bucket="molecule-other")
    for call in (lambda: storage.put_object(Bucket="molecule-other", Key="x", Body=b"x"),
                 lambda: storage.list_objects_v2(Bucket="molecule-other")):
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "AccessDenied"


def psql(host, sql):
    return host.check_output("docker exec -u postgres molecule-postgres psql -X -tA -h /var/run/postgresql -U postgres -d postgres -c %s", sql)


def test_the_database_is_prepared_for_the_services(host):
    owners = psql(host, "select string_agg(nspname || ':' || pg_get_userbyid(nspowner), ',' order by nspname) from pg_namespace"
                        " where nspname in ('auth', 'storage', 'realtime', '_realtime')")
    assert owners == "_realtime:supabase_admin,auth:supabase_auth_admin,realtime:supabase_admin,storage:supabase_storage_admin"
    paths = psql(host, "select string_agg(r.rolname || ':' || array_to_string(s.setconfig, ';'), ',' order by r.rolname)"
                       " from pg_db_role_setting s join pg_roles r on r.oid = s.setrole"
                       " where r.rolname in ('supabase_auth_admin', 'supabase_storage_admin')")
    assert paths == "supabase_auth_admin:search_path=auth,supabase_storage_admin:search_path=storage"
    assert psql(host, "select count(*) from pg_publication where pubname = 'supabase_realtime'") == "1"
    schemas = host.check_output("docker exec -u postgres molecule-postgres psql -X -tA -h /var/run/postgresql -U postgres -d _supabase"
                                " -c \"select string_agg(nspname, ',' order by nspname) from pg_namespace where nspname like '\\_%%'\"")
    assert schemas == "_analytics,_supavisor"


def test_no_secret_in_the_compose_file(host, keys):
    compose = host.file(PROJECT + "/compose.yaml").content_string
    for value in (keys["anon_key"], keys["service_role_key"], secret("supabase_jwt_secret"), secret("postgres_password"), DASHBOARD_PASSWORD):
        assert value not in compose
    for name in ("auth", "storage", "rest"):
        env = host.file("%s/env/%s.env" % (PROJECT, name))
        assert env.user == "root" and env.mode == 0o600
    gateway = host.file(PROJECT + "/gateway/envoy.yaml")
    assert gateway.uid == 101 and gateway.mode == 0o600


# Operations (side_effect): JWT rotation, database password change, upgrades with a rollback.

def before(name):
    with open("/var/tmp/soulmatting-molecule/before-" + name) as handle:
        return handle.read().strip()


def test_after_the_jwt_rotation_old_keys_are_refused_and_new_ones_accepted(host, keys):
    old = json.loads(before("supabase_keys.json"))
    assert old["jwt_secret"] != keys["jwt_secret"] == secret("supabase_jwt_secret")
    for name in ("anon_key", "service_role_key"):
        assert old[name] != keys[name]
        assert get("/rest/v1/todos", key=old[name]).status_code == 401
        assert get("/rest/v1/todos", key=keys[name]).status_code == 200
    # Auth (a stand-in here) signs and the services verify with the new secret.
    for name, variable in (("auth", "GOTRUE_JWT_SECRET"), ("rest", "PGRST_JWT_SECRET"), ("storage", "AUTH_JWT_SECRET")):
        assert env_file(host, name)[variable] == keys["jwt_secret"], name


def test_after_the_password_change_every_service_logs_in_with_the_new_one(host, keys):
    old, new = before("postgres_password"), secret("postgres_password")
    assert old != new
    # postgres-meta, which really logs in to the database, answers through the gateway.
    assert get("/pg/schemas", key=keys["service_role_key"]).status_code == 200
    for name, variable in (("auth", "GOTRUE_DB_DATABASE_URL"), ("rest", "PGRST_DB_URI"), ("storage", "DATABASE_URL")):
        assert (":%s@" % new) in env_file(host, name)[variable], name
    assert env_file(host, "meta")["PG_META_DB_PASSWORD"] == new
    for role in ("postgres", "authenticator", "supabase_auth_admin", "supabase_storage_admin"):
        refused = host.run("docker exec -e PGPASSWORD=%s molecule-postgres psql -X -tA -h 127.0.0.1 -U %s -d postgres -c 'select 1'", old, role)
        assert refused.rc != 0, role
        accepted = host.run("docker exec -e PGPASSWORD=%s molecule-postgres psql -X -tA -h 127.0.0.1 -U %s -d postgres -c 'select 1'", new, role)
        assert accepted.rc == 0, role


def containers(name):
    with open("/var/tmp/soulmatting-molecule/containers-" + name) as handle:
        return dict(line.split() for line in handle if line.strip())


def test_the_good_upgrade_changed_only_that_service(host):
    old, new = containers("before"), containers("after")
    assert set(old) == set(new)
    assert [name for name in sorted(new) if new[name] != old[name]] == ["molecule-imgproxy"]
    image = host.check_output("docker inspect -f '{{.Config.Image}} {{.State.Health.Status}}' molecule-imgproxy")
    assert image == "soulmatting-testbed/echo:upgraded healthy"
