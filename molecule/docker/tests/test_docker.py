"""Verify the docker role on the test bed's real engine."""

import json


def test_daemon_config_rotates_logs(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "10m", "max-file": "3"}


def test_compose_v2_available(host):
    version = host.check_output("docker compose version --short")
    assert version.lstrip("v").split(".")[0] == "2"


def test_networks_exist(host):
    for name, internal in (("soulmatting_data", "false"), ("soulmatting_edge", "false"), ("molecule_docker_internal", "true")):
        assert host.check_output("docker network inspect -f '{{.Internal}}' %s", name) == internal


def test_modules_python_libraries_installed(host):
    for package in ("python3-docker", "python3-boto3", "python3-jwt", "python3-cryptography"):
        assert host.package(package).is_installed


def test_archived_image_was_loaded(host):
    assert host.run("docker image inspect molecule/archived-echo:1").rc == 0
