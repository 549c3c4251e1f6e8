"""Monitoring of the all-in-one stack, for real: Prometheus scrapes every exporter, the alerts page.

Every test takes testinfra's `host`, so that they run in the order of this file: the outage comes last.

Prometheus, Alertmanager and the node, PostgreSQL, Redis and blackbox exporters are the test bed's
Debian builds; the database and Redis are the data layer the converge deploys first. A test-only
receiver records Alertmanager's webhooks and e-mails (molecule/monitoring/files/receiver.py). The
checks ask Prometheus' and Alertmanager's HTTP APIs on their loopback ports.
"""

import json
import os
import time
import urllib.parse
import urllib.request

import pytest

INSTANCE = "molmon"
ROOT = "/var/tmp/soulmatting-molecule/molmon"
PROMETHEUS = "http://127.0.0.1:19090"
ALERTMANAGER = "http://127.0.0.1:19093"
RECEIVED = os.path.join(ROOT, "receiver", "data")
DASHBOARDS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "monitoring", "files", "dashboards")
ROTATED_REDIS_PASSWORD = "molecule-monitoring-redis-rotated-0001"
# Every job the inventory of this scenario asks for, each with its one target.
EXPECTED_JOBS = {"prometheus", "alertmanager", "node", "postgres", "redis", "blackbox"}
RUNNING = ["prometheus", "alertmanager", "blackbox-exporter", "node-exporter", "postgres-exporter", "redis-exporter"]


def get(url, **params):
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def query(expr):
    answer = get(PROMETHEUS + "/api/v1/query", query=expr)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def wait(what, check, timeout=90, step=1.0):
    """Polls CHECK until it returns something true (bounded); fails naming WHAT otherwise."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = check()
        if last:
            return last
        time.sleep(step)
    pytest.fail("%s: not within %ss (last: %r)" % (what, timeout, last))


def notifications():
    path = os.path.join(RECEIVED, "webhook.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def mails():
    path = os.path.join(RECEIVED, "mail.txt")
    if not os.path.exists(path):
        return ""
    with open(path, errors="replace") as handle:
        return handle.read()


def sent(alertname, status, host=None):
    """The webhook notifications that carry ALERTNAME in STATUS (for HOST)."""
    return [n for n in notifications() for alert in n["alerts"] if alert["labels"]["alertname"] == alertname
            and alert["status"] == status and (host is None or alert["labels"].get("host") == host)]


@pytest.mark.parametrize("service", RUNNING)
def test_service_is_healthy_with_the_stack_policies(host, service):
    state = host.check_output("docker inspect -f '{{.State.Health.Status}} {{.HostConfig.RestartPolicy.Name}} "
                              "{{.HostConfig.LogConfig.Type}} {{.HostConfig.Memory}}' %s-%s", INSTANCE, service)
    health, policy, logging, memory = state.split()
    assert (health, policy, logging) == ("healthy", "unless-stopped", "json-file") and int(memory) > 0


def test_only_prometheus_and_alertmanager_are_published_on_loopback(host):
    for service in RUNNING:
        ports = host.check_output("docker inspect -f '{{json .HostConfig.PortBindings}}' %s-%s", INSTANCE, service)
        bindings = [b for items in (json.loads(ports) or {}).values() for b in items]
        expected = {"prometheus": [("127.0.0.1", "19090")], "alertmanager": [("127.0.0.1", "19093")]}.get(service, [])
        assert [(b["HostIp"], b["HostPort"]) for b in bindings] == expected, service


def test_exporters_sit_on_the_metrics_network_only_beside_their_server(host):
    def networks(service):
        return set(host.check_output("docker inspect -f '{{range $name, $n := .NetworkSettings.Networks}}{{$name}} {{end}}' %s-%s",
                                     INSTANCE, service).split())
    assert networks("node-exporter") == {"molmon_metrics"}
    assert networks("postgres-exporter") == networks("redis-exporter") == {"molmon_metrics", "molmon_data"}
    assert networks("prometheus") == {"molmon_metrics", "molmon_data", "molmon_edge", "molmon_monitoring"}
    assert networks("alertmanager") == {"molmon_monitoring"}


def test_every_expected_target_is_up(host):  # pylint: disable=unused-argument
    def all_up():
        active = get(PROMETHEUS + "/api/v1/targets", state="active")["data"]["activeTargets"]
        jobs = {target["labels"]["job"] for target in active}
        return active if jobs == EXPECTED_JOBS and all(t["health"] == "up" for t in active) else None
    active = wait("every expected target up", all_up, timeout=60)
    assert len(active) == len(EXPECTED_JOBS)
    assert {t["labels"]["host"] for t in active} == {"instance"}
    by_job = {t["labels"]["job"]: t["scrapeUrl"] for t in active}
    assert by_job["postgres"] == "http://molmon-postgres-exporter:9187/metrics"
    assert by_job["node"] == "http://molmon-node-exporter:9100/metrics"


def test_the_exporters_report_the_real_servers(host):
    assert [r["value"][1] for r in query('pg_up{host="instance"}')] == ["1"]
    assert [r["value"][1] for r in query('redis_up{host="instance"}')] == ["1"]
    assert [r["value"][1] for r in query("probe_success")] == ["1"]
    max_connections = host.check_output("docker exec -u postgres %s-postgres psql -XtAc 'show max_connections'", INSTANCE)
    assert [r["value"][1] for r in query("pg_settings_max_connections")] == [max_connections]
    maxmemory = query("redis_memory_max_bytes")[0]["value"][1]
    assert int(float(maxmemory)) == int(256 * 0.6) * 1024 * 1024
    # The host's own file systems, read through /host: the root file system is there.
    assert query('node_filesystem_avail_bytes{mountpoint="/"}')


def test_the_rotated_redis_password_reached_the_exporter(host):
    env = host.file("%s/exporters/env/redis-exporter.env" % ROOT)
    assert env.mode == 0o600 and env.user == "root"
    assert "REDIS_PASSWORD='%s'" % ROTATED_REDIS_PASSWORD in env.content_string
    assert wait("redis_up at 1 with the new password", lambda: [r for r in query("redis_up") if r["value"][1] == "1"], timeout=30)


def test_no_alert_of_an_outage_fires_on_a_healthy_stack(host):  # pylint: disable=unused-argument
    firing = query('ALERTS{alertstate="firing", alertname=~"HostDown|TargetDown|ProbeFailed|PostgresDown|RedisDown"}')
    assert firing == []


def test_the_textfile_collector_reads_the_metrics_dir(host):
    # What the backup role will leave: a backup that succeeded two days ago is too old.
    stale = int(time.time()) - 2 * 86400
    path = os.path.join(ROOT, "metrics", "backup.prom")
    with open(path + ".tmp", "w") as handle:
        handle.write("# TYPE soulmatting_backup_last_success_timestamp_seconds gauge\n"
                     "soulmatting_backup_last_success_timestamp_seconds %d\n" % stale)
    os.chmod(path + ".tmp", 0o644)
    os.rename(path + ".tmp", path)
    try:
        found = wait("the backup metric in Prometheus",
                     lambda: query('soulmatting_backup_last_success_timestamp_seconds{host="instance"}'), timeout=30)
        assert int(float(found[0]["value"][1])) == stale
        assert wait("BackupTooOld pending", lambda: query('ALERTS{alertname="BackupTooOld", host="instance"}'), timeout=30)
    finally:
        os.remove(path)


def dashboard_queries():
    for name in sorted(os.listdir(DASHBOARDS)):
        with open(os.path.join(DASHBOARDS, name)) as handle:
            board = json.load(handle)
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["uid"] == "prometheus":
                    yield name[:-5], panel["title"], target["expr"]


# Panels that cannot show data here, and why: what they read does not run in this scenario.
NO_DATA_HERE = {
    "Replication lag": "no replica in this scenario (and the test bed's PostgreSQL exporter 0.11 has no replication collector)",
    "Age of the last good backup": "the backup role does not run here",
    "Swap in and out": "no swap activity",
}


def test_every_dashboard_query_parses_and_the_data_layer_panels_show_data(host):  # pylint: disable=unused-argument
    empty = []
    for board, title, expr in dashboard_queries():
        promql = expr.replace("$__rate_interval", "1m").replace("$host", ".+")
        result = query(promql)
        if board in ("host", "postgres", "redis") and not result and title not in NO_DATA_HERE:
            empty.append("%s / %s: %s" % (board, title, promql))
    assert empty == []


def post_alerts(alerts):
    request = urllib.request.Request(ALERTMANAGER + "/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def test_one_host_outage_sends_one_notification(host):  # pylint: disable=unused-argument
    # Alerts as Prometheus would send them for a host that is down: Alertmanager's inhibition rules let
    # only the host's own alert through.
    name = "synthetic-host-%d" % int(time.time())
    outage = [{"labels": {"alertname": alert, "host": name, "severity": severity, "job": job}}
              for alert, severity, job in (("HostDown", "critical", "node"), ("TargetDown", "warning", "postgres"),
                                           ("HostMemoryPressure", "warning", "node"))]
    post_alerts(outage)

    def inhibition_settled():
        alerts = [a for a in get(ALERTMANAGER + "/api/v2/alerts") if a["labels"].get("host") == name]
        inhibited = sorted(a["labels"]["alertname"] for a in alerts if a["status"]["inhibitedBy"])
        return alerts if len(alerts) == 3 and inhibited == ["HostMemoryPressure", "TargetDown"] else None
    wait("the host's other alerts inhibited", inhibition_settled, timeout=30)
    wait("the HostDown notification", lambda: sent("HostDown", "firing", host=name), timeout=30)
    time.sleep(5)  # a few group intervals: nothing else may follow
    about_host = [alert["labels"]["alertname"] for n in notifications() for alert in n["alerts"] if alert["labels"].get("host") == name]
    assert set(about_host) == {"HostDown"}
    ended = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    post_alerts([dict(alert, endsAt=ended) for alert in outage])


def test_stopping_the_database_pages_and_starting_it_resolves_the_page(host):
    before = len(notifications())
    host.check_output("docker stop -t 30 %s-postgres", INSTANCE)
    try:
        page = wait("PostgresDown firing, delivered to the webhook", lambda: sent("PostgresDown", "firing", host="instance"), timeout=120)
        alert = [a for a in page[0]["alerts"] if a["labels"]["alertname"] == "PostgresDown"][0]
        assert alert["labels"]["severity"] == "critical" and alert["annotations"]["summary"] == "PostgreSQL on instance is down"
        wait("PostgresDown e-mailed", lambda: "PostgresDown" in mails() and "oncall@molecule.test" in mails(), timeout=60)
        # One outage, one page: the database down is the only alert about it that was sent.
        during = [a["labels"]["alertname"] for n in notifications()[before:] for a in n["alerts"] if a["status"] == "firing"]
        assert set(during) == {"PostgresDown"}, during
    finally:
        host.check_output("docker start %s-postgres", INSTANCE)
    wait("the database healthy again", lambda: host.check_output(
        "docker inspect -f '{{.State.Health.Status}}' %s-postgres", INSTANCE) == "healthy", timeout=120)
    wait("PostgresDown resolved, delivered to the webhook", lambda: sent("PostgresDown", "resolved", host="instance"), timeout=120)
    assert [r["value"][1] for r in query('pg_up{host="instance"}')] == ["1"]
    assert query('ALERTS{alertname="PostgresDown"}') == []
