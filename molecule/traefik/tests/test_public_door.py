"""The public door on the real engine, one verifier for molecule/traefik and molecule/caddy (the caddy
scenario lists this file in its verifier's additional_files_or_dirs; MOLECULE_SCENARIO_NAME picks the
proxy's PROFILE). The test bed's real Traefik 3.7 or real Caddy (Debian's 2.6.2) in front of the real
Envoy gateway (with the real postgres-meta behind it), the real SeaweedFS S3 store, and certificates
issued for real by Pebble, Let's Encrypt's test CA, by HTTP-01 and (after side_effect) by TLS-ALPN-01.

Echo servers stand in for GoTrue, PostgREST, Realtime, the edge runtime, Studio (behind the gateway) and
Grafana: an answer with "stand_in" proves where the request went and what it carried, not that the
service works (the supabase role runs none of those services on these machines; see its README). Caddy
has no dashboard and no rate limiting without a plugin: its profile says so, and the tests check that
neither is there rather than fake them.
"""

import base64
import json
import os
import socket
import ssl
import subprocess
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

PROFILES = {
    "traefik": dict(instance="moltrf", http_port=28080, https_port=28443, pebble_port=28150, dashboard="traefik",
                    rate_limit=True, health="http://{proxy}:8082/ping"),
    "caddy": dict(instance="molcdy", http_port=29080, https_port=29443, pebble_port=29150, dashboard=None,
                  rate_limit=False, health="http://{proxy}:8082/health"),
}
PROXY_ROLE = os.environ["MOLECULE_SCENARIO_NAME"]
PROFILE = PROFILES[PROXY_ROLE]
INSTANCE = PROFILE["instance"]
DOMAIN = INSTANCE + ".test"
HTTP_PORT = PROFILE["http_port"]
HTTPS_PORT = PROFILE["https_port"]
PEBBLE_CA = "/var/tmp/soulmatting-%s-pebble/certs/ca.pem" % INSTANCE
PROJECT = "/var/tmp/soulmatting-%s/%s" % (INSTANCE, PROXY_ROLE)
PROXY = "%s-%s" % (INSTANCE, PROXY_ROLE)
PEBBLE = INSTANCE + "-pebble"
# A client on the edge network whose address is not on the allow list (the Grafana stand-in has curl).
OTHER_CLIENT = INSTANCE + "-grafana"
SECRETS = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "secrets")
SUPABASE_DASHBOARD_PASSWORD = INSTANCE + "-dashboard-password-0001"
# The scenarios set the proxy's client timeouts to 4 s: a websocket must outlive them.
IDLE_LONGER_THAN_TIMEOUTS = 9
# Every name with a route, Grafana's added by side_effect with the TLS-ALPN-01 challenge.
NAMES = ["api", "studio", "s3", "grafana"] + ([PROFILE["dashboard"]] if PROFILE["dashboard"] else [])
ADMIN_ROUTES = [("studio", "/"), ("grafana", "/login")] + ([(PROFILE["dashboard"], "/dashboard/")] if PROFILE["dashboard"] else [])


def url(name, path="/", scheme="https"):
    port = HTTPS_PORT if scheme == "https" else HTTP_PORT
    return "%s://%s.%s:%d%s" % (scheme, name, DOMAIN, port, path)


@pytest.fixture(scope="module", autouse=True)
def names_resolve_to_loopback():
    """The test's host names resolve to 127.0.0.1 for this process (requests, boto3, ssl)."""
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith("." + DOMAIN):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    socket.getaddrinfo = resolve
    yield
    socket.getaddrinfo = real


@pytest.fixture(scope="module")
def pebble_root(tmp_path_factory):
    """The root that signs Pebble's certificates (new at every Pebble start), from its management API."""
    response = requests.get("https://127.0.0.1:%d/roots/0" % PROFILE["pebble_port"], verify=PEBBLE_CA, timeout=10)
    response.raise_for_status()
    path = tmp_path_factory.mktemp("pebble") / "root.pem"
    path.write_text(response.text)
    return str(path)


def secret(name):
    with open(os.path.join(SECRETS, name)) as handle:
        return handle.read().strip()


@pytest.fixture(scope="module")
def keys():
    with open(os.path.join(SECRETS, "supabase_keys.json")) as handle:
        return json.load(handle)


def get(name, path, pebble_root, **kwargs):
    return requests.get(url(name, path), verify=pebble_root, timeout=10, **kwargs)


def served_certificate(name, root, attempts=60):
    """The certificate the proxy serves for NAME, verified against Pebble's root; waits for issuance."""
    context = ssl.create_default_context(cafile=root)
    error = None
    for dummy in range(attempts):
        try:
            with socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=5) as raw:
                with context.wrap_socket(raw, server_hostname="%s.%s" % (name, DOMAIN)) as tls:
                    return tls.getpeercert()
        except (ssl.SSLError, OSError) as exc:
            error = exc
            time.sleep(1)
    # What the proxy logged about the name, to tell an ACME failure from a route that never loaded.
    logs = subprocess.run(["docker", "logs", PROXY], capture_output=True, text=True, check=False)
    said = [line for line in (logs.stdout + logs.stderr).splitlines() if "%s.%s" % (name, DOMAIN) in line and "RequestHost" not in line
            and "http.log.access" not in line]
    raise AssertionError("no certificate issued by Pebble for %s.%s: %s\n%s" % (name, DOMAIN, error, "\n".join(said[-15:])))


def refuses_tls(name, root):
    context = ssl.create_default_context(cafile=root)
    with socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=5) as raw:
        try:
            context.wrap_socket(raw, server_hostname="%s.%s" % (name, DOMAIN)).close()
        except ssl.SSLError:
            return True
    return False


def pebble_issued(host):
    return int(host.run("docker logs %s 2>&1 | grep -c 'Issued certificate serial'", PEBBLE).stdout.strip() or 0)


def proxy_log(host):
    """The proxy's JSON log lines, parsed."""
    lines = host.run("docker logs %s 2>&1", PROXY).stdout.splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def challenges_tried(host):
    """(name, challenge type) of every ACME challenge the proxy set out to solve, from its own log."""
    if PROXY_ROLE == "traefik":
        return {(entry["domain"], entry["type"]) for entry in proxy_log(host) if entry.get("message") == "Use solver."}
    return {(entry["identifier"], entry["challenge_type"]) for entry in proxy_log(host) if entry.get("msg") == "trying to solve challenge"}


def access_log(host):
    """(host name, path, status) of every request in the proxy's JSON access log, and the raw lines."""
    if PROXY_ROLE == "traefik":
        lines = [line for line in host.run("docker logs %s", PROXY).stdout.splitlines() if '"RequestHost"' in line]
        entries = [json.loads(line) for line in lines]
        return {(e["RequestHost"], e["RequestPath"], e["DownstreamStatus"]) for e in entries}, lines
    lines = [line for line in host.run("docker logs %s 2>&1", PROXY).stdout.splitlines() if '"logger":"http.log.access' in line]
    entries = [json.loads(line) for line in lines]
    # Caddy logs the Host header as sent (with the port); Traefik logs the name alone.
    return {(e["request"]["host"].rsplit(":", 1)[0], e["request"]["uri"], e["status"]) for e in entries}, lines


def from_other_client(host, name, path="/", auth=None):
    """Status code of a request from another address on the edge network, straight to the proxy's port 443."""
    address = host.check_output("docker inspect -f '{{(index .NetworkSettings.Networks \"%s_edge\").IPAddress}}' %s", INSTANCE, PROXY)
    command = ["docker", "exec", OTHER_CLIENT, "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
               "--resolve", "%s.%s:443:%s" % (name, DOMAIN, address)]
    if auth:
        command += ["-u", "%s:%s" % auth]
    result = host.run(" ".join("'%s'" % part for part in command + ["https://%s.%s%s" % (name, DOMAIN, path)]))
    return int(result.stdout.strip() or 0)


# --- TLS: certificates from Pebble, HTTP to HTTPS, HSTS --------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_the_certificate_for_each_name_was_issued_by_pebble(pebble_root, name):
    certificate = served_certificate(name, pebble_root)
    issuer = dict(item[0] for item in certificate["issuer"])
    assert issuer["commonName"].startswith("Pebble Intermediate CA")
    assert ("DNS", "%s.%s" % (name, DOMAIN)) in certificate["subjectAltName"]


def test_both_challenges_were_used(host):
    # Pebble validated the first names over HTTP on port 80, never Grafana's ...
    pebble = host.run("docker logs %s 2>&1", PEBBLE).stdout
    assert "Attempting to validate w/ HTTP: http://api.%s:80/.well-known/acme-challenge/" % DOMAIN in pebble
    assert "Attempting to validate w/ HTTP: http://grafana." not in pebble
    # ... which side_effect added with TLS-ALPN-01 on port 443 (Pebble does not log that one; the proxy does).
    assert challenges_tried(host) >= {("api." + DOMAIN, "http-01"), ("grafana." + DOMAIN, "tls-alpn-01")}


def test_an_unknown_name_gets_no_certificate(pebble_root):
    assert refuses_tls("unknown", pebble_root)


def test_http_redirects_to_https():
    response = requests.get(url("api", "/rest/v1/todos?select=id", "http"), allow_redirects=False, timeout=10)
    assert response.status_code in (301, 308)
    assert response.headers["Location"] == "https://api.%s/rest/v1/todos?select=id" % DOMAIN


@pytest.mark.parametrize("name", ["api", "studio", "grafana"])
def test_hsts_and_security_headers(pebble_root, name):
    response = get(name, "/auth/v1/health", pebble_root)
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


# --- Routes: the right backend, host and path ------------------------------------------------------------

@pytest.mark.parametrize("path, stand_in, upstream_path", [
    ("/rest/v1/todos", "rest", "/todos"),
    ("/auth/v1/user", "auth", "/user"),
    ("/realtime/v1/api/ping", "realtime", "/api/ping"),
    ("/functions/v1/hello", "functions", "/hello"),
    ("/storage/v1/object/public/avatars/a.png", "storage", "/object/public/avatars/a.png"),
])
def test_the_api_host_reaches_the_real_gateway_and_its_services(pebble_root, keys, path, stand_in, upstream_path):
    response = get("api", path, pebble_root, headers={"apikey": keys["anon_key"]})
    assert response.status_code == 200, response.text
    echoed = response.json()
    assert (echoed["stand_in"], echoed["path"]) == (stand_in, upstream_path)
    # The public host name reached the services through both hops.
    assert echoed["headers"]["x-forwarded-host"] in ("api.%s:%d" % (DOMAIN, HTTPS_PORT), "api." + DOMAIN)
    if stand_in != "realtime":
        assert echoed["headers"]["host"] == "api.%s:%d" % (DOMAIN, HTTPS_PORT)


def test_the_services_learn_that_the_client_came_over_https(pebble_root, keys):
    response = get("api", "/rest/v1/todos", pebble_root, headers={"apikey": keys["anon_key"]})
    assert response.json()["headers"]["x-forwarded-proto"] == "https"


def test_the_gateway_still_demands_a_key_behind_the_proxy(pebble_root):
    assert get("api", "/rest/v1/todos", pebble_root).status_code == 401


def test_the_api_host_does_not_serve_studio_or_postgres_meta(pebble_root, keys):
    assert get("api", "/", pebble_root).status_code == 404
    assert get("api", "/pg/schemas", pebble_root, headers={"apikey": keys["service_role_key"]}).status_code == 404


def test_studio_host_reaches_studio_behind_the_gateways_login(pebble_root):
    assert get("studio", "/project/default", pebble_root).status_code == 401
    response = get("studio", "/project/default", pebble_root, auth=("supabase", SUPABASE_DASHBOARD_PASSWORD))
    assert response.status_code == 200 and response.json()["stand_in"] == "studio"
    assert response.json()["path"] == "/project/default"


def test_studio_host_reaches_the_real_postgres_meta(pebble_root, keys):
    response = get("studio", "/pg/schemas", pebble_root, headers={"apikey": keys["service_role_key"]})
    assert response.status_code == 200, response.text
    assert {"public", "auth", "storage"} <= {schema["name"] for schema in response.json()}


def test_the_s3_host_reaches_the_real_object_store(pebble_root):
    def client(secret_key):
        return boto3.client("s3", endpoint_url=url("s3", ""), region_name="us-east-1", verify=pebble_root,
                            config=Config(s3={"addressing_style": "path"}), aws_access_key_id="soulmatting-admin",
                            aws_secret_access_key=secret_key)

    bucket = INSTANCE + "-through-the-proxy"
    right = client(secret("minio_root_password"))
    right.create_bucket(Bucket=bucket)
    # A key with characters S3 clients percent-encode (the proxy must pass them as sent, or the signature fails).
    key = "dir/name with spaces #1?.txt"
    right.put_object(Bucket=bucket, Key=key, Body=b"through the proxy")
    assert right.get_object(Bucket=bucket, Key=key)["Body"].read() == b"through the proxy"
    with pytest.raises(ClientError):
        client("not-the-secret-key-0001").list_objects_v2(Bucket=bucket)
    assert get("s3", "/%s/" % bucket, pebble_root).status_code == 403


def test_the_grafana_host_reaches_the_monitoring_roles_container(pebble_root):
    response = get("grafana", "/login", pebble_root)
    assert response.status_code == 200
    echoed = response.json()
    assert echoed["stand_in"] == "grafana" and echoed["path"] == "/login"
    assert echoed["headers"]["host"] == "grafana.%s:%d" % (DOMAIN, HTTPS_PORT)
    assert echoed["headers"]["x-forwarded-proto"] == "https"


# --- Websockets to Realtime, through the proxy and the gateway ------------------------------------------

def _frame(sock):
    head = sock.recv(2)
    assert len(head) == 2, "the socket was closed"
    length = head[1] & 0x7F
    if length == 126:
        length = int.from_bytes(sock.recv(2), "big")
    data = b""
    while len(data) < length:
        data += sock.recv(length - len(data))
    return data


def test_a_websocket_to_realtime_upgrades_and_outlives_the_timeouts(pebble_root, keys):
    context = ssl.create_default_context(cafile=pebble_root)
    # HTTP/1.1 only: the upgrade is an HTTP/1.1 request.
    context.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=30)
    sock = context.wrap_socket(raw, server_hostname="api." + DOMAIN)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET /realtime/v1/websocket?apikey=%s&vsn=1.0.0 HTTP/1.1\r\nHost: api.%s\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                  % (keys["anon_key"], DOMAIN, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    upgrade = json.loads(_frame(sock))
    assert upgrade["stand_in"] == "realtime" and upgrade["path"] == "/socket/websocket"
    assert upgrade["headers"]["x-api-key"] == keys["anon_key"]
    # Idle for longer than the proxy's read and idle timeouts: the socket must stay open.
    time.sleep(IDLE_LONGER_THAN_TIMEOUTS)
    mask = os.urandom(4)
    for text in (b"still there", b"and again"):
        sock.sendall(bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))
        assert _frame(sock) == text
    sock.close()


# --- The dashboard and the admin allow list -------------------------------------------------------------

def test_the_dashboard_refuses_without_credentials_and_accepts_with_them(pebble_root):
    name = PROFILE["dashboard"]
    if name is None:
        # Caddy has none: no name, no certificate, no route; its admin API stays on the container's loopback.
        assert refuses_tls("traefik", pebble_root)
        return
    password = secret("traefik_dashboard_password")
    assert get(name, "/dashboard/", pebble_root).status_code == 401
    assert get(name, "/dashboard/", pebble_root, auth=("admin", "wrong-password-0001")).status_code == 401
    response = get(name, "/dashboard/", pebble_root, auth=("admin", password))
    assert response.status_code == 200 and "<html" in response.text.lower()
    routers = get(name, "/api/http/routers", pebble_root, auth=("admin", password)).json()
    assert {"api@file", "api-auth@file", "studio@file", "storage@file", "grafana@file", "dashboard@file"} <= {r["name"] for r in routers}


@pytest.mark.parametrize("name, path", ADMIN_ROUTES)
def test_admin_routes_refuse_addresses_off_the_allow_list(host, pebble_root, name, path):
    assert from_other_client(host, name, path) == 403
    # ... and answer the allowed address (the host, through Docker's port proxy from a network gateway).
    assert get(name, path, pebble_root).status_code != 403


def test_public_routes_take_any_address(host):
    assert from_other_client(host, "api", "/rest/v1/todos") == 401  # the gateway's answer: no key
    assert from_other_client(host, "s3", "/") == 403  # SeaweedFS' answer: unsigned


# --- Metrics, logs, files --------------------------------------------------------------------------------

def test_metrics_and_health_on_the_edge_network_only(host, pebble_root, keys):
    get("api", "/rest/v1/todos", pebble_root, headers={"apikey": keys["anon_key"]})
    metrics = host.check_output("docker exec %s curl -fsS http://%s:8082/metrics", OTHER_CLIENT, PROXY)
    if PROXY_ROLE == "traefik":
        routed = [line for line in metrics.splitlines() if line.startswith("traefik_router_requests_total{")]
        assert any('router="api@file"' in line and 'code="200"' in line for line in routed)
    else:
        served = [line for line in metrics.splitlines() if line.startswith("caddy_http_requests_total{")]
        assert any('server="srv0"' in line for line in served), "no request metrics of the HTTPS server"
    assert host.check_output("docker exec %s curl -fsS %s", OTHER_CLIENT, PROFILE["health"].format(proxy=PROXY)) == "OK"
    ports = host.check_output("docker port %s", PROXY).splitlines()
    assert sorted(ports) == ["443/tcp -> 127.0.0.1:%d" % HTTPS_PORT, "80/tcp -> 127.0.0.1:%d" % HTTP_PORT]


def test_json_access_logs_without_keys(host, pebble_root, keys):
    get("api", "/rest/v1/todos?apikey=" + keys["anon_key"], pebble_root, headers={"apikey": keys["anon_key"]})
    entries, lines = access_log(host)
    assert ("api." + DOMAIN, "/rest/v1/todos", 200) in entries
    text = "\n".join(lines)
    assert keys["anon_key"] not in text and keys["service_role_key"] not in text
    assert "Authorization" not in text and "apikey" not in text.lower()


def test_routes_come_from_files_never_the_docker_socket(host):
    assert "docker.sock" not in host.file(PROJECT + "/compose.yaml").content_string
    mounts = host.check_output("docker inspect -f '{{range .Mounts}}{{.Source}} {{end}}' %s", PROXY)
    assert "docker.sock" not in mounts


def test_the_configuration_holds_no_secret_and_the_certificates_are_root_only(host):
    store = [secret(name) for name in os.listdir(SECRETS) if not name.startswith(".") and os.path.isfile(os.path.join(SECRETS, name))]
    assert store
    files = host.check_output("find %s -type f -not -path '%s/data/*'", PROJECT, PROJECT).splitlines()
    assert files
    for path in files:
        content = host.file(path).content_string
        assert not [value for value in store if value and value in content], path
    assert host.file(PROJECT + "/data").mode == 0o700 and host.file(PROJECT + "/data").user == "root"


# --- Restarts and the rate limit (last: a restart resets the limiter) ------------------------------------

def test_a_restart_keeps_the_certificates_and_orders_none(host, pebble_root):
    before = {name: served_certificate(name, pebble_root)["serialNumber"] for name in NAMES}
    issued = pebble_issued(host)
    host.check_output("docker restart %s", PROXY)
    for dummy in range(60):
        if host.check_output("docker inspect -f '{{.State.Health.Status}}' %s", PROXY) == "healthy":
            break
        time.sleep(1)
    after = {name: served_certificate(name, pebble_root)["serialNumber"] for name in NAMES}
    assert after == before
    time.sleep(2)
    assert pebble_issued(host) == issued


def test_the_auth_endpoints_rate_limit(pebble_root, keys):
    # The budget: 5 per second on average, bursts of 10 (selfhosted_auth_rate_limit in molecule.yml).
    session = requests.Session()
    codes = [session.get(url("api", "/auth/v1/health"), headers={"apikey": keys["anon_key"]}, verify=pebble_root, timeout=10).status_code
             for dummy in range(40)]
    assert codes[:5] == [200] * 5
    if PROFILE["rate_limit"]:
        assert 429 in codes
    else:
        # Caddy 2 has no rate limiting without a plugin; its README says so: the budget is not enforced.
        assert codes == [200] * 40
    # Other paths of the API host are not limited.
    rest = [session.get(url("api", "/rest/v1/todos"), headers={"apikey": keys["anon_key"]}, verify=pebble_root, timeout=10).status_code
            for dummy in range(20)]
    assert rest == [200] * 20
