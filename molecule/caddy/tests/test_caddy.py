"""What only the caddy scenario shows; the checks both proxies share are in
molecule/traefik/tests/test_public_door.py, which this scenario's verifier runs too."""

import datetime
import json

PROXY = "molcdy-caddy"
DOMAIN = "molcdy.test"


def test_side_effect_reloaded_caddy_in_place(host):
    # side_effect changed the Caddyfile twice: each time `caddy reload` in the running container (open
    # connections and websockets kept), never a new container. So the container that got the first
    # certificates at converge got Grafana's, after a reload, and was created before both.
    entries = [json.loads(line) for line in host.run("docker logs %s 2>&1", PROXY).stdout.splitlines() if line.startswith("{")]
    obtained = {entry["identifier"]: entry["ts"] for entry in entries if entry.get("msg") == "certificate obtained successfully"}
    reloads = [entry["ts"] for entry in entries if entry.get("logger") == "admin.api" and entry.get("msg") == "load complete"]
    created = host.check_output("docker inspect -f '{{.Created}}' %s", PROXY)
    created = datetime.datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00").timestamp()
    assert created < obtained["api." + DOMAIN] < obtained["grafana." + DOMAIN]
    assert len([ts for ts in reloads if obtained["api." + DOMAIN] < ts < obtained["grafana." + DOMAIN]]) >= 1
