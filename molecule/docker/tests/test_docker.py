"""Verify the docker role on the test bed's real engine."""

import json


def test_daemon_config_rotates_logs(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "10m", "max-file": "3"}


def test_compose_v2_available(host):
    version = host.check_output("docker compose version --short")
    assert version.lstrip("v").split(".")[0] == "2"


def test_images_entry_point_installed_the_docker_sdk(host):
    # The images entry point's modules need it; the main entry point installs no Python library.
    assert host.package("python3-docker").is_installed


def test_archived_image_was_loaded(host):
    assert host.run("docker image inspect molecule/archived-echo:1").rc == 0
