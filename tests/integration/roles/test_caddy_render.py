"""The caddy role's project, rendered and checked by real validators, and its input checks.

The role is applied with selfhosted_start=false (files rendered on the host, nothing started) against
inventories with the stack on the proxy's host and on other hosts (proxy_render, shared with the traefik
role's test). Compose v2 validates each project (`docker compose config`); the test bed's real Caddy
(Debian's 2.6.2) validates each rendered Caddyfile (`caddy validate`, which loads and provisions every
module) and must refuse a broken one; `caddy adapt` gives the JSON the routes are read from. Bad input
fails in the preflight, naming the variable, before anything on the host changes; a dashboard, which
Caddy lacks, is refused.
"""

import json
import shutil
import subprocess

import pytest

from roles.proxy_render import HOSTS, ONLY_SUPABASE, SAME_HOST_BACKENDS, SPREAD, SPREAD_BACKENDS, SPREAD_HOSTS, Proxy

CADDY_IMAGE = "soulmatting-testbed/caddy:latest"
CADDY = Proxy("caddy", HOSTS)
render = CADDY.fixture()


def caddyfile(project_dir):
    return (project_dir / "config" / "Caddyfile").read_text()


def caddy_validate(config_dir):
    """`caddy validate` of the rendered Caddyfile by the test bed's real Caddy, with no network."""
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", "%s:/etc/caddy:ro" % config_dir, CADDY_IMAGE,
                           "caddy", "validate", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"],
                          capture_output=True, text=True, check=False)


def caddy_json(config_dir):
    adapted = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", "%s:/etc/caddy:ro" % config_dir, CADDY_IMAGE,
                              "caddy", "adapt", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"],
                             capture_output=True, text=True, check=False)
    assert adapted.returncode == 0, adapted.stderr
    return json.loads(adapted.stdout)


def by_host(hosts, backends):
    """BACKENDS (route -> host:port) keyed as upstreams() gives them: host name -> {host:port}."""
    return {hosts[route]: {backend} for route, backend in backends.items()}


def upstreams(config):
    """Every reverse_proxy dial address in the adapted configuration, by host name matched."""
    found = {}

    def walk(node, hosts):
        if isinstance(node, dict):
            for match in node.get("match", []) if isinstance(node.get("match"), list) else []:
                hosts = match.get("host", hosts)
            if node.get("handler") == "reverse_proxy":
                for host in hosts or ["*"]:
                    found.setdefault(host, set()).update(u["dial"] for u in node["upstreams"])
            for value in node.values():
                walk(value, hosts)
        elif isinstance(node, list):
            for value in node:
                walk(value, hosts)

    walk(config, None)
    return found


# --- The project and the configuration, as Compose and Caddy read them ----------------------------------

COMBINATIONS = [
    {},
    {"selfhosted_acme_challenge": "tls", "selfhosted_admin_allow_list": ["192.0.2.0/24", "2001:db8::/32"],
     "selfhosted_acme_ca": "staging", "caddy_access_log_query": "keep"},
    {"selfhosted_proxy_hosts": {"api": "example.org", "studio": "example.org"}, "caddy_access_log": False,
     "selfhosted_admin_allow_list": ["192.0.2.10"]},
]
IDS = ["defaults", "tls-allow-list-staging", "api-and-studio-on-one-name"]


@pytest.mark.parametrize("extra", COMBINATIONS, ids=IDS)
def test_the_project_is_valid_compose(render, extra):
    CADDY.check_service(render(**extra))


@pytest.mark.parametrize("extra", COMBINATIONS, ids=IDS)
def test_the_real_caddy_validates_the_caddyfile(render, extra):
    checked = caddy_validate(render(**extra) / "config")
    assert checked.returncode == 0 and "Valid configuration" in checked.stdout + checked.stderr, checked.stderr[-3000:]


def test_caddy_refuses_a_broken_caddyfile(render, tmp_path):
    # The validation above is worth something only if Caddy refuses a bad file.
    broken = tmp_path / "config"
    shutil.copytree(render() / "config", broken)
    (broken / "Caddyfile").write_text(caddyfile(render()).replace("reverse_proxy", "reverse_proxi", 1))
    assert caddy_validate(broken).returncode != 0


def test_routes_on_the_same_host_use_container_names(render):
    assert upstreams(caddy_json(render() / "config")) == by_host(HOSTS, SAME_HOST_BACKENDS)
    text = caddyfile(render())
    assert "@api path /auth/v1/* /rest/v1/* /graphql/v1* /realtime/v1/* /storage/v1/* /functions/v1/*" in text
    networks = CADDY.service(render())["networks"]
    assert sorted(networks) == ["rendered_data", "rendered_edge"]


def test_routes_to_other_hosts_use_their_addresses(render):
    project = render(SPREAD, selfhosted_proxy_hosts=SPREAD_HOSTS)
    assert upstreams(caddy_json(project / "config")) == by_host(SPREAD_HOSTS, SPREAD_BACKENDS)
    # Nothing runs here: the proxy joins the edge network only.
    assert list(CADDY.service(project)["networks"]) == ["rendered_edge"]


def test_api_and_studio_on_one_name(render):
    text = caddyfile(render(**COMBINATIONS[2]))
    assert text.count("example.org {") == 1
    block = text.split("example.org {", 1)[1].split("\n}\n", 1)[0]
    assert "handle @api {" in block and "import admin_allow_list" in block


def test_a_route_whose_part_has_no_host_stays_off(tmp_path):
    proc, project = CADDY.check_orphan_route(tmp_path)
    assert "grafana.example.org" not in caddyfile(project)
    assert "Caddy applies no rate limit" in proc.stdout


def test_backend_urls_override_the_inventory(render):
    project = render(ONLY_SUPABASE, caddy_backend_urls={"grafana": "http://192.0.2.7:3000"})
    assert upstreams(caddy_json(project / "config"))["grafana.example.org"] == {"192.0.2.7:3000"}


def test_security_settings(render):
    config = caddy_json(render(**COMBINATIONS[1]) / "config")
    text = json.dumps(config)
    assert '"Strict-Transport-Security": ["max-age=31536000; includeSubDomains"]' in text
    assert '"X-Content-Type-Options": ["nosniff"]' in text
    policies = config["apps"]["tls"]["automation"]["policies"]
    issuers = [issuer for policy in policies for issuer in policy.get("issuers", [])]
    assert issuers and all(issuer["ca"] == "https://acme-staging-v02.api.letsencrypt.org/directory" for issuer in issuers)
    assert all(issuer["challenges"]["http"]["disabled"] is True for issuer in issuers)
    servers = config["apps"]["http"]["servers"]
    assert any(server.get("listen") == [":8082"] for server in servers.values())
    routes = json.dumps([server["routes"] for server in servers.values()])
    assert '"remote_ip": {"ranges": ["192.0.2.0/24", "2001:db8::/32"]}' in routes
    main = [server for server in servers.values() if server.get("listen") == [":443"]][0]
    assert main["protocols"] == ["h1", "h2"]
    defaults = caddy_json(render() / "config")
    issuers = [issuer for policy in defaults["apps"]["tls"]["automation"]["policies"] for issuer in policy.get("issuers", [])]
    assert all(issuer["ca"] == "https://acme-v02.api.letsencrypt.org/directory" and issuer["challenges"]["tls-alpn"]["disabled"] is True
               for issuer in issuers)


def test_the_access_log_drops_query_strings_and_headers(render):
    text = caddyfile(render())
    assert "request>headers delete" in text and 'request>uri regexp "\\?.*$" ""' in text
    assert 'request>uri regexp' not in caddyfile(render(**COMBINATIONS[1]))


# --- Bad input: fails before anything changes, naming the variable -------------------------------------

BAD = dict(CADDY.bad_inputs(), **{
    "a dashboard, which Caddy lacks": ({"selfhosted_proxy_hosts": dict(HOSTS, dashboard="caddy.example.org")},
                                       ["selfhosted_proxy_hosts.dashboard", "Caddy has no dashboard"]),
    "a host name with a directive in it": ({"selfhosted_proxy_hosts": dict(HOSTS, api="api.example.org {\n respond 200")},
                                           ["selfhosted_proxy_hosts.api"]),
    "a path with a brace": ({"caddy_api_paths": ["/rest/v1/}"]}, ["caddy_api_paths"]),
})


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_before_any_change(tmp_path, case):
    CADDY.check_refused(tmp_path, *BAD[case])


def test_a_backend_on_another_hosts_loopback_is_refused(tmp_path):
    CADDY.check_loopback_refused(tmp_path)
