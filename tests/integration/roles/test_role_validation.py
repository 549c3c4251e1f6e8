"""Bad input to the data-layer roles fails before anything on the host changes, naming the variable.

Each case applies the whole role, as a user's playbook would; the role must stop in its argument
validation or its preflight checks, so the project directory must not exist afterwards.
"""

import os

import pytest

from playbook_runner import run_playbook

PLAYBOOK = os.path.join(os.path.dirname(__file__), "playbooks", "apply_role.yml")

CASES = {
    "redis short password": ("redis", {"redis_password": "short-pass"}, ["redis_password", "at least 16 characters"]),
    "redis maxmemory not a number": ("redis", {"redis_maxmemory_mb": "lots"}, ["redis_maxmemory_mb", "int"]),
    "redis maxmemory above the limit": ("redis", {"redis_memory_mb": 256, "redis_maxmemory_mb": 512}, ["redis_maxmemory_mb", "below"]),
    "redis unknown eviction policy": ("redis", {"redis_maxmemory_policy": "evict-everything"}, ["redis_maxmemory_policy", "volatile-lru"]),
    "redis password with a quote": ("redis", {"redis_password": "a-long-password-with-'quote'"}, ["redis_password", "quotes"]),
    "minio short password": ("minio", {"minio_root_password": "short-pw"}, ["minio_root_password", "at least 12 characters"]),
    "minio unknown engine": ("minio", {"minio_engine": "ceph"}, ["minio_engine", "minio, seaweedfs"]),
    "minio bucket option unknown": ("minio", {"minio_buckets": [{"name": "media", "acl": "public"}]}, ["minio_buckets", "acl"]),
    "minio buckets not a list of dicts": ("minio", {"minio_buckets": ["media"]}, ["minio_buckets", "dict"]),
    "minio port not a number": ("minio", {"minio_api_port": "nine-thousand"}, ["minio_api_port", "int"]),
    "postgres short password": ("postgres", {"postgres_password": "short-pass"}, ["postgres_password", "at least 16"]),
    "postgres unknown image flavor": ("postgres", {"postgres_image_flavor": "nonsense"}, ["postgres_image_flavor", "nonsense"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_before_any_change(tmp_path, case):
    role, bad_vars, expected = CASES[case]
    project_dir = tmp_path / "project"
    extra_vars = {
        "role_under_test": role,
        role + "_project_dir": str(project_dir),
        "selfhosted_secrets_dir": str(tmp_path / "secrets"),
    }
    extra_vars.update(bad_vars)
    result = run_playbook(PLAYBOOK, extra_vars=extra_vars)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "failed=1" in result.stdout, output[-3000:]
    # The message is shown (not hidden by no_log) and names the variable.
    assert "has been hidden" not in output
    for text in expected:
        assert text in output, "%r not in the failure output:\n%s" % (text, output[-3000:])
    assert not project_dir.exists(), "the role changed the host before failing"
    assert "changed=0" in result.stdout


def test_good_input_passes_the_same_checks(tmp_path):
    # The control case: the same playbook and phases with valid input get past validation.
    extra_vars = {
        "role_under_test": "minio",
        "minio_project_dir": str(tmp_path / "project"),
        "selfhosted_secrets_dir": str(tmp_path / "secrets"),
        "minio_buckets": [{"name": "media", "policy": "download"}],
    }
    result = run_playbook(PLAYBOOK, extra_vars=extra_vars, env={"ANSIBLE_RUN_TAGS": "preflight"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "failed=0" in result.stdout
    # The generated password was kept on the controller, root-only.
    secret = tmp_path / "secrets" / "minio_root_password"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_text().split()[0]) == 40
