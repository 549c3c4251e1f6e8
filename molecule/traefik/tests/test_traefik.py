"""What only the traefik scenario shows; the checks both proxies share are in test_public_door.py."""

import os

PROJECT = "/var/tmp/soulmatting-moltrf/traefik"
SECRETS = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "secrets")


def test_the_dashboard_login_is_a_bcrypt_hash_in_a_root_only_file(host):
    with open(os.path.join(SECRETS, "traefik_dashboard_password")) as handle:
        password = handle.read().strip()
    users = host.file(PROJECT + "/secrets/dashboard.htpasswd")
    assert users.user == "root" and users.mode == 0o600
    assert users.content_string.startswith("admin:$2y$") and password not in users.content_string
    assert host.file(PROJECT + "/secrets").mode == 0o700
