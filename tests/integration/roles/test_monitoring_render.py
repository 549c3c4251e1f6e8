"""The monitoring role's projects and configuration, rendered and checked by real validators.

The role's two entry points (main on the monitoring host, exporters on every host) are applied with
selfhosted_start=false: the projects are written on the host, nothing is started. Then:

- Compose v2 validates both projects with every service enabled (`docker compose config`), and the
  stack's policies, published addresses and secret files are checked;
- the test bed's promtool and amtool (Debian's Prometheus 2.42 and Alertmanager 0.25) check the
  Prometheus configuration, the alert rules and the Alertmanager configuration;
- Grafana, Loki and the log shipper (Grafana Alloy) cannot run here, so their configuration is checked
  structurally: the data sources the dashboards name exist, every PromQL query of every dashboard
  parses (promtool, as recording rules), every LogQL stream selector uses labels the shipper sets,
  Loki's configuration holds what Loki 3 requires, and the Alloy file is parsed by a small parser of
  its syntax below, its components known and its references resolved;
- a two-host inventory renders the scrape targets and the published addresses of a remote host;
- bad input stops the role before anything is written, with a message naming the variable.
"""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from playbook_runner import ansible_env

PROMETHEUS_IMAGE = "soulmatting-testbed/prometheus:latest"
ALERTMANAGER_IMAGE = "soulmatting-testbed/alertmanager:latest"
ALL_IN_ONE_GROUPS = ("soulmatting", "postgres", "redis", "object_store", "supabase", "proxy", "backup", "monitoring")

EXPORTERS_PLAY = """
- name: Exporters on every host of the stack
  hosts: soulmatting
  gather_facts: false
  tasks:
    - name: Apply the exporters entry point
      ansible.builtin.include_role:
        name: soulmatting.selfhosted.monitoring
        tasks_from: exporters
"""
MAIN_PLAY = """
- name: Monitoring on the monitoring host
  hosts: monitoring
  gather_facts: false
  roles:
    - role: soulmatting.selfhosted.monitoring
"""
PLAYBOOK = EXPORTERS_PLAY + MAIN_PLAY

RECEIVERS = {
    "monitoring_alertmanager_email_to": ["oncall@example.org"],
    "monitoring_alertmanager_email_from": "alertmanager@example.org",
    "monitoring_alertmanager_smtp_smarthost": "smtp.example.org:587",
    "monitoring_alertmanager_smtp_auth_username": "alertmanager",
    "monitoring_alertmanager_smtp_auth_password": "render-smtp-password-0001",
    "monitoring_alertmanager_webhooks": [{"name": "chat", "url": "https://hooks.example.org/T0/secret-token-0001"}],
}


def inventory(hosts, groups):
    """An inventory: HOSTS maps a name to its host variables, GROUPS a group to its hosts."""
    python = sys.executable
    data = {"all": {"hosts": {}, "children": {}}}
    for name, variables in hosts.items():
        data["all"]["hosts"][name] = dict(ansible_connection="local", ansible_python_interpreter=python, **variables)
    for group, members in groups.items():
        data["all"]["children"][group] = {"hosts": {member: None for member in members}}
    return yaml.safe_dump(data)


def apply(base, hosts, groups, extra, limit=None, plays=PLAYBOOK, options=()):
    """Applies the role's entry points to an inventory in BASE (OPTIONS: more ansible-playbook options); returns
    the CompletedProcess."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "hosts.yml").write_text(inventory(hosts, groups))
    (base / "render.yml").write_text(plays)
    variables = dict(selfhosted_start=False, selfhosted_secrets_dir=str(base / "secrets"), **extra)
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(base / "hosts.yml"),
               str(base / "render.yml"), "-e", json.dumps(variables)]
    if limit:
        command += ["--limit", limit]
    command += list(options)
    return subprocess.run(command, env=ansible_env(), capture_output=True, text=True, check=False)


def render_all_in_one(base, **extra):
    """Every part of the stack on one host, every monitoring service enabled; returns the root directory."""
    root = base / "root"
    host = {"selfhosted_root_dir": str(root), "selfhosted_metrics_dir": str(base / "metrics")}
    variables = dict(supabase_public_url="https://api.example.org", minio_engine="minio", **RECEIVERS)
    variables.update(extra)
    proc = apply(base, {"localhost": host}, {group: ["localhost"] for group in ALL_IN_ONE_GROUPS}, variables)
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    return root


EXTRA_JOB = {"job_name": "my-app", "static_configs": [{"targets": ["app.example.internal:8080"]}]}
EXTRA_RULE = {"alert": "MyAppDown", "expr": 'up{job="my-app"} == 0', "for": "5m", "labels": {"severity": "critical"}}
EXTRA_RULES = {"name": "my-app", "rules": [EXTRA_RULE]}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return render_all_in_one(tmp_path_factory.mktemp("monitoring"), monitoring_prometheus_extra_scrape_configs=[EXTRA_JOB],
                             monitoring_alert_extra_rule_groups=[EXTRA_RULES])


@pytest.fixture(scope="module")
def two_hosts(tmp_path_factory):
    """`mon` runs the monitoring services and the proxy, `db1` (10.0.0.11) the data layer and Supabase."""
    base = tmp_path_factory.mktemp("two-hosts")
    hosts = {
        "mon": {"selfhosted_root_dir": str(base / "mon"), "selfhosted_metrics_dir": str(base / "mon-metrics"),
                "monitoring_listen_address": "10.0.0.5"},
        "db1": {"selfhosted_root_dir": str(base / "db1"), "selfhosted_metrics_dir": str(base / "db1-metrics"),
                "ansible_host": "10.0.0.11", "monitoring_exporters_listen_address": "10.0.0.11",
                "minio_listen_address": "10.0.0.11", "postgres_listen_address": "10.0.0.11"},
    }
    groups = {"soulmatting": ["mon", "db1"], "monitoring": ["mon"], "proxy": ["mon"], "postgres": ["db1"], "redis": ["db1"],
              "object_store": ["db1"], "supabase": ["db1"]}
    proc = apply(base, hosts, groups, {"minio_engine": "minio", "supabase_public_url": "https://api.example.org"})
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    return base, proc.stdout


def compose_config(project_dir):
    docker = shutil.which("docker")
    command = [docker, "compose", "--project-directory", str(project_dir)]
    checked = subprocess.run(command + ["config", "--quiet"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    return json.loads(subprocess.run(command + ["config", "--format", "json"], capture_output=True, text=True, check=True).stdout)


def in_image(image, entrypoint, mounts, *args):
    """Runs a tool of a test-bed image on mounted files (as root: the scratch directories are root-only)."""
    command = ["docker", "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", entrypoint]
    for source, target in mounts.items():
        command += ["-v", "%s:%s:ro" % (source, target)]
    return subprocess.run(command + [image] + list(args), capture_output=True, text=True, check=False)


# ------------------------------------------------------------------------------------------------ Compose

def test_monitoring_project_is_valid_compose_with_the_stack_policies(root):
    config = compose_config(root / "monitoring")
    assert set(config["services"]) == {"prometheus", "alertmanager", "grafana", "loki", "blackbox-exporter"}
    for name, service in config["services"].items():
        assert service["healthcheck"]["test"], name
        limits = service["deploy"]["resources"]["limits"]
        assert limits["memory"] and float(limits["cpus"]) > 0, name
        assert service["restart"] == "unless-stopped" and service["logging"]["driver"] == "json-file", name
        assert service["image"].split("/")[0] in ("prom", "grafana"), name
    published = {name: sorted((p["host_ip"], p["published"], p["target"]) for p in service.get("ports", []))
                 for name, service in config["services"].items()}
    assert published == {
        "prometheus": [("127.0.0.1", "9090", 9090)], "alertmanager": [("127.0.0.1", "9093", 9093)],
        "grafana": [("127.0.0.1", "3000", 3000)], "loki": [("127.0.0.1", "3100", 3100)], "blackbox-exporter": [],
    }
    assert sorted(config["services"]["prometheus"]["networks"]) == ["data", "edge", "metrics", "monitoring"]
    assert sorted(config["services"]["grafana"]["networks"]) == ["edge", "monitoring"]
    assert {config["networks"][n]["name"] for n in config["networks"]} == {
        "soulmatting_monitoring", "soulmatting_metrics", "soulmatting_data", "soulmatting_edge"}
    prometheus = config["services"]["prometheus"]["command"]
    assert "--storage.tsdb.retention.time=15d" in prometheus and "--storage.tsdb.retention.size=10GB" in prometheus


def test_exporters_project_is_valid_compose_and_publishes_nothing_next_to_prometheus(root):
    config = compose_config(root / "exporters")
    assert set(config["services"]) == {"node-exporter", "cadvisor", "postgres-exporter", "redis-exporter", "log-shipper"}
    for name, service in config["services"].items():
        assert service["healthcheck"]["test"], name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        # Prometheus runs on this host and reaches them by name: no port is published.
        assert not service.get("ports"), name
        assert "metrics" in service["networks"], name
    assert sorted(config["services"]["postgres-exporter"]["networks"]) == ["data", "metrics"]
    assert sorted(config["services"]["node-exporter"]["networks"]) == ["metrics"]
    node = config["services"]["node-exporter"]
    assert {(v["source"], v["target"], v.get("read_only")) for v in node["volumes"]} >= {
        ("/", "/host", True), (str(root.parent / "metrics"), "/textfile", True)}
    assert "--collector.textfile.directory=/textfile" in node["command"]
    assert (root.parent / "metrics").is_dir()


def test_secrets_are_only_in_secret_files(root):
    secrets = root.parent / "secrets"
    values = [(secrets / name).read_text().strip() for name in ("postgres_password", "redis_password", "monitoring_grafana_admin_password")]
    values.append(RECEIVERS["monitoring_alertmanager_smtp_auth_password"])
    values.append(RECEIVERS["monitoring_alertmanager_webhooks"][0]["url"])
    public = [path for project in ("monitoring", "exporters") for path in (root / project).rglob("*") if path.is_file()
              and path.stat().st_mode & 0o077]
    assert public, "no world-readable file at all: the check below would prove nothing"
    for path in public:
        text = path.read_text()
        assert not [value for value in values if value in text], path
    expected = {
        root / "monitoring" / "alertmanager" / "alertmanager.yml": 65534,
        root / "monitoring" / "grafana" / "secrets" / "admin_password": 472,
        root / "exporters" / "env" / "postgres-exporter.env": 0,
        root / "exporters" / "env" / "redis-exporter.env": 0,
    }
    for path, owner in expected.items():
        assert path.stat().st_mode & 0o777 == 0o600 and path.stat().st_uid == owner, path
    env = (root / "exporters" / "env" / "postgres-exporter.env").read_text()
    assert "DATA_SOURCE_PASS='%s'" % values[0] in env and "DATA_SOURCE_URI='soulmatting-postgres:5432/postgres?sslmode=disable'" in env
    assert "REDIS_PASSWORD='%s'" % values[1] in (root / "exporters" / "env" / "redis-exporter.env").read_text()
    assert (root / "monitoring" / "grafana" / "secrets" / "admin_password").read_text() == values[2]


# ----------------------------------------------------------------------------------------- Prometheus

def prometheus_config(root):
    return yaml.safe_load((root / "monitoring" / "prometheus" / "prometheus.yml").read_text())


def jobs(config):
    return {job["job_name"]: job for job in config["scrape_configs"]}


def targets(job):
    return [(target, static["labels"]["host"]) for static in job["static_configs"] for target in static["targets"]]


def test_promtool_accepts_the_configuration_and_the_rules(root):
    proc = in_image(PROMETHEUS_IMAGE, "promtool", {root / "monitoring" / "prometheus": "/etc/prometheus"},
                    "check", "config", "/etc/prometheus/prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 1 rule files found" in proc.stdout
    proc = in_image(PROMETHEUS_IMAGE, "promtool", {root / "monitoring" / "prometheus": "/etc/prometheus"},
                    "check", "rules", "/etc/prometheus/rules/soulmatting.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The role's 19 alerts and the one of monitoring_alert_extra_rule_groups.
    assert "SUCCESS: 20 rules found" in proc.stdout


def test_promtool_rejects_a_broken_rule(root, tmp_path):
    # The check above is worth something only if promtool refuses a bad expression.
    bad = tmp_path / "rules"
    bad.mkdir()
    text = (root / "monitoring" / "prometheus" / "rules" / "soulmatting.yml").read_text()
    (bad / "bad.yml").write_text(text.replace("expr: pg_up == 0", "expr: pg_up === 0"))
    proc = in_image(PROMETHEUS_IMAGE, "promtool", {bad: "/rules"}, "check", "rules", "/rules/bad.yml")
    assert proc.returncode != 0


def test_every_part_of_the_stack_is_scraped_by_name_on_one_host(root):
    scrape = jobs(prometheus_config(root))
    expected = {
        "prometheus": "localhost:9090", "alertmanager": "soulmatting-alertmanager:9093", "loki": "soulmatting-loki:3100",
        "grafana": "soulmatting-grafana:3000", "node": "soulmatting-node-exporter:9100", "cadvisor": "soulmatting-cadvisor:8080",
        "log-shipper": "soulmatting-log-shipper:12345", "postgres": "soulmatting-postgres-exporter:9187",
        "redis": "soulmatting-redis-exporter:9121", "gateway": "soulmatting-gateway:9902",
        "traefik": "soulmatting-traefik:8082",
    }
    assert {name: job["static_configs"][0]["targets"][0] for name, job in scrape.items() if name not in ("blackbox", "my-app")} == expected
    assert scrape["my-app"] == EXTRA_JOB
    # The object store's endpoint names no metrics path yet (MinIO needs a token or public metrics, SeaweedFS a
    # metrics port): not scraped rather than down.
    assert "object-store" not in scrape
    assert scrape["gateway"]["metrics_path"] == "/metrics"
    assert all(host == "localhost" for name, job in scrape.items() if name != "my-app" for _target, host in targets(job))
    probes = scrape["blackbox"]
    assert targets(probes) == [("https://api.example.org/auth/v1/.well-known/jwks.json", "localhost")]
    assert probes["relabel_configs"][-1]["replacement"] == "soulmatting-blackbox-exporter:9115"


def test_a_run_with_only_the_deploy_tag_renders_the_targets(tmp_path):
    # The scrape targets are facts worked out in every run, not only when the preflight checks run.
    host = {"selfhosted_root_dir": str(tmp_path / "root"), "selfhosted_metrics_dir": str(tmp_path / "metrics")}
    groups = {group: ["localhost"] for group in ("soulmatting", "postgres", "redis", "monitoring")}
    proc = apply(tmp_path, {"localhost": host}, groups, {}, plays=MAIN_PLAY, options=["--tags", "deploy"])
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Check the addresses and ports" not in proc.stdout
    scrape = jobs(prometheus_config(tmp_path / "root"))
    assert targets(scrape["postgres"]) == [("soulmatting-postgres-exporter:9187", "localhost")]
    assert targets(scrape["node"]) == [("soulmatting-node-exporter:9100", "localhost")]


ENDPOINT_PLAY = """
- name: Ask the contract where Grafana is
  hosts: soulmatting
  gather_facts: false
  tasks:
    - name: Write the answer
      ansible.builtin.copy:
        content: "{{ lookup('soulmatting.selfhosted.endpoint', 'monitoring') | to_json }}"
        dest: "{{ answers }}/{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
"""


def test_the_proxy_finds_grafana_through_the_contract(tmp_path):
    # The monitoring role provides the `monitoring` endpoint: Grafana by name on the edge network from its own
    # host, at its published private address and port from another.
    hosts = {"mon": {"monitoring_listen_address": "10.0.0.5", "monitoring_grafana_port": 3300},
             "edge": {"ansible_host": "10.0.0.6"}}
    answers = tmp_path / "answers"
    answers.mkdir()
    proc = apply(tmp_path, hosts, {"soulmatting": ["mon", "edge"], "monitoring": ["mon"], "proxy": ["edge"]},
                 {"answers": str(answers)}, plays=ENDPOINT_PLAY)
    assert proc.returncode == 0, proc.stdout[-3000:]
    same = json.loads((answers / "mon.json").read_text())
    remote = json.loads((answers / "edge.json").read_text())
    assert (same["url"], same["network"], same["same_host"]) == ("http://soulmatting-grafana:3000", "soulmatting_edge", True)
    assert (remote["url"], remote["network"], remote["same_host"]) == ("http://10.0.0.5:3300", None, False)
    assert remote["secrets"] == {"grafana_admin_password": "monitoring_grafana_admin_password"}


def test_without_a_monitoring_host_the_exporters_entry_point_deploys_nothing(tmp_path):
    # A site playbook applies it to every host of the stack; with nobody to scrape them, no exporter runs.
    host = {"selfhosted_root_dir": str(tmp_path / "root"), "selfhosted_metrics_dir": str(tmp_path / "metrics")}
    proc = apply(tmp_path, {"localhost": host}, {group: ["localhost"] for group in ("soulmatting", "postgres", "redis")}, {},
                 plays=EXPORTERS_PLAY)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Converge the exporters project" in proc.stdout and not (tmp_path / "root").exists()
    assert not (tmp_path / "secrets").exists(), "the exporters looked up the database passwords anyway"


def test_a_caddy_proxy_is_scraped_as_caddy(tmp_path):
    host = {"selfhosted_root_dir": str(tmp_path / "root"), "selfhosted_metrics_dir": str(tmp_path / "metrics")}
    groups = {group: ["localhost"] for group in ("soulmatting", "proxy", "monitoring")}
    proc = apply(tmp_path, {"localhost": host}, groups, {"monitoring_proxy": "caddy", "monitoring_proxy_metrics_port": 9180},
                 plays=MAIN_PLAY)
    assert proc.returncode == 0, proc.stdout[-3000:]
    scrape = jobs(prometheus_config(tmp_path / "root"))
    assert "traefik" not in scrape and targets(scrape["caddy"]) == [("soulmatting-caddy:9180", "localhost")]


def test_parts_switched_off_or_absent_are_not_scraped(tmp_path):
    root = render_all_in_one(tmp_path, monitoring_proxy="none", monitoring_cadvisor_enabled=False,
                             monitoring_grafana_enabled=False, monitoring_loki_enabled=False, monitoring_blackbox_enabled=False)
    assert set(jobs(prometheus_config(root))) == {"prometheus", "alertmanager", "node", "postgres", "redis", "gateway"}
    assert set(compose_config(root / "monitoring")["services"]) == {"prometheus", "alertmanager"}
    # Without Loki there is nothing to ship logs to.
    assert set(compose_config(root / "exporters")["services"]) == {"node-exporter", "postgres-exporter", "redis-exporter"}
    assert not (root / "monitoring" / "grafana").exists()


def test_two_hosts_scrape_the_remote_exporters_at_their_private_address(two_hosts):
    base, output = two_hosts
    scrape = jobs(yaml.safe_load((base / "mon" / "monitoring" / "prometheus" / "prometheus.yml").read_text()))
    assert sorted(targets(scrape["node"])) == [("10.0.0.11:9100", "db1"), ("soulmatting-node-exporter:9100", "mon")]
    assert targets(scrape["postgres"]) == [("10.0.0.11:9187", "db1")]
    assert targets(scrape["redis"]) == [("10.0.0.11:9121", "db1")]
    assert "object-store" not in scrape and "exposes no metrics the stack configures" in output
    assert targets(scrape["traefik"]) == [("soulmatting-traefik:8082", "mon")]
    # The gateway on db1 publishes no metrics port: not scraped, and the run says so.
    assert "gateway" not in scrape and "publishes no metrics port to other hosts" in output
    # Its public URL is still probed, as db1's inventory gives it.
    assert targets(scrape["blackbox"]) == [("https://api.example.org/auth/v1/.well-known/jwks.json", "mon")]


def test_two_hosts_remote_exporters_publish_on_the_private_address_only(two_hosts):
    base, _output = two_hosts
    remote = compose_config(base / "db1" / "exporters")
    assert set(remote["services"]) == {"node-exporter", "cadvisor", "postgres-exporter", "redis-exporter", "log-shipper"}
    published = {name: [(p["host_ip"], p["published"]) for p in service["ports"]] for name, service in remote["services"].items()}
    assert published == {"node-exporter": [("10.0.0.11", "9100")], "cadvisor": [("10.0.0.11", "8080")],
                         "postgres-exporter": [("10.0.0.11", "9187")], "redis-exporter": [("10.0.0.11", "9121")],
                         "log-shipper": [("10.0.0.11", "12345")]}
    local = compose_config(base / "mon" / "exporters")
    assert set(local["services"]) == {"node-exporter", "cadvisor", "log-shipper"}
    assert not [service for service in local["services"].values() if service.get("ports")]
    # db1's shipper pushes to Loki at the monitoring host's private address; mon's by name.
    assert 'url = "http://10.0.0.5:3100/loki/api/v1/push"' in (base / "db1" / "exporters" / "log-shipper" / "config.alloy").read_text()
    assert 'url = "http://soulmatting-loki:3100/loki/api/v1/push"' in (base / "mon" / "exporters" / "log-shipper" / "config.alloy").read_text()


# ------------------------------------------------------------------------------------------- Alertmanager

def test_amtool_accepts_the_alertmanager_configuration(root):
    proc = in_image(ALERTMANAGER_IMAGE, "amtool", {root / "monitoring" / "alertmanager": "/etc/alertmanager"},
                    "check-config", "/etc/alertmanager/alertmanager.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "7 inhibit rules" in proc.stdout and "1 receivers" in proc.stdout


def test_receivers_and_grouping_come_from_the_variables(root):
    config = yaml.safe_load((root / "monitoring" / "alertmanager" / "alertmanager.yml").read_text())
    receiver = config["receivers"][0]
    assert receiver["email_configs"] == [{"to": "oncall@example.org", "send_resolved": True}]
    assert receiver["webhook_configs"] == [{"url": RECEIVERS["monitoring_alertmanager_webhooks"][0]["url"], "send_resolved": True}]
    assert config["global"]["smtp_smarthost"] == "smtp.example.org:587" and config["global"]["smtp_require_tls"] is True
    assert config["route"]["group_by"] == ["alertname", "host"] and config["route"]["receiver"] == receiver["name"]
    sources = [rule["source_matchers"][0] for rule in config["inhibit_rules"]]
    assert 'alertname="HostDown"' in sources and 'alertname="PostgresDown"' in sources


def test_amtool_routes_every_alert_to_the_receiver(root):
    proc = in_image(ALERTMANAGER_IMAGE, "amtool", {root / "monitoring" / "alertmanager": "/etc/alertmanager"},
                    "config", "routes", "test", "--config.file=/etc/alertmanager/alertmanager.yml", "alertname=PostgresDown", "host=db1")
    assert proc.returncode == 0 and proc.stdout.strip() == "soulmatting", proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------------ Grafana

def grafana_datasources(root):
    return yaml.safe_load((root / "monitoring" / "grafana" / "provisioning" / "datasources" / "soulmatting.yml").read_text())


def dashboards(root):
    folder = root / "monitoring" / "grafana" / "dashboards"
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


def panels(board):
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(board):
    """(where, datasource uid, expression) of every query of a dashboard: panels, variables, annotations."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
            yield "%s / %s / %s" % (board["uid"], panel["title"], target["refId"]), uid, target["expr"]
    for variable in board["templating"]["list"]:
        match = re.match(r"^label_values\((.*), *(\w+)\)$", variable["query"]["query"])
        assert match, variable
        yield "%s / variable %s" % (board["uid"], variable["name"]), variable["datasource"]["uid"], match.group(1)
    for annotation in board["annotations"]["list"]:
        yield "%s / annotation %s" % (board["uid"], annotation["name"]), annotation["datasource"]["uid"], annotation["expr"]


def as_promql(expr):
    """Grafana's variables replaced by what they stand for, so that promtool can parse the query."""
    return expr.replace("$__rate_interval", "5m").replace("$__interval", "1m").replace("$__range", "1h").replace("$host", ".+")


def test_grafana_data_sources_point_at_the_services(root):
    sources = {source["uid"]: source for source in grafana_datasources(root)["datasources"]}
    assert {uid: (s["type"], s["url"]) for uid, s in sources.items()} == {
        "prometheus": ("prometheus", "http://soulmatting-prometheus:9090"), "loki": ("loki", "http://soulmatting-loki:3100"),
        "alertmanager": ("alertmanager", "http://soulmatting-alertmanager:9093")}
    assert [uid for uid, source in sources.items() if source.get("isDefault")] == ["prometheus"]
    provider = yaml.safe_load((root / "monitoring" / "grafana" / "provisioning" / "dashboards" / "soulmatting.yml").read_text())
    grafana = compose_config(root / "monitoring")["services"]["grafana"]
    mounts = {v["target"]: v["source"] for v in grafana["volumes"]}
    assert mounts[provider["providers"][0]["options"]["path"]] == str(root / "monitoring" / "grafana" / "dashboards")
    assert mounts["/etc/grafana/provisioning"] == str(root / "monitoring" / "grafana" / "provisioning")
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith(tuple(t for t in mounts if t.startswith("/run/")))


def test_the_dashboards_are_there_with_data_sources_that_exist(root):
    boards = dashboards(root)
    assert set(boards) == {"overview", "host", "postgres", "redis", "proxy"}
    assert len({board["uid"] for board in boards.values()}) == 5
    uids = {source["uid"] for source in grafana_datasources(root)["datasources"]}
    for board in boards.values():
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), board["uid"]
        for panel in panels(board):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] in uids and panel["targets"], (board["uid"], panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == panel["datasource"], (board["uid"], panel["title"])
        for where, uid, _expr in queries(board):
            assert uid in uids, where


def test_every_promql_query_of_the_dashboards_parses(root, tmp_path):
    exprs = [(where, as_promql(expr)) for board in dashboards(root).values() for where, uid, expr in queries(board) if uid == "prometheus"]
    assert len(exprs) > 60
    rules = {"groups": [{"name": "dashboards", "rules": [{"record": "dashboard:query_%d" % index, "expr": expr}
                                                         for index, (_where, expr) in enumerate(exprs)]}]}
    (tmp_path / "dashboards.yml").write_text(yaml.safe_dump(rules))
    proc = in_image(PROMETHEUS_IMAGE, "promtool", {tmp_path: "/check"}, "check", "rules", "/check/dashboards.yml")
    assert proc.returncode == 0, "\n".join([proc.stdout, proc.stderr] + ["%d: %s" % (i, w) for i, (w, _e) in enumerate(exprs)])
    assert "SUCCESS: %d rules found" % len(exprs) in proc.stdout


# The labels the log shipper gives every stream (templates/exporters/config.alloy.j2).
SHIPPED_LABELS = {"host", "service", "container", "project", "stream"}
LOGQL = re.compile(r'^\{(?P<matchers>[^{}]+)\}(?P<pipeline>( \|[=~] "[^"]*")*)$')
MATCHER = re.compile(r'^\s*(\w+)\s*(=|!=|=~|!~)\s*"([^"]*)"\s*$')


def test_every_logql_query_selects_labels_the_shipper_sets(root):
    seen = 0
    for board in dashboards(root).values():
        for where, uid, expr in queries(board):
            if uid != "loki":
                continue
            seen += 1
            # $host stands for the hosts chosen, `.+` for all of them.
            match = LOGQL.match(expr.replace("$host", ".+"))
            assert match, where
            labels = [MATCHER.match(part) for part in match.group("matchers").split(",")]
            assert all(labels), where
            assert {label.group(1) for label in labels} <= SHIPPED_LABELS, where
            # Loki refuses a selector whose every matcher matches the empty value.
            assert [label for label in labels if label.group(2) == "=" and label.group(3)
                    or label.group(2) == "=~" and not re.fullmatch(label.group(3), "")], where
    assert seen == 4


# ---------------------------------------------------------------------------------------------------- Loki

def test_loki_configuration_holds_what_loki_3_requires(root):
    config = yaml.safe_load((root / "monitoring" / "loki" / "loki.yaml").read_text())
    known = {"auth_enabled", "server", "common", "schema_config", "limits_config", "compactor", "ruler", "analytics"}
    assert set(config) <= known
    assert config["auth_enabled"] is False
    schema = config["schema_config"]["configs"][-1]
    # Structured metadata (on by default in Loki 3) needs the tsdb store and schema v13.
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", "filesystem")
    assert config["limits_config"]["allow_structured_metadata"] is True
    # Retention is applied by the compactor, which then needs a store for delete requests.
    assert config["compactor"]["retention_enabled"] is True and config["compactor"]["delete_request_store"] == "filesystem"
    assert config["limits_config"]["retention_period"] == "744h"
    loki = compose_config(root / "monitoring")["services"]["loki"]
    mounts = {v["target"]: v["source"] for v in loki["volumes"]}
    assert config["common"]["path_prefix"] == "/loki" and mounts["/loki"] == str(root / "monitoring" / "data" / "loki")
    assert loki["command"] == ["-config.file=/etc/loki/loki.yaml"] and mounts["/etc/loki"] == str(root / "monitoring" / "loki")
    assert config["server"]["http_listen_port"] == loki["ports"][0]["target"] == 3100
    assert str((root / "monitoring" / "data" / "loki").stat().st_uid) == loki["user"].split(":")[0] == "10001"


# ------------------------------------------------------------------------------------ the log shipper (Alloy)

ALLOY_TOKEN = re.compile(r'\s+|//[^\n]*|/\*.*?\*/|(?P<string>"(?:[^"\\]|\\.)*")|(?P<number>\d+(?:\.\d+)?)|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)'
                         r'|(?P<punct>[{}\[\](),=.])', re.S)
# The components the shipper uses: their arguments, blocks and exports (from Alloy's reference).
ALLOY_COMPONENTS = {
    "discovery.docker": ({"host", "refresh_interval", "port", "host_networking_host"}, {"filter"}, {"targets"}),
    "discovery.relabel": ({"targets"}, {"rule"}, {"output", "rules"}),
    "loki.source.docker": ({"host", "targets", "forward_to", "labels", "relabel_rules", "refresh_interval"}, set(), set()),
    "loki.write": ({"external_labels", "max_streams"}, {"endpoint"}, {"receiver"}),
}
ALLOY_BLOCKS = {
    "rule": {"source_labels", "separator", "regex", "modulus", "target_label", "replacement", "action"},
    "endpoint": {"url", "name", "batch_wait", "batch_size", "headers", "tenant_id"},
}


def alloy_tokens(text):
    position, tokens = 0, []
    while position < len(text):
        match = ALLOY_TOKEN.match(text, position)
        assert match, "cannot read the Alloy file at: %r" % text[position:position + 40]
        position = match.end()
        for kind in ("string", "number", "ident", "punct"):
            if match.group(kind) is not None:
                tokens.append((kind, match.group(kind)))
    return tokens


class AlloyParser:
    """Alloy's syntax: blocks (`name.parts "label" { ... }`) holding attributes (`name = expression`) and blocks;
    expressions are literals, lists, objects and references (`a.b.c`)."""

    def __init__(self, text):
        self.tokens, self.index = alloy_tokens(text), 0

    def peek(self, offset=0):
        return self.tokens[self.index + offset] if self.index + offset < len(self.tokens) else (None, None)

    def take(self, kind=None, value=None):
        token = self.peek()
        assert token[0] is not None and (kind is None or token[0] == kind) and (value is None or token[1] == value), \
            "expected %s %s, got %r" % (kind, value, token)
        self.index += 1
        return token[1]

    def body(self, end):
        attributes, blocks = {}, []
        while self.peek()[1] != end:
            name = [self.take("ident")]
            if self.peek()[1] == "=":
                self.take("punct", "=")
                assert name[0] not in attributes, "attribute %s twice" % name[0]
                attributes[name[0]] = self.expression()
                continue
            while self.peek()[1] == ".":
                self.take("punct", ".")
                name.append(self.take("ident"))
            label = json.loads(self.take("string")) if self.peek()[0] == "string" else None
            self.take("punct", "{")
            inner_attributes, inner_blocks = self.body("}")
            self.take("punct", "}")
            blocks.append({"name": ".".join(name), "label": label, "attributes": inner_attributes, "blocks": inner_blocks})
        return attributes, blocks

    def expression(self):
        kind, value = self.peek()
        if kind == "string":
            return json.loads(self.take())
        if kind == "number":
            return float(self.take())
        if value == "[":
            self.take()
            items = []
            while self.peek()[1] != "]":
                items.append(self.expression())
                if self.peek()[1] == ",":
                    self.take()
            self.take("punct", "]")
            return items
        if value == "{":
            self.take()
            items = {}
            while self.peek()[1] != "}":
                key = self.take()
                self.take("punct", "=")
                items[json.loads(key) if key.startswith('"') else key] = self.expression()
                if self.peek()[1] == ",":
                    self.take()
            self.take("punct", "}")
            return items
        parts = [self.take("ident")]
        if parts[0] in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[parts[0]]
        while self.peek()[1] == ".":
            self.take()
            parts.append(self.take("ident"))
        return {"ref": parts}

    def parse(self):
        attributes, blocks = self.body(None)
        assert not attributes, "attributes outside a block: %s" % sorted(attributes)
        return blocks


def references(value):
    if isinstance(value, dict):
        if "ref" in value:
            yield value["ref"]
        else:
            for item in value.values():
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def check_alloy(text):
    """The components of an Alloy file, checked: known, well-formed, every reference resolved."""
    components = {}
    for block in AlloyParser(text).parse():
        assert block["name"] in ALLOY_COMPONENTS, "unknown component %s" % block["name"]
        assert block["label"], "%s has no label" % block["name"]
        arguments, inner, _exports = ALLOY_COMPONENTS[block["name"]]
        assert set(block["attributes"]) <= arguments, (block["name"], set(block["attributes"]) - arguments)
        for child in block["blocks"]:
            assert child["name"] in inner and set(child["attributes"]) <= ALLOY_BLOCKS[child["name"]], (block["name"], child)
        key = "%s.%s" % (block["name"], block["label"])
        assert key not in components, "%s twice" % key
        components[key] = block
    for block in components.values():
        for ref in references(block["attributes"]):
            target, export = ".".join(ref[:-1]), ref[-1]
            assert target in components, "reference to a missing component: %s" % ".".join(ref)
            assert export in ALLOY_COMPONENTS[components[target]["name"]][2], "%s exports no %s" % (target, export)
    return components


def test_alloy_parser_rejects_what_alloy_rejects():
    # The structural check is worth something only if it refuses broken files.
    good = 'loki.write "a" {\n  endpoint {\n    url = "http://loki:3100/loki/api/v1/push"\n  }\n}\n'
    assert set(check_alloy(good)) == {"loki.write.a"}
    for broken in (good.replace("}\n}", "}"), good.replace("url =", "url"), good.replace("loki.write", "loki.writer"),
                   good.replace("url", "uri"), good + 'loki.source.docker "b" {\n  forward_to = [loki.write.c.receiver]\n}\n',
                   "# a hash comment is not Alloy syntax\n" + good):
        with pytest.raises(AssertionError):
            check_alloy(broken)


def test_the_log_shipper_sends_every_container_labelled_by_service_and_host(root):
    text = (root / "exporters" / "log-shipper" / "config.alloy").read_text()
    assert text.startswith("//")
    components = check_alloy(text)
    assert set(components) == {"discovery.docker.containers", "discovery.relabel.containers", "loki.source.docker.containers",
                               "loki.write.monitoring"}
    source = components["loki.source.docker.containers"]["attributes"]
    assert source["targets"] == {"ref": ["discovery", "docker", "containers", "targets"]}
    assert source["relabel_rules"] == {"ref": ["discovery", "relabel", "containers", "rules"]}
    assert source["forward_to"] == [{"ref": ["loki", "write", "monitoring", "receiver"]}]
    assert source["host"] == components["discovery.docker.containers"]["attributes"]["host"] == "unix:///var/run/docker.sock"
    rules = {rule["attributes"]["target_label"]: rule["attributes"] for rule in components["discovery.relabel.containers"]["blocks"]}
    assert set(rules) == SHIPPED_LABELS - {"host"}
    assert rules["project"]["source_labels"] == ["__meta_docker_container_label_com_docker_compose_project"]
    # The service label: the Compose service, set by the first of the two rules that write it.
    service_rules = [rule["attributes"] for rule in components["discovery.relabel.containers"]["blocks"]
                     if rule["attributes"]["target_label"] == "service"]
    assert service_rules[0]["source_labels"] == ["__meta_docker_container_label_com_docker_compose_service"]
    write = components["loki.write.monitoring"]
    assert write["attributes"]["external_labels"] == {"host": "localhost"}
    assert write["blocks"][0]["attributes"]["url"] == "http://soulmatting-loki:3100/loki/api/v1/push"
    shipper = compose_config(root / "exporters")["services"]["log-shipper"]
    mounts = {v["target"]: (v["source"], v.get("read_only")) for v in shipper["volumes"]}
    assert mounts["/var/run/docker.sock"] == ("/var/run/docker.sock", True)
    assert mounts["/etc/alloy"] == (str(root / "exporters" / "log-shipper"), True)
    assert shipper["command"][-1] == "/etc/alloy/config.alloy"


# ----------------------------------------------------------------------------------------- bad input

# Each case applies the entry point the variable belongs to, as a user's playbook would.
VALIDATION = {
    "monitoring listen on every interface": (MAIN_PLAY, {"monitoring_listen_address": "0.0.0.0"},
                                             ["monitoring_listen_address", "every interface"]),
    "exporters listen on every interface": (EXPORTERS_PLAY, {"monitoring_exporters_listen_address": "::"},
                                            ["monitoring_exporters_listen_address", "every interface"]),
    "retention size not a size": (MAIN_PLAY, {"monitoring_prometheus_retention_size": "lots"}, ["monitoring_prometheus_retention_size", "lots"]),
    "scrape interval not a duration": (MAIN_PLAY, {"monitoring_prometheus_scrape_interval": "often"},
                                       ["monitoring_prometheus_scrape_interval", "often"]),
    "ratio above one": (MAIN_PLAY, {"monitoring_alert_redis_memory_ratio": 1.5}, ["monitoring_alert_redis_memory_ratio", "1.5"]),
    "webhook without url": (MAIN_PLAY, {"monitoring_alertmanager_webhooks": [{"name": "chat"}]}, ["monitoring_alertmanager_webhooks", "url"]),
    "e-mail without a server": (MAIN_PLAY, {"monitoring_alertmanager_email_to": ["oncall@example.org"],
                                            "monitoring_alertmanager_email_from": "a@b.org"}, ["monitoring_alertmanager_smtp_smarthost"]),
    "short grafana password": (MAIN_PLAY, {"monitoring_grafana_admin_password": "short-pw"},
                               ["monitoring_grafana_admin_password", "12 characters"]),
    "port not a number": (MAIN_PLAY, {"monitoring_grafana_port": "three-thousand"}, ["monitoring_grafana_port"]),
    "exporter port not a number": (EXPORTERS_PLAY, {"monitoring_node_exporter_port": 70000}, ["monitoring_node_exporter_port", "70000"]),
}


@pytest.mark.parametrize("case", sorted(VALIDATION))
def test_bad_input_fails_before_anything_is_written(tmp_path, case):
    plays, bad, expected = VALIDATION[case]
    root = tmp_path / "root"
    host = {"selfhosted_root_dir": str(root), "selfhosted_metrics_dir": str(tmp_path / "metrics")}
    groups = {group: ["localhost"] for group in ("soulmatting", "postgres", "redis", "monitoring")}
    proc = apply(tmp_path, {"localhost": host}, groups, bad, plays=plays)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "has been hidden" not in output
    for text in expected:
        assert text in output, "%r not in:\n%s" % (text, output[-3000:])
    assert "short-pw" not in output
    assert not root.exists() and not (tmp_path / "metrics").exists(), "the role changed the host before failing"


def test_good_input_passes_the_same_checks(tmp_path):
    # The control case: the same inventory and plays with valid input get past the checks.
    root = tmp_path / "root"
    host = {"selfhosted_root_dir": str(root), "selfhosted_metrics_dir": str(tmp_path / "metrics")}
    groups = {group: ["localhost"] for group in ("soulmatting", "postgres", "redis", "monitoring")}
    proc = apply(tmp_path, {"localhost": host}, groups, {})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (root / "monitoring" / "compose.yaml").is_file() and (root / "exporters" / "compose.yaml").is_file()


def test_a_remote_host_with_loopback_exporters_stops_the_monitoring_host(tmp_path):
    hosts = {"mon": {"selfhosted_root_dir": str(tmp_path / "mon")},
             "db1": {"selfhosted_root_dir": str(tmp_path / "db1"), "ansible_host": "10.0.0.11"}}
    groups = {"soulmatting": ["mon", "db1"], "monitoring": ["mon"], "postgres": ["db1"]}
    proc = apply(tmp_path, hosts, groups, {}, limit="mon", plays=MAIN_PLAY)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "db1 publishes its exporters on \\\"127.0.0.1\\\"" in output or 'db1 publishes its exporters on "127.0.0.1"' in output, output[-3000:]
    assert "set monitoring_exporters_listen_address for db1" in output
    assert not (tmp_path / "mon" / "monitoring").exists()


def test_a_remote_shipper_refuses_a_loopback_loki(tmp_path):
    hosts = {"mon": {"selfhosted_root_dir": str(tmp_path / "mon")},
             "db1": {"selfhosted_root_dir": str(tmp_path / "db1"), "ansible_host": "10.0.0.11",
                     "monitoring_exporters_listen_address": "10.0.0.11", "selfhosted_metrics_dir": str(tmp_path / "metrics")}}
    groups = {"soulmatting": ["mon", "db1"], "monitoring": ["mon"]}
    proc = apply(tmp_path, hosts, groups, {}, limit="db1", plays=EXPORTERS_PLAY)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "set monitoring_listen_address for mon to a private address" in output, output[-3000:]
    assert not (tmp_path / "db1").exists()


def test_the_monitoring_services_run_on_the_first_monitoring_host_only(tmp_path):
    hosts = {"mon": {"selfhosted_root_dir": str(tmp_path / "mon")}, "mon2": {"selfhosted_root_dir": str(tmp_path / "mon2")}}
    proc = apply(tmp_path, hosts, {"soulmatting": ["mon", "mon2"], "monitoring": ["mon", "mon2"]}, {}, limit="mon2", plays=MAIN_PLAY)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "the first of the group monitoring (selfhosted_groups.monitoring), mon; not on mon2" in output, output[-3000:]
    assert not (tmp_path / "mon2").exists()
