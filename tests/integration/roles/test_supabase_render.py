"""The supabase role's Compose project and gateway configuration, rendered and checked by real validators.

The role is applied with selfhosted_start=false (rendered on the host, nothing started), with both
gateways and with the optional services on and off. Compose v2 validates each project
(`docker compose config`), the test bed's real Envoy validates its configuration (`--mode validate`),
Kong's declarative configuration (Kong does not run here) is checked for the same routes and rules, and
the environment each service gets is compared with the variable names upstream's compose file sets
at the pinned release (tests/data/supabase_upstream_env.yml).
"""

import os
import subprocess
import sys

import pytest
import yaml

from playbook_runner import ansible_env, resolved

HERE = os.path.dirname(__file__)
UPSTREAM = yaml.safe_load(open(os.path.join(HERE, "..", "..", "data", "supabase_upstream_env.yml")))
ENVOY_IMAGE = "soulmatting-testbed/envoy:latest"

INVENTORY = """
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: {python}
  children:
    postgres: {{hosts: {{localhost: }}}}
    object_store: {{hosts: {{localhost: }}}}
    supabase: {{hosts: {{localhost: }}}}
"""

PLAYBOOK = """
- name: Render the Supabase project
  hosts: supabase
  gather_facts: false
  roles:
    - role: soulmatting.selfhosted.supabase
"""

# Ours for upstream's, where the names differ.
SERVICE_NAMES = {"supavisor": "pooler"}
# What the role does not set, and why. Anything else upstream sets and the role does not is a failure.
DEVIATIONS = {
    "envoy": {name: "the role renders the keys, the public URL and the dashboard's hash into the gateway's configuration "
                    "file (a secret file) instead of an entrypoint substituting them at start"
              for name in UPSTREAM["services"]["envoy"]},
    "kong": {name: "the role renders the keys and the dashboard login into kong.yml (a secret file) instead of an "
                   "entrypoint substituting them at start"
             for name in ("ANON_KEY_ASYMMETRIC", "DASHBOARD_PASSWORD", "DASHBOARD_USERNAME", "SERVICE_ROLE_KEY_ASYMMETRIC",
                          "SUPABASE_ANON_KEY", "SUPABASE_PUBLISHABLE_KEY", "SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_KEY")},
    "storage": {"FILE_STORAGE_BACKEND_PATH": "Storage keeps its objects on the stack's S3 store, not in a local directory"},
    "db": "the postgres role runs the database",
    "minio": "the minio role runs the object store",
}


@pytest.fixture(scope="module")
def render(tmp_path_factory):
    """Renders the role with EXTRA variables (cached per combination); returns the project directory."""
    cache = {}

    def run(**extra):
        key = tuple(sorted((k, str(v)) for k, v in extra.items()))
        if key in cache:
            return cache[key]
        base = tmp_path_factory.mktemp("supabase")
        (base / "hosts.yml").write_text(INVENTORY.format(python=sys.executable))
        (base / "render.yml").write_text(PLAYBOOK)
        variables = dict(selfhosted_start=False, selfhosted_root_dir=str(base / "root"), selfhosted_secrets_dir=str(base / "secrets"),
                         supabase_public_url="https://api.example.org", minio_engine="seaweedfs", **extra)
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(base / "hosts.yml"),
                               str(base / "render.yml"), "-e", yaml.safe_dump(variables, default_flow_style=True)],
                              env=ansible_env(), capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        cache[key] = base / "root" / "supabase"
        return cache[key]

    return run


COMBINATIONS = [
    {},
    {"supabase_gateway": "kong"},
    {"supabase_pooler_enabled": True, "supabase_analytics_enabled": True},
    {"supabase_gateway": "kong", "supabase_pooler_enabled": True, "supabase_analytics_enabled": True, "supabase_asymmetric_keys": True},
    {"supabase_asymmetric_keys": True, "supabase_disabled_services": ["studio", "imgproxy"]},
]


@pytest.mark.parametrize("extra", COMBINATIONS, ids=lambda extra: ",".join("%s=%s" % item for item in sorted(extra.items())) or "defaults")
def test_the_project_is_valid_compose(render, extra):
    config = resolved(render(**extra))
    expected = {"gateway", "auth", "rest", "realtime", "storage", "imgproxy", "meta", "functions", "studio"}
    if extra.get("supabase_pooler_enabled"):
        expected |= {"pooler"}
    if extra.get("supabase_analytics_enabled"):
        expected |= {"analytics", "vector"}
    expected -= set(extra.get("supabase_disabled_services", []))
    assert set(config["services"]) == expected
    for name, service in config["services"].items():
        assert service["healthcheck"]["test"], name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        assert service["restart"] == "unless-stopped" and service["logging"]["driver"] == "json-file", name
    assert config["services"]["realtime"]["container_name"].startswith("realtime-dev.")
    assert [(p["host_ip"], p["published"]) for p in config["services"]["gateway"]["ports"]] == [("127.0.0.1", "8000")]


def upstream_sets(extra):
    """Upstream's variable names per service of ours, for a combination."""
    gateway = extra.get("supabase_gateway", "envoy")
    wanted = {}
    for name, variables in UPSTREAM["services"].items():
        if name in ("envoy", "kong") and name != gateway:
            continue
        ours = "gateway" if name in ("envoy", "kong") else SERVICE_NAMES.get(name, name)
        wanted[(name, ours)] = set(variables) | set(UPSTREAM["s3_overlay"].get(name, []))
        if extra.get("supabase_analytics_enabled"):
            wanted[(name, ours)] |= set(UPSTREAM["logs_overlay"].get(name, []))
    return wanted


@pytest.mark.parametrize("extra", [COMBINATIONS[2], COMBINATIONS[3]], ids=["envoy", "kong"])
def test_every_service_gets_what_upstream_sets_or_a_stated_reason(render, extra):
    config = resolved(render(**extra))
    missing = {}
    for (name, ours), variables in sorted(upstream_sets(extra).items()):
        deviation = DEVIATIONS.get(name, {})
        if isinstance(deviation, str):
            assert ours not in config["services"], "%s: %s" % (name, deviation)
            continue
        have = set((config["services"][ours].get("environment") or {}))
        lacking = sorted(variables - have - set(deviation))
        if lacking:
            missing[name] = lacking
    assert missing == {}


def test_the_stated_deviations_are_still_real(render):
    # A deviation that no longer holds (the role now sets the variable) must be removed from the list.
    config = resolved(render(**COMBINATIONS[3]))
    kong = set(config["services"]["gateway"]["environment"])
    assert not kong & set(DEVIATIONS["kong"])
    assert "FILE_STORAGE_BACKEND_PATH" not in config["services"]["storage"]["environment"]


@pytest.mark.parametrize("extra", [COMBINATIONS[0], COMBINATIONS[4]], ids=["legacy-keys", "asymmetric-keys"])
def test_the_real_envoy_accepts_the_configuration(render, extra):
    gateway = render(**extra) / "gateway"
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", "%s:/etc/soulmatting/gateway:ro" % gateway,
                           ENVOY_IMAGE, "--mode", "validate", "-c", "/etc/soulmatting/gateway/envoy.yaml"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "configuration" in (proc.stdout + proc.stderr).lower() and "OK" in proc.stdout + proc.stderr


def test_envoy_rejects_a_broken_configuration(render, tmp_path):
    # The validation above is worth something only if Envoy refuses a bad file.
    bad = tmp_path / "gateway"
    bad.mkdir()
    text = (render() / "gateway" / "envoy.yaml").read_text().replace("STRICT_DNS", "SOMETIMES_DNS")
    (bad / "envoy.yaml").write_text(text)
    os.chmod(bad / "envoy.yaml", 0o644)
    proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", "%s:/etc/soulmatting/gateway:ro" % bad,
                           ENVOY_IMAGE, "--mode", "validate", "-c", "/etc/soulmatting/gateway/envoy.yaml"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode != 0


def kong_config(project_dir):
    return yaml.safe_load((project_dir / "gateway" / "kong.yml").read_text())


def test_kong_has_the_same_routes_and_rules(render):
    project = render(**COMBINATIONS[3])
    config = kong_config(project)
    keys = yaml.safe_load((project.parent.parent / "secrets" / "supabase_keys.json").read_text())
    services = {service["name"]: service for service in config["services"]}

    def plugins(name):
        return {plugin["name"]: plugin.get("config", {}) for plugin in services[name]["plugins"]}

    def paths(name):
        return [path for route in services[name]["routes"] for path in route.get("paths", [])]

    for open_name in ("auth-v1-open-1", "auth-v1-open-2", "auth-v1-open-3", "auth-v1-open-4"):
        assert "key-auth" not in plugins(open_name)
    for keyed in ("auth-v1", "rest-v1", "graphql-v1", "realtime-v1-ws", "realtime-v1-rest"):
        assert "key-auth" in plugins(keyed) and plugins(keyed)["acl"]["allow"] == ["admin", "anon"], keyed
    for admin in ("meta", "rest-v1-openapi"):
        assert plugins(admin)["acl"]["allow"] == ["admin"], admin
    assert paths("meta") == ["/pg/"]
    assert services["rest-v1-openapi"]["routes"][0]["expression"] == 'http.path == "/rest/v1/"'
    for blocked in ("realtime-v1-rest-openapi", "realtime-v1-rest-tenants", "mcp-blocker"):
        assert plugins(blocked)["request-termination"]["status_code"] == 403
    for passed in ("storage-v1", "functions-v1"):
        assert "key-auth" not in plugins(passed)
    assert "basic-auth" in plugins("dashboard") and paths("dashboard") == ["/"]
    assert services["realtime-v1-ws"]["url"].startswith("http://realtime-dev.")
    consumers = {consumer["username"]: consumer for consumer in config["consumers"]}
    assert {c["key"] for c in consumers["anon"]["keyauth_credentials"]} == {keys["anon_key"], keys["publishable_key"], keys["anon_key_asymmetric"]}
    assert {c["key"] for c in consumers["service_role"]["keyauth_credentials"]} == {
        keys["service_role_key"], keys["secret_key"], keys["service_role_key_asymmetric"]}
    assert consumers["anon"]["acls"] == [{"group": "anon"}] and consumers["service_role"]["acls"] == [{"group": "admin"}]
    # Opaque keys stand for their ES256 JWTs upstream's way: the bearer token the services get.
    authorization = plugins("rest-v1")["request-transformer"]["add"]["headers"][0]
    assert keys["secret_key"] in authorization and keys["service_role_key_asymmetric"] in authorization


def test_secrets_live_only_in_secret_files(render):
    project = render(**COMBINATIONS[3])
    keys = yaml.safe_load((project.parent.parent / "secrets" / "supabase_keys.json").read_text())
    compose_file = (project / "compose.yaml").read_text()
    for value in (keys["anon_key"], keys["service_role_key"], keys["jwt_secret"], keys["secret_key"]):
        assert value not in compose_file
    for path in [project / "gateway" / "kong.yml"] + sorted((project / "env").iterdir()):
        assert path.stat().st_mode & 0o077 == 0, path


def hops_in(gateway_dir):
    config = yaml.safe_load((gateway_dir / "envoy.yaml").read_text())
    manager = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return manager["xff_num_trusted_hops"]


def test_the_gateway_trusts_forwarded_headers_only_behind_the_proxy(render):
    # This inventory has no proxy group: the gateway is the edge and takes the scheme from the connection.
    assert hops_in(render() / "gateway") == 0
    assert "KONG_TRUSTED_IPS" not in resolved(render(supabase_gateway="kong"))["services"]["gateway"]["environment"]
    # Behind the proxy (as the default is where the inventory has one), its X-Forwarded-* are kept.
    assert hops_in(render(supabase_gateway_trusted_hops=1) / "gateway") == 1
    kong = resolved(render(supabase_gateway="kong", supabase_gateway_trusted_hops=1))["services"]["gateway"]["environment"]
    assert kong["KONG_TRUSTED_IPS"] == "0.0.0.0/0,::/0" and kong["KONG_REAL_IP_HEADER"] == "X-Forwarded-For"
