"""What the traefik and caddy render tests share: the two roles take the same collection-wide variables
(selfhosted_proxy_hosts, selfhosted_acme_*, selfhosted_admin_allow_list) and the same kinds of their own
(<role>_backend_urls, <role>_api_paths, ports), so they are rendered and refused the same way.

Each role is applied with selfhosted_start=false (files rendered on the host, nothing started) against
inventories with the stack on the proxy's host and on other hosts (db1, app1, store1, mon1: never
contacted, the contract reads their variables only).
"""

import json
import os
import subprocess
import sys

import pytest

from playbook_runner import ansible_env, resolved

ALL_IN_ONE = """
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: {python}
      minio_engine: seaweedfs
  children:
    postgres: {{hosts: {{localhost: }}}}
    object_store: {{hosts: {{localhost: }}}}
    supabase: {{hosts: {{localhost: }}}}
    monitoring: {{hosts: {{localhost: }}}}
    proxy: {{hosts: {{localhost: }}}}
"""
SPREAD = """
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: {python}
    app1: {{ansible_host: 10.0.0.21, supabase_gateway_listen_address: 10.0.0.21}}
    store1: {{ansible_host: 10.0.0.31, minio_listen_address: 10.0.0.31, minio_engine: minio, minio_console_port: 9101}}
    mon1: {{ansible_host: 10.0.0.41, monitoring_listen_address: 10.0.0.41}}
  children:
    supabase: {{hosts: {{app1: }}}}
    object_store: {{hosts: {{store1: }}}}
    monitoring: {{hosts: {{mon1: }}}}
    proxy: {{hosts: {{localhost: }}}}
"""
ONLY_SUPABASE = """
all:
  hosts:
    localhost:
      ansible_connection: local
      ansible_python_interpreter: {python}
      minio_engine: seaweedfs
  children:
    postgres: {{hosts: {{localhost: }}}}
    object_store: {{hosts: {{localhost: }}}}
    supabase: {{hosts: {{localhost: }}}}
    proxy: {{hosts: {{localhost: }}}}
"""
PLAYBOOK = """
- name: Render the proxy
  hosts: proxy
  gather_facts: false
  roles:
    - role: soulmatting.selfhosted.{role}
"""
# Every route named; the dashboard only where the role has one.
HOSTS = {"api": "api.example.org", "studio": "studio.example.org", "storage": "s3.example.org",
         "storage_console": "", "grafana": "grafana.example.org", "dashboard": ""}
# The backends of HOSTS' routes, from the same host (container names) and from other hosts (SPREAD, with
# the MinIO console switched on).
SAME_HOST_BACKENDS = {"api": "rendered-gateway:8000", "studio": "rendered-gateway:8000", "storage": "rendered-minio:8333",
                      "grafana": "rendered-grafana:3000"}
SPREAD_BACKENDS = {"api": "10.0.0.21:8000", "studio": "10.0.0.21:8000", "storage": "10.0.0.31:9000",
                   "storage_console": "10.0.0.31:9101", "grafana": "10.0.0.41:3000"}
SPREAD_HOSTS = dict(HOSTS, storage_console="console.example.org")


class Proxy:
    """One proxy role applied to scratch directories."""

    def __init__(self, role, hosts):
        self.role = role
        self.hosts = hosts

    def apply(self, base, inventory=ALL_IN_ONE, **extra):
        """Applies the role with EXTRA variables in BASE; returns (process, project directory)."""
        base.mkdir(parents=True, exist_ok=True)
        (base / "hosts.yml").write_text(inventory.format(python=sys.executable))
        (base / "render.yml").write_text(PLAYBOOK.format(role=self.role))
        variables = dict(selfhosted_start=False, selfhosted_root_dir=str(base / "root"), selfhosted_secrets_dir=str(base / "secrets"),
                         selfhosted_instance="rendered", selfhosted_proxy_hosts=self.hosts,
                         selfhosted_acme_email="ops@example.org")
        variables.update(extra)
        proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(base / "hosts.yml"),
                               str(base / "render.yml"), "-e", json.dumps(variables)],
                              env=ansible_env(), capture_output=True, text=True, check=False)
        return proc, base / "root" / self.role

    def fixture(self):
        """A module-scoped `render` fixture: render(inventory=ALL_IN_ONE, **extra) -> project directory,
        each combination applied once."""

        @pytest.fixture(scope="module", name="render")
        def render(tmp_path_factory):
            cache = {}

            def run(inventory=ALL_IN_ONE, **extra):
                key = (inventory, json.dumps(extra, sort_keys=True))
                if key not in cache:
                    proc, project = self.apply(tmp_path_factory.mktemp(self.role), inventory, **extra)
                    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
                    cache[key] = project
                return cache[key]

            return run

        return render

    def service(self, project_dir):
        """The proxy's service as Compose v2 resolves it (after `docker compose config --quiet` passed)."""
        return resolved(project_dir)["services"][self.role]

    def check_service(self, project_dir):
        """What holds for the proxy's container whatever the variables: the only service publishing on every
        interface, read-only, no capabilities but binding low ports, no Docker socket."""
        service = self.service(project_dir)
        assert service["healthcheck"]["test"] and service["deploy"]["resources"]["limits"]["memory"]
        assert service["restart"] == "unless-stopped" and service["read_only"] is True
        assert sorted((p["host_ip"], p["published"], p["target"]) for p in service["ports"]) == [("0.0.0.0", "443", 443), ("0.0.0.0", "80", 80)]
        assert all("docker.sock" not in volume.get("source", "") for volume in service["volumes"])
        assert service["cap_drop"] == ["ALL"] and service["cap_add"] == ["NET_BIND_SERVICE"]
        return service

    def bad_inputs(self):
        """Input both roles refuse in their preflight: case -> (variables, texts the failure must show)."""
        role, hosts = self.role, self.hosts
        return {
            "a host name that is not one": ({"selfhosted_proxy_hosts": dict(hosts, grafana="grafana_example")},
                                            ["selfhosted_proxy_hosts.grafana"]),
            "a host name with a space": ({"selfhosted_proxy_hosts": dict(hosts, studio="studio.example.org other.example.org")},
                                         ["selfhosted_proxy_hosts.studio"]),
            "an unknown route": ({"selfhosted_proxy_hosts": dict(hosts, admin="admin.example.org")},
                                 ["selfhosted_proxy_hosts", "unknown: admin"]),
            "two routes on one name": ({"selfhosted_proxy_hosts": dict(hosts, grafana="s3.example.org")}, ["shared: s3.example.org"]),
            "a malformed allow list": ({"selfhosted_admin_allow_list": ["10.0.0.0/8", "10.1.2.300", "office"]},
                                       ["selfhosted_admin_allow_list", "10.1.2.300, office"]),
            "an allow list network too wide": ({"selfhosted_admin_allow_list": ["10.0.0.0/33"]},
                                               ["selfhosted_admin_allow_list", "10.0.0.0/33"]),
            "an allow list that is a string": ({"selfhosted_admin_allow_list": "10.0.0.0/8 192.0.2.1"},
                                               ["selfhosted_admin_allow_list"]),
            "a rate limit of zero": ({"selfhosted_auth_rate_limit": {"average": 0, "burst": 10}}, ["selfhosted_auth_rate_limit"]),
            "a rate limit key unknown": ({"selfhosted_auth_rate_limit": {"average": 5, "burst": 10, "per": "minute"}},
                                         ["selfhosted_auth_rate_limit"]),
            "an unknown ACME CA": ({"selfhosted_acme_ca": "letsencrypt"}, ["selfhosted_acme_ca", "letsencrypt"]),
            "a CA root that is not there": ({"selfhosted_acme_ca": "https://ca.example.org/dir",
                                             "selfhosted_acme_ca_root": "/nonexistent/root.pem"},
                                            ["selfhosted_acme_ca_root", "/nonexistent/root.pem"]),
            "an unknown challenge": ({"selfhosted_acme_challenge": "dns"}, ["selfhosted_acme_challenge", "http, tls"]),
            "an unknown backend route": ({role + "_backend_urls": {"grafna": "http://10.0.0.1:3000"}},
                                         [role + "_backend_urls", "grafna"]),
            "a backend that is not a URL": ({role + "_backend_urls": {"grafana": "10.0.0.1:3000"}},
                                            [role + "_backend_urls", "10.0.0.1:3000"]),
            "a path with a space": ({role + "_api_paths": ["/rest/v1/ /x"]}, [role + "_api_paths"]),
            "the same port twice": ({role + "_http_port": 8443, role + "_https_port": 8443},
                                    [role + "_http_port", role + "_https_port"]),
            "a console for SeaweedFS": ({"selfhosted_proxy_hosts": dict(hosts, storage_console="console.example.org")},
                                        ["selfhosted_proxy_hosts.storage_console", "seaweedfs"]),
        }

    def check_refused(self, tmp_path, bad, expected, inventory=ALL_IN_ONE):
        """The role fails on BAD, saying each of EXPECTED, before the host changed (no project directory)."""
        proc, project = self.apply(tmp_path, inventory, **bad)
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, output[-3000:]
        assert "has been hidden" not in output
        for text in expected:
            assert text in output, "%r not in the failure output:\n%s" % (text, output[-3000:])
        assert not project.exists(), "the role changed the host before failing"
        return output

    def check_loopback_refused(self, tmp_path):
        """A gateway published on another host's loopback cannot be reached from the proxy's host."""
        output = self.check_refused(tmp_path, {}, ["listens on 127.0.0.1 only"],
                                    SPREAD.replace("supabase_gateway_listen_address: 10.0.0.21",
                                                   "supabase_gateway_listen_address: 127.0.0.1"))
        assert "supabase" in output
        # The same for Grafana, found through the monitoring role's endpoint.
        output = self.check_refused(tmp_path / "grafana", {}, ["listens on 127.0.0.1 only"],
                                    SPREAD.replace("monitoring_listen_address: 10.0.0.41", "monitoring_listen_address: 127.0.0.1"))
        assert "monitoring" in output

    def check_orphan_route(self, tmp_path):
        """Grafana named with no monitoring host: the run says so and leaves the route off; returns the project."""
        proc, project = self.apply(tmp_path, ONLY_SUPABASE)
        assert proc.returncode == 0, proc.stdout[-3000:]
        assert "grafana (grafana.example.org: group monitoring)" in proc.stdout
        return proc, project
