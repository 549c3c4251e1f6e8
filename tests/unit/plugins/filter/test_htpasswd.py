"""The htpasswd filter: each format verifies with passlib and with what the proxies expect."""

import base64
import hashlib

import pytest
from passlib.hash import apr_md5_crypt, bcrypt

from ansible.errors import AnsibleFilterError

from ansible_collections.soulmatting.selfhosted.plugins.filter.htpasswd import htpasswd


def test_ldap_sha1_is_what_envoy_reads():
    expected = "{SHA}" + base64.b64encode(hashlib.sha1(b"dashboard-secret").digest()).decode()
    assert htpasswd("dashboard-secret", "ldap_sha1") == expected


def test_bcrypt_is_the_default_and_verifies():
    hashed = htpasswd("dashboard-secret")
    assert hashed.startswith("$2y$") and bcrypt.verify("dashboard-secret", hashed)
    assert not bcrypt.verify("another", hashed)


def test_a_given_salt_makes_the_hash_stable():
    salt = "abcdefghijklmnopqrstuu"
    assert htpasswd("pw-0001", "bcrypt", salt) == htpasswd("pw-0001", "bcrypt", salt)
    assert htpasswd("pw-0001", "apr_md5_crypt", "saltsalt") == htpasswd("pw-0001", "apr_md5_crypt", "saltsalt")
    assert apr_md5_crypt.verify("pw-0001", htpasswd("pw-0001", "apr_md5_crypt", "saltsalt"))


@pytest.mark.parametrize("password, scheme, words", [("", "bcrypt", "empty"), ("x", "md5", "unknown scheme")])
def test_bad_input_is_named(password, scheme, words):
    with pytest.raises(AnsibleFilterError, match=words):
        htpasswd(password, scheme)
