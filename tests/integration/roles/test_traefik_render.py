"""The traefik role's project, rendered and checked by real validators, and its input checks.

The role is applied with selfhosted_start=false (files rendered on the host, nothing started) against
inventories with the stack on the proxy's host and on other hosts (proxy_render, shared with the caddy
role's test). Compose v2 validates each project (`docker compose config`); the test bed's real Traefik
loads each rendered configuration (static file and routes, on a network of its own with no way out) and
must log no error but the ACME CA being unreachable; a broken configuration must make it log one. Bad
input fails in the preflight, naming the variable, before anything on the host changes.
"""

import shutil
import subprocess
import time
import uuid

import pytest
import yaml

from roles.proxy_render import ONLY_SUPABASE, SAME_HOST_BACKENDS, SPREAD, SPREAD_BACKENDS, SPREAD_HOSTS, Proxy
from roles.proxy_render import HOSTS as COMMON_HOSTS

TRAEFIK_IMAGE = "soulmatting-testbed/traefik:latest"
HOSTS = dict(COMMON_HOSTS, dashboard="traefik.example.org")
TRAEFIK = Proxy("traefik", HOSTS)
render = TRAEFIK.fixture()
apply = TRAEFIK.apply


def routes(project_dir):
    return yaml.safe_load((project_dir / "dynamic" / "routes.yml").read_text())


def servers(config):
    """Each route's backend, host:port, by route name."""
    return {name.replace("-", "_"): service["loadBalancer"]["servers"][0]["url"].split("://", 1)[1]
            for name, service in config["http"]["services"].items()}


def static(project_dir):
    return yaml.safe_load((project_dir / "config" / "traefik.yml").read_text())


def traefik_errors(project_dir, seconds=4):
    """Runs the real Traefik on the rendered files, alone on an internal network; returns its error lines
    (ACME's own, the CA being unreachable here, left out) and whether its health check passed."""
    name = "render-traefik-" + uuid.uuid4().hex[:8]
    network = name + "-net"
    subprocess.run(["docker", "network", "create", "--internal", network], capture_output=True, check=True)
    try:
        run = subprocess.run(["docker", "run", "-d", "--name", name, "--network", network,
                              "-v", "%s:/etc/traefik:ro" % (project_dir / "config"),
                              "-v", "%s:/etc/traefik-dynamic:ro" % (project_dir / "dynamic"),
                              "-v", "%s:/run/traefik-secrets:ro" % (project_dir / "secrets"),
                              "--tmpfs", "/data", TRAEFIK_IMAGE, "--configFile=/etc/traefik/traefik.yml"],
                             capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        healthy = False
        for dummy in range(seconds * 2):
            time.sleep(0.5)
            check = subprocess.run(["docker", "exec", name, "traefik", "healthcheck", "--configFile=/etc/traefik/traefik.yml"],
                                   capture_output=True, text=True, check=False)
            if check.returncode == 0:
                healthy = True
                break
        time.sleep(1)
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
        lines = (logs.stdout + logs.stderr).splitlines()
        errors = [line for line in lines if ('"level":"error"' in line or '"level":"fatal"' in line or line.startswith("command traefik error"))
                  and "acme" not in line.lower()]
        return errors, healthy
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        subprocess.run(["docker", "network", "rm", network], capture_output=True, check=False)


# --- The project and the configuration, as Compose and Traefik read them --------------------------------

COMBINATIONS = [
    {},
    {"selfhosted_acme_challenge": "tls", "selfhosted_admin_allow_list": ["192.0.2.0/24", "2001:db8::/32"],
     "selfhosted_acme_ca": "staging"},
    {"selfhosted_proxy_hosts": {"api": "example.org", "studio": "example.org"}, "traefik_access_log": False},
]


@pytest.mark.parametrize("extra", COMBINATIONS, ids=["defaults", "tls-allow-list-staging", "api-and-studio-on-one-name"])
def test_the_project_is_valid_compose(render, extra):
    TRAEFIK.check_service(render(**extra))


@pytest.mark.parametrize("extra", COMBINATIONS, ids=["defaults", "tls-allow-list-staging", "api-and-studio-on-one-name"])
def test_the_real_traefik_loads_the_configuration_without_error(render, extra):
    errors, healthy = traefik_errors(render(**extra))
    assert errors == [] and healthy


def test_traefik_reports_a_broken_route(render, tmp_path):
    # The check above is worth something only if Traefik logs an error for a bad route.
    broken = tmp_path / "traefik"
    shutil.copytree(render(), broken)
    text = (broken / "dynamic" / "routes.yml").read_text().replace("middlewares: [auth-rate-limit]", "middlewares: [no-such-middleware]")
    (broken / "dynamic" / "routes.yml").write_text(text)
    errors, dummy = traefik_errors(broken)
    assert any("no-such-middleware" in line for line in errors)


def test_routes_on_the_same_host_use_container_names(render):
    config = routes(render())
    assert servers(config) == SAME_HOST_BACKENDS
    routers = config["http"]["routers"]
    assert routers["api"]["rule"].startswith("Host(`api.example.org`) && (PathPrefix(`/auth/v1/`) || ")
    assert routers["api-auth"]["rule"] == "Host(`api.example.org`) && (PathPrefix(`/auth/v1/`))"
    assert routers["api-auth"]["priority"] > routers["api"]["priority"] > routers["studio"]["priority"]
    assert routers["api-auth"]["middlewares"] == ["auth-rate-limit"]
    assert routers["dashboard"]["service"] == "api@internal"
    assert "dashboard-auth" in routers["dashboard"]["middlewares"]
    assert "storage-console" not in routers
    # The object store's data network is joined because its route is on and the store runs here.
    networks = TRAEFIK.service(render())["networks"]
    assert sorted(networks) == ["rendered_data", "rendered_edge"]


def test_routes_to_other_hosts_use_their_addresses(render):
    project = render(SPREAD, selfhosted_proxy_hosts=SPREAD_HOSTS)
    assert servers(routes(project)) == SPREAD_BACKENDS
    # Nothing runs here: the proxy joins the edge network only.
    assert list(TRAEFIK.service(project)["networks"]) == ["rendered_edge"]


def test_a_route_whose_part_has_no_host_stays_off(tmp_path):
    dummy, project = TRAEFIK.check_orphan_route(tmp_path)
    assert set(routes(project)["http"]["routers"]) == {"api", "api-auth", "studio", "storage", "dashboard"}


def test_backend_urls_override_the_inventory(render):
    project = render(ONLY_SUPABASE, traefik_backend_urls={"grafana": "http://192.0.2.7:3000"})
    assert routes(project)["http"]["services"]["grafana"]["loadBalancer"]["servers"][0]["url"] == "http://192.0.2.7:3000"


def test_security_settings(render):
    project = render(**COMBINATIONS[1])
    config = static(project)
    assert config["entryPoints"]["web"]["http"]["redirections"]["entryPoint"] == {"to": "websecure", "scheme": "https", "permanent": True}
    assert config["entryPoints"]["websecure"]["http"]["middlewares"] == ["security-headers@file"]
    assert config["accessLog"]["format"] == "json" and config["accessLog"]["fields"]["headers"]["defaultMode"] == "drop"
    assert config["accessLog"]["fields"]["queryParameters"]["defaultMode"] == "drop"
    assert config["metrics"]["prometheus"]["entryPoint"] == "metrics" and config["entryPoints"]["metrics"]["address"] == ":8082"
    assert config["ping"]["entryPoint"] == "metrics"
    assert "docker" not in config["providers"]
    acme = config["certificatesResolvers"]["acme"]["acme"]
    assert acme["caServer"] == "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert acme["tlsChallenge"] == {} and "httpChallenge" not in acme and acme["storage"] == "/data/acme-staging.json"
    dynamic = routes(project)
    headers = dynamic["http"]["middlewares"]["security-headers"]["headers"]
    assert headers["stsSeconds"] == 31536000 and headers["stsIncludeSubdomains"] is True and headers["contentTypeNosniff"] is True
    assert dynamic["http"]["middlewares"]["admin-allow-list"]["ipAllowList"]["sourceRange"] == ["192.0.2.0/24", "2001:db8::/32"]
    for router in ("studio", "grafana", "dashboard"):
        assert "admin-allow-list" in dynamic["http"]["routers"][router]["middlewares"]
    assert "middlewares" not in dynamic["http"]["routers"]["storage"]
    assert dynamic["tls"]["options"]["default"] == {"minVersion": "VersionTLS12", "sniStrict": True}


def test_each_ca_gets_a_certificate_store_of_its_own(render):
    assert static(render())["certificatesResolvers"]["acme"]["acme"]["storage"] == "/data/acme-production.json"
    assert static(render(**COMBINATIONS[1]))["certificatesResolvers"]["acme"]["acme"]["storage"] == "/data/acme-staging.json"


def test_the_dashboard_login_is_a_stable_bcrypt_hash_in_a_root_only_file(render, tmp_path):
    from passlib.hash import bcrypt

    first = apply(tmp_path / "one")[1] / "secrets" / "dashboard.htpasswd"
    line = first.read_text().strip()
    password = (tmp_path / "one" / "secrets" / "traefik_dashboard_password").read_text().strip()
    user, hashed = line.split(":", 1)
    assert user == "admin" and hashed.startswith("$2y$") and bcrypt.verify(password, hashed)
    assert first.stat().st_mode & 0o777 == 0o600
    # The same password gives the same file on the next run (idempotent), and the salt is not derived from it.
    proc, again = apply(tmp_path / "one")
    assert proc.returncode == 0 and "changed=0" in proc.stdout, proc.stdout[-3000:]
    assert (again / "secrets" / "dashboard.htpasswd").read_text().strip() == line
    for path in ("compose.yaml", "config/traefik.yml", "dynamic/routes.yml"):
        assert password not in (again / path).read_text()


def test_no_dashboard_no_api(render):
    project = render(selfhosted_proxy_hosts=dict(HOSTS, dashboard=""))
    assert "api" not in static(project)
    assert "dashboard" not in routes(project)["http"]["routers"]
    assert not (project / "secrets" / "dashboard.htpasswd").exists()


# --- Bad input: fails before anything changes, naming the variable -------------------------------------

BAD = dict(TRAEFIK.bad_inputs(), **{
    "a host name with a rule in it": ({"selfhosted_proxy_hosts": dict(HOSTS, api="api.example.org`) || Host(`x")},
                                      ["selfhosted_proxy_hosts.api"]),
    "a path with a backtick": ({"traefik_api_paths": ["/rest/v1/`)"]}, ["traefik_api_paths"]),
    "a rate-limited path that is not one": ({"traefik_rate_limit_paths": ["auth/v1/"]}, ["traefik_rate_limit_paths"]),
    "a short dashboard password": ({"traefik_dashboard_password": "short-pass"}, ["traefik_dashboard_password", "at least 16"]),
})


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_before_any_change(tmp_path, case):
    TRAEFIK.check_refused(tmp_path, *BAD[case])


def test_a_backend_on_another_hosts_loopback_is_refused(tmp_path):
    TRAEFIK.check_loopback_refused(tmp_path)
