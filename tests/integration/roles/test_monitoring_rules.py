"""Each alert of the monitoring role fires when it should and stays quiet otherwise, proved with promtool.

The rules are rendered by the role itself (entry point main, selfhosted_start=false, default thresholds,
backups in the inventory) and checked with the test bed's promtool (Debian's Prometheus 2.42):
`promtool test rules` runs one firing case and at least one quiet case per alert, with the labels and the
annotations the notification will carry. The metric names and labels the proxy and gateway rules read
are taken from a real Traefik and a real Envoy (the test bed's), which answer a few requests with errors
first; the PostgreSQL, Redis and node exporters' are exercised for real in molecule/monitoring.
"""

import json
import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from playbook_runner import ansible_env

PROMETHEUS_IMAGE = "soulmatting-testbed/prometheus:latest"
TRAEFIK_IMAGE = "soulmatting-testbed/traefik:latest"
ENVOY_IMAGE = "soulmatting-testbed/envoy:latest"
PROBE = "https://api.example.org/auth/v1/.well-known/jwks.json"

PLAYBOOK = """
- name: Render the monitoring project
  hosts: monitoring
  gather_facts: false
  roles:
    - role: soulmatting.selfhosted.monitoring
"""


@pytest.fixture(scope="module")
def rules(tmp_path_factory):
    """The rendered rules file (a directory holding rules.yml), as the role writes it with its defaults."""
    base = tmp_path_factory.mktemp("rules")
    hosts = {"all": {"hosts": {"mon": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
                     "children": {group: {"hosts": {"mon": None}} for group in ("soulmatting", "monitoring", "backup")}}}
    (base / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (base / "render.yml").write_text(PLAYBOOK)
    variables = {"selfhosted_start": False, "selfhosted_root_dir": str(base / "root"), "selfhosted_secrets_dir": str(base / "secrets")}
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(base / "hosts.yml"),
                           str(base / "render.yml"), "-e", json.dumps(variables)],
                          env=ansible_env(), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    work = base / "work"
    work.mkdir()
    (work / "rules.yml").write_text((base / "root" / "monitoring" / "prometheus" / "rules" / "soulmatting.yml").read_text())
    return work


def alert_names(rules_dir):
    groups = yaml.safe_load((rules_dir / "rules.yml").read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def series(name, labels, values):
    return {"series": "%s{%s}" % (name, ",".join('%s="%s"' % item for item in sorted(labels.items()))), "values": values}


def on(host, job, **labels):
    """The labels every target of the role carries."""
    return dict(labels, host=host, instance=labels.pop("instance", host), job=job)


DISK = {"device": "/dev/sda1", "fstype": "ext4", "mountpoint": "/"}
CONTAINER = {"name": "molecule-postgres", "id": "/system.slice/docker-0123.scope", "image": "postgres"}


def disk(avail, fstype="ext4", readonly="0", samples=60):
    labels = on("db1", "node", device=DISK["device"], mountpoint=DISK["mountpoint"], fstype=fstype)
    return [series("node_filesystem_avail_bytes", labels, avail), series("node_filesystem_size_bytes", labels, "100000000000x%d" % samples),
            series("node_filesystem_readonly", labels, "%sx%d" % (readonly, samples))]


def traefik(errors, ok, labels):
    out = [series("traefik_service_requests_total", dict(labels, code="500"), errors)]
    if ok:
        out.append(series("traefik_service_requests_total", dict(labels, code="200"), ok))
    return out


GATEWAY = on("mon", "gateway", envoy_http_conn_manager_prefix="supabase")
TRAEFIK = on("mon", "traefik", method="GET", protocol="http", service="rest@file")

# alert -> list of cases: (name, interval, input series, eval time, expected alert or None).
# An expected alert is (labels it adds to the series' own, annotations).
CASES = {
    "HostDown": [
        ("node exporter down", "1m", [series("up", on("db1", "node"), "0x10")], "5m",
         ({"severity": "critical", "component": "host", "host": "db1", "instance": "db1", "job": "node"},
          {"summary": "Host db1 does not answer",
           "description": "The node exporter of db1 has not answered Prometheus for a while: the host, its Docker engine or its "
                          "exporters project is down."})),
        ("node exporter up", "1m", [series("up", on("db1", "node"), "1x10")], "5m", None),
        ("down for less than monitoring_alert_down_for", "1m", [series("up", on("db1", "node"), "1 1 1 0 0")], "4m", None),
    ],
    "TargetDown": [
        ("exporter down", "1m", [series("up", on("db1", "postgres"), "0x10")], "5m",
         ({"severity": "warning", "component": "postgres", "host": "db1", "instance": "db1", "job": "postgres"},
          {"summary": "postgres on db1 cannot be scraped",
           "description": "Prometheus cannot scrape postgres at db1 on db1: what it watches is unwatched until it answers again."})),
        ("a down host pages as HostDown only", "1m", [series("up", on("db1", "node"), "0x10")], "5m", None),
    ],
    "ProbeFailed": [
        ("probe fails", "1m", [series("probe_success", on("mon", "blackbox", instance=PROBE), "0x10")], "5m",
         ({"severity": "critical", "component": "endpoint", "host": "mon", "instance": PROBE, "job": "blackbox"},
          {"summary": "%s does not answer" % PROBE, "description": "The blackbox probe of %s fails: users cannot reach it." % PROBE})),
        ("probe succeeds", "1m", [series("probe_success", on("mon", "blackbox", instance=PROBE), "1x10")], "5m", None),
    ],
    "HostDiskWillFill": [
        ("20 GB free, losing 20 MB a minute", "1m", disk("20000000000-20000000x60"), "1h",
         ({"severity": "warning", "component": "host", "host": "db1", "instance": "db1", "job": "node", **DISK},
          {"summary": "/ on db1 fills up", "description": "At the rate of the last 6 hours, / on db1 is full within 24 hours."})),
        ("15 GB free, steady", "1m", disk("15000000000x60"), "1h", None),
        ("a tmpfs filling up", "1m", disk("20000000000-20000000x60", fstype="tmpfs"), "1h", None),
    ],
    "HostDiskAlmostFull": [
        ("3% free", "1m", disk("3000000000x15", samples=15), "10m",
         ({"severity": "critical", "component": "host", "host": "db1", "instance": "db1", "job": "node", **DISK},
          {"summary": "/ on db1 is almost full", "description": "Only 3% of / on db1 is free."})),
        ("10% free", "1m", disk("10000000000x15", samples=15), "10m", None),
        ("3% free on a read-only file system", "1m", disk("3000000000x15", readonly="1", samples=15), "10m", None),
    ],
    "HostMemoryPressure": [
        ("1 of 16 GB available", "1m", [series("node_memory_MemAvailable_bytes", on("db1", "node"), "1000000000x20"),
                                        series("node_memory_MemTotal_bytes", on("db1", "node"), "16000000000x20")], "15m",
         ({"severity": "warning", "component": "host", "host": "db1", "instance": "db1", "job": "node"},
          {"summary": "db1 runs out of memory", "description": "Only 6.25% of the memory of db1 is available."})),
        ("4 of 16 GB available", "1m", [series("node_memory_MemAvailable_bytes", on("db1", "node"), "4000000000x20"),
                                        series("node_memory_MemTotal_bytes", on("db1", "node"), "16000000000x20")], "15m", None),
    ],
    "ContainerMemoryNearLimit": [
        ("95% of the limit", "1m", [series("container_memory_working_set_bytes", on("db1", "cadvisor", **CONTAINER), "95000000x20"),
                                    series("container_spec_memory_limit_bytes", on("db1", "cadvisor", **CONTAINER), "100000000x20")], "15m",
         ({"severity": "warning", "component": "container", "host": "db1", "instance": "db1", "job": "cadvisor", **CONTAINER},
          {"summary": "molecule-postgres on db1 nears its memory limit",
           "description": "molecule-postgres on db1 uses 95% of its memory limit; past it, the kernel kills it."})),
        ("half of the limit", "1m", [series("container_memory_working_set_bytes", on("db1", "cadvisor", **CONTAINER), "50000000x20"),
                                     series("container_spec_memory_limit_bytes", on("db1", "cadvisor", **CONTAINER), "100000000x20")], "15m", None),
        ("no limit", "1m", [series("container_memory_working_set_bytes", on("db1", "cadvisor", **CONTAINER), "95000000x20"),
                            series("container_spec_memory_limit_bytes", on("db1", "cadvisor", **CONTAINER), "0x20")], "15m", None),
    ],
    "PostgresDown": [
        ("the exporter cannot connect", "1m", [series("pg_up", on("db1", "postgres"), "0x10")], "5m",
         ({"severity": "critical", "component": "postgres", "host": "db1", "instance": "db1", "job": "postgres"},
          {"summary": "PostgreSQL on db1 is down",
           "description": "The PostgreSQL exporter on db1 cannot connect to the database: every Supabase service that needs it fails."})),
        ("the database answers", "1m", [series("pg_up", on("db1", "postgres"), "1x10")], "5m", None),
    ],
    "PostgresConnectionsNearLimit": [
        ("85 of 100 connections", "1m", [
            series("pg_stat_activity_count", on("db1", "postgres", datname="postgres", state="active"), "70x10"),
            series("pg_stat_activity_count", on("db1", "postgres", datname="postgres", state="idle"), "15x10"),
            series("pg_settings_max_connections", on("db1", "postgres"), "100x10")], "10m",
         ({"severity": "warning", "component": "postgres", "host": "db1"},
          {"summary": "PostgreSQL on db1 nears max_connections",
           "description": "85% of max_connections are in use on db1; new connections will be refused."})),
        ("60 of 100 connections", "1m", [
            series("pg_stat_activity_count", on("db1", "postgres", datname="postgres", state="active"), "50x10"),
            series("pg_stat_activity_count", on("db1", "postgres", datname="postgres", state="idle"), "10x10"),
            series("pg_settings_max_connections", on("db1", "postgres"), "100x10")], "10m", None),
    ],
    "PostgresReplicationLag": [
        ("ten minutes behind", "1m", [series("pg_replication_lag_seconds", on("db2", "postgres"), "600x10")], "10m",
         ({"severity": "warning", "component": "postgres", "host": "db2"},
          {"summary": "The replica on db2 lags", "description": "The replica on db2 replays transactions 10m 0s behind the primary."})),
        ("ten seconds behind", "1m", [series("pg_replication_lag_seconds", on("db2", "postgres"), "10x10")], "10m", None),
    ],
    "BackupTooOld": [
        ("no good backup since the start", "5m", [series("soulmatting_backup_last_success_timestamp_seconds", on("db1", "node"), "0x360")],
         "30h", ({"severity": "critical", "component": "backup", "host": "db1"},
                 {"summary": "The last good backup on db1 is too old",
                  "description": "The last backup that succeeded on db1 finished 1d 6h 0m 0s ago."})),
        ("a good backup every five minutes", "5m",
         [series("soulmatting_backup_last_success_timestamp_seconds", on("db1", "node"), "0+300x360")], "30h", None),
    ],
    "BackupMissing": [
        ("no host reports a backup", "5m", [series("up", on("db1", "node"), "1x330")], "27h",
         ({"severity": "critical", "component": "backup"},
          {"summary": "No backup has succeeded yet",
           "description": "No host reports a backup that succeeded: the backups never ran, fail, or their metric does not reach the "
                          "node exporter."})),
        ("a host reports its backups", "5m", [series("soulmatting_backup_last_success_timestamp_seconds", on("db1", "node"), "0+300x330")],
         "27h", None),
    ],
    "RedisDown": [
        ("the exporter cannot reach Redis", "1m", [series("redis_up", on("db1", "redis"), "0x10")], "5m",
         ({"severity": "critical", "component": "redis", "host": "db1", "instance": "db1", "job": "redis"},
          {"summary": "Redis on db1 is down", "description": "The Redis exporter on db1 cannot reach Redis."})),
        ("Redis answers", "1m", [series("redis_up", on("db1", "redis"), "1x10")], "5m", None),
    ],
    "RedisMemoryNearMaxmemory": [
        ("95% of maxmemory", "1m", [series("redis_memory_used_bytes", on("db1", "redis"), "95000000x10"),
                                    series("redis_memory_max_bytes", on("db1", "redis"), "100000000x10")], "10m",
         ({"severity": "warning", "component": "redis", "host": "db1", "instance": "db1", "job": "redis"},
          {"summary": "Redis on db1 nears maxmemory",
           "description": "Redis on db1 uses 95% of maxmemory: keys are about to be evicted or writes refused."})),
        ("half of maxmemory", "1m", [series("redis_memory_used_bytes", on("db1", "redis"), "50000000x10"),
                                     series("redis_memory_max_bytes", on("db1", "redis"), "100000000x10")], "10m", None),
        ("no maxmemory", "1m", [series("redis_memory_used_bytes", on("db1", "redis"), "95000000x10"),
                                series("redis_memory_max_bytes", on("db1", "redis"), "0x10")], "10m", None),
    ],
    "CertificateExpiresSoon": [
        ("ten days left", "1m", [series("probe_ssl_earliest_cert_expiry", on("mon", "blackbox", instance=PROBE), "864000x60")], "1h",
         ({"severity": "warning", "component": "certificate", "host": "mon", "instance": PROBE, "job": "blackbox"},
          {"summary": "The certificate of %s expires soon" % PROBE,
           "description": "The certificate of %s expires in 9d 23h 0m 0s: is its renewal failing?" % PROBE})),
        ("sixty days left", "1m", [series("probe_ssl_earliest_cert_expiry", on("mon", "blackbox", instance=PROBE), "5184000x60")], "1h", None),
    ],
    "CertificateExpiresVerySoon": [
        ("two days left", "1m", [series("probe_ssl_earliest_cert_expiry", on("mon", "blackbox", instance=PROBE), "172800x60")], "1h",
         ({"severity": "critical", "component": "certificate", "host": "mon", "instance": PROBE, "job": "blackbox"},
          {"summary": "The certificate of %s is about to expire" % PROBE,
           "description": "The certificate of %s expires in 1d 23h 0m 0s." % PROBE})),
        ("ten days left", "1m", [series("probe_ssl_earliest_cert_expiry", on("mon", "blackbox", instance=PROBE), "864000x60")], "1h", None),
    ],
    "ProxyHigh5xxRate": [
        ("one request in six fails", "1m", traefik("0+60x30", "0+300x30", TRAEFIK), "15m",
         ({"severity": "critical", "component": "proxy", "host": "mon", "service": "rest@file"},
          {"summary": "rest@file answers with errors through the proxy",
           "description": "16.67% of the requests to rest@file through the proxy on mon end in a 5xx."})),
        ("one request in six hundred fails", "1m", traefik("0+1x30", "0+600x30", TRAEFIK), "15m", None),
        ("every request fails, one a minute", "1m", traefik("0+1x30", None, TRAEFIK), "15m", None),
    ],
    "GatewayHigh5xxRate": [
        ("one request in ten fails", "1m", [
            series("envoy_http_downstream_rq_xx", dict(GATEWAY, envoy_response_code_class="5"), "0+60x30"),
            series("envoy_http_downstream_rq_completed", GATEWAY, "0+600x30")], "15m",
         ({"severity": "critical", "component": "gateway", "host": "mon"},
          {"summary": "The Supabase gateway on mon answers with errors",
           "description": "10% of the requests through the Supabase gateway on mon end in a 5xx."})),
        ("errors only on the metrics listener", "1m", [
            series("envoy_http_downstream_rq_xx", dict(GATEWAY, envoy_response_code_class="5", envoy_http_conn_manager_prefix="metrics"),
                   "0+600x30"),
            series("envoy_http_downstream_rq_completed", dict(GATEWAY, envoy_http_conn_manager_prefix="metrics"), "0+600x30"),
            series("envoy_http_downstream_rq_xx", dict(GATEWAY, envoy_response_code_class="2"), "0+600x30"),
            series("envoy_http_downstream_rq_completed", GATEWAY, "0+600x30")], "15m", None),
    ],
    "AlertmanagerNotificationsFailing": [
        ("e-mails fail", "1m", [series("alertmanager_notifications_failed_total", on("mon", "alertmanager", integration="email"), "0+1x30")],
         "20m", ({"severity": "warning", "component": "alertmanager", "host": "mon", "integration": "email"},
                 {"summary": "Alertmanager cannot deliver email notifications",
                  "description": "Notifications through email fail: alerts may reach nobody that way."})),
        ("nothing fails", "1m", [series("alertmanager_notifications_failed_total", on("mon", "alertmanager", integration="email"), "5x30")],
         "20m", None),
    ],
}


def promtool_test(rules_dir, alert, cases):
    tests = []
    for name, interval, inputs, eval_time, expected in cases:
        exp = [] if expected is None else [{"exp_labels": expected[0], "exp_annotations": expected[1]}]
        tests.append({"name": "%s: %s" % (alert, name), "interval": interval, "input_series": inputs,
                      "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": exp}]})
    path = rules_dir / ("test-%s.yml" % alert)
    path.write_text(yaml.safe_dump({"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": tests}, sort_keys=False))
    return subprocess.run(["docker", "run", "--rm", "--network", "none", "--user", "0", "-v", "%s:/work:ro" % rules_dir, "-w", "/work",
                           "--entrypoint", "promtool", PROMETHEUS_IMAGE, "test", "rules", path.name],
                          capture_output=True, text=True, check=False)


def test_every_alert_has_a_firing_and_a_quiet_case(rules):
    assert sorted(alert_names(rules)) == sorted(CASES)
    for alert, cases in CASES.items():
        assert [case for case in cases if case[4] is not None] and [case for case in cases if case[4] is None], alert


@pytest.mark.parametrize("alert", sorted(CASES))
def test_alert_fires_when_it_should_and_only_then(rules, alert):
    proc = promtool_test(rules, alert, CASES[alert])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr


def test_promtool_fails_a_wrong_expectation(rules):
    # The tests above are worth something only if promtool fails when an alert does not behave as said.
    name, interval, inputs, eval_time, _expected = CASES["PostgresDown"][1]
    wrong = (name, interval, inputs, eval_time, CASES["PostgresDown"][0][4])
    assert promtool_test(rules, "PostgresDown", [wrong]).returncode != 0
    name, interval, inputs, eval_time, _expected = CASES["PostgresDown"][0]
    assert promtool_test(rules, "PostgresDown", [(name, interval, inputs, eval_time, None)]).returncode != 0


# ------------------------------------------------------------- metric names from a real Traefik and Envoy

SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>.*)\})? (?P<value>\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def exposition(text, name):
    """The label sets of the samples of NAME in a Prometheus text exposition."""
    found = []
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match and match.group("name") == name:
            found.append(dict(LABEL.findall(match.group("labels") or "")))
    return found


def run_container(name, image, args, files):
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    command = ["docker", "run", "-d", "--name", name, "--network", "none"]
    for target, path in files.items():
        command += ["-v", "%s:%s:ro" % (path, target)]
    subprocess.run(command + [image] + args, capture_output=True, text=True, check=True)


def exec_in(name, *argv):
    return subprocess.run(["docker", "exec", name] + list(argv), capture_output=True, text=True, check=False)


def wait_for(name, *argv):
    deadline = time.time() + 30
    while time.time() < deadline:
        if exec_in(name, *argv).returncode == 0:
            return
        time.sleep(0.5)
    logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, check=False)
    pytest.fail("%s did not answer: %s" % (name, logs.stdout[-2000:] + logs.stderr[-2000:]))


TRAEFIK_DYNAMIC = {"http": {
    "routers": {"broken": {"rule": "Path(`/broken`)", "service": "broken", "entryPoints": ["web"]},
                "fine": {"rule": "Path(`/ping`)", "service": "fine", "entryPoints": ["web"]}},
    "services": {"broken": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}},
                 "fine": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:8082"}]}}},
}}


def test_proxy_rule_reads_what_a_real_traefik_exports(rules, tmp_path):
    (tmp_path / "dynamic.yml").write_text(yaml.safe_dump(TRAEFIK_DYNAMIC))
    os.chmod(tmp_path, 0o755)
    os.chmod(tmp_path / "dynamic.yml", 0o644)
    name = "monitoring-rules-traefik"
    try:
        run_container(name, TRAEFIK_IMAGE, [
            "--entrypoints.web.address=:8000", "--entrypoints.metrics.address=:8082", "--ping=true", "--ping.entrypoint=metrics",
            "--metrics.prometheus=true", "--metrics.prometheus.entrypoint=metrics", "--providers.file.filename=/etc/traefik/dynamic.yml"],
            {"/etc/traefik/dynamic.yml": tmp_path / "dynamic.yml"})
        wait_for(name, "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/ping")
        for dummy in range(3):
            exec_in(name, "curl", "-s", "-o", "/dev/null", "http://127.0.0.1:8000/broken")
        text = exec_in(name, "curl", "-fsS", "http://127.0.0.1:8082/metrics").stdout
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    samples = exposition(text, "traefik_service_requests_total")
    broken = [labels for labels in samples if labels.get("service") == "broken@file"]
    assert broken and broken[0]["code"].startswith("5"), samples
    assert exposition(text, "traefik_service_request_duration_seconds_bucket"), "the dashboard's latency histogram is missing"
    # The rule, fed with series bearing exactly the labels Traefik gave, pages for that service.
    labels = dict(broken[0], host="mon", instance="mon", job="traefik")
    assert [item for item in samples if item.get("service") == "fine@file" and item["code"] == "200"], samples
    inputs = [series("traefik_service_requests_total", labels, "0+60x30"),
              series("traefik_service_requests_total", dict(labels, code="200"), "0+300x30")]
    expected = ({"severity": "critical", "component": "proxy", "host": "mon", "service": "broken@file"},
                {"summary": "broken@file answers with errors through the proxy",
                 "description": "16.67% of the requests to broken@file through the proxy on mon end in a 5xx."})
    proc = promtool_test(rules, "ProxyHigh5xxRate", [("real Traefik labels", "1m", inputs, "15m", expected)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


ENVOY_CONFIG = {
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9901}}},
    "static_resources": {"listeners": [{
        "name": "supabase", "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8000}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": "supabase",
                "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                    {"match": {"path": "/fail"}, "direct_response": {"status": 503}},
                    {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
            }}]}],
    }]},
}


def test_gateway_rule_reads_what_a_real_envoy_exports(rules, tmp_path):
    (tmp_path / "envoy.yaml").write_text(yaml.safe_dump(ENVOY_CONFIG))
    os.chmod(tmp_path, 0o755)
    os.chmod(tmp_path / "envoy.yaml", 0o644)
    name = "monitoring-rules-envoy"
    try:
        run_container(name, ENVOY_IMAGE, ["-c", "/etc/soulmatting/envoy.yaml"], {"/etc/soulmatting/envoy.yaml": tmp_path / "envoy.yaml"})
        wait_for(name, "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8000/ok")
        for dummy in range(3):
            exec_in(name, "curl", "-s", "-o", "/dev/null", "http://127.0.0.1:8000/fail")
        text = exec_in(name, "curl", "-fsS", "http://127.0.0.1:9901/stats/prometheus").stdout
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    errors = [labels for labels in exposition(text, "envoy_http_downstream_rq_xx")
              if labels.get("envoy_response_code_class") == "5" and labels.get("envoy_http_conn_manager_prefix") == "supabase"]
    completed = [labels for labels in exposition(text, "envoy_http_downstream_rq_completed")
                 if labels.get("envoy_http_conn_manager_prefix") == "supabase"]
    assert errors and completed, text[:2000]
    inputs = [series("envoy_http_downstream_rq_xx", dict(errors[0], host="mon", instance="mon", job="gateway"), "0+60x30"),
              series("envoy_http_downstream_rq_completed", dict(completed[0], host="mon", instance="mon", job="gateway"), "0+600x30")]
    expected = ({"severity": "critical", "component": "gateway", "host": "mon"},
                {"summary": "The Supabase gateway on mon answers with errors",
                 "description": "10% of the requests through the Supabase gateway on mon end in a 5xx."})
    proc = promtool_test(rules, "GatewayHigh5xxRate", [("real Envoy labels", "1m", inputs, "15m", expected)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
