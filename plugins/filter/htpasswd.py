# Copyright: SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The htpasswd filter: hash a password the way basic-auth files store it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: htpasswd
short_description: Hash a password for an htpasswd (basic auth) entry
version_added: 0.2.0
description:
  - Returns the hash of a password in one of the formats basic-auth users files hold, computed with passlib on the
    controller.
  - V(bcrypt) (C($2y$...)) is the strongest and what Traefik and Caddy accept; V(apr_md5_crypt) (C($apr1$...)) is
    Apache's default; V(ldap_sha1) (C({SHA}...)) is the only one Envoy's basic_auth filter reads.
  - bcrypt and apr_md5_crypt are salted, so each call gives a different hash of the same password; pass O(salt) to
    get a stable one (a role that renders a file on every run needs that to stay idempotent).
options:
  _input:
    description: The password.
    type: string
    required: true
  scheme:
    description: The hash format.
    type: string
    choices: [bcrypt, apr_md5_crypt, ldap_sha1]
    default: bcrypt
  salt:
    description:
      - Salt for V(bcrypt) (22 characters of C(./A-Za-z0-9)) or V(apr_md5_crypt) (up to 8 characters). Ignored by
        V(ldap_sha1), which has none.
    type: string
requirements:
  - passlib on the controller
"""

EXAMPLES = r"""
- name: A basic-auth line for Envoy
  ansible.builtin.debug:
    msg: "admin:{{ dashboard_password | soulmatting.selfhosted.htpasswd('ldap_sha1') }}"
"""

RETURN = r"""
_value:
  description: The hash, as an htpasswd file stores it after the user name and a colon.
  type: string
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native, to_text

try:
    from passlib.hash import apr_md5_crypt, bcrypt, ldap_sha1
    HAS_PASSLIB = True
except ImportError:
    HAS_PASSLIB = False


def htpasswd(password, scheme="bcrypt", salt=None):
    """Hash PASSWORD in SCHEME (bcrypt, apr_md5_crypt or ldap_sha1)."""
    if not HAS_PASSLIB:
        raise AnsibleFilterError("htpasswd: the Python library passlib is needed on the controller")
    password = to_text(password)
    if not password:
        raise AnsibleFilterError("htpasswd: the password is empty")
    try:
        if scheme == "ldap_sha1":
            return ldap_sha1.hash(password)
        if scheme == "apr_md5_crypt":
            return apr_md5_crypt.using(salt=salt).hash(password) if salt else apr_md5_crypt.hash(password)
        if scheme == "bcrypt":
            handler = bcrypt.using(ident="2y", salt=salt) if salt else bcrypt.using(ident="2y")
            return handler.hash(password)
    except (ValueError, TypeError) as exc:
        raise AnsibleFilterError("htpasswd: %s" % to_native(exc))
    raise AnsibleFilterError("htpasswd: unknown scheme %r; use bcrypt, apr_md5_crypt or ldap_sha1" % (scheme,))


class FilterModule:
    """Basic-auth filters."""

    def filters(self):
        return {"htpasswd": htpasswd}
