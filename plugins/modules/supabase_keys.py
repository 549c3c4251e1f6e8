#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: supabase_keys
short_description: Keep the Supabase JWT secret and API keys consistent
version_added: 0.1.0
description:
  - Keeps the JWT secret of a self-hosted Supabase stack and the API keys signed with it in a JSON file on the target, and
    returns them, so that the keys always verify under the secret (no C(JWSInvalidSignature) from PostgREST).
  - The legacy keys are HS256 JWTs whose claims are exactly C(role) (V(anon) or V(service_role)), C(iss), C(iat) and
    C(exp), signed with the secret taken as raw UTF-8 bytes, as upstream's C(generate-keys.sh) makes them.
  - Keys found in the file are kept while they verify under the secret, carry the expected role and issuer and expire
    after the renewal window; otherwise they are minted again. Keys signed with another secret (such as the upstream
    demo keys, which expire on 2027-01-09) are therefore replaced.
  - With O(asymmetric=true) the file also holds an EC P-256 key pair and the keys derived from it in the formats of
    upstream's C(add-new-auth-keys.sh).
  - The file holds one JSON object whose members are named like the return values (RV(jwt_secret), RV(anon_key),
    RV(service_role_key) and, with O(asymmetric=true), the others); members it does not know are left as they are.
  - All input is validated before anything is written; the file is replaced atomically.
author:
  - SoulMatting maintainers (@soulmatting)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without writing the file.
    support: full
  diff_mode:
    description:
      - Will return which items would be kept, minted or replaced and their expiry dates, when in diff mode.
      - The diff never contains a secret or a key.
    support: full
options:
  path:
    description:
      - JSON file on the target that keeps the secret and the keys.
      - It is written with mode C(0600), owned by C(root:root) when the module runs as root (else by the user it runs as).
      - Its directory must exist.
    type: path
    required: true
  jwt_secret:
    description:
      - The JWT secret (C(JWT_SECRET)) to use, for example from Ansible Vault. At least 32 characters, on one line.
      - When left out, the secret stored in O(path) is used, or a new one (64 URL-safe random characters) is generated
        when there is none.
      - A secret that differs from the stored one replaces it, and every key is minted again.
    type: str
  issuer:
    description:
      - The C(iss) claim of the keys. Stored keys with another issuer are minted again.
    type: str
    default: supabase
  ttl_days:
    description:
      - Lifetime of newly minted keys in days (C(exp) - C(iat)). The default is upstream's five years.
      - Changing it does not re-mint keys that are still valid.
    type: int
    default: 1825
  renew_days:
    description:
      - Keys that expire within this many days are minted again. Must be smaller than O(ttl_days).
    type: int
    default: 30
  asymmetric:
    description:
      - Also keep an EC P-256 key pair and the new-style keys upstream derives from it, returned as RV(jwt_keys),
        RV(jwks), RV(anon_key_asymmetric), RV(service_role_key_asymmetric), RV(publishable_key) and RV(secret_key).
      - With V(false), asymmetric material already in the file is left there untouched and is not returned, unless the
        JWT secret changes, in which case it is removed (its symmetric member would carry the old secret) with a warning.
      - Needs the Python library C(cryptography) on the target.
    type: bool
    default: false
  force:
    description:
      - Rotate everything on purpose - generate a new secret (unless O(jwt_secret) is given), mint every key again and,
        with O(asymmetric=true), generate a new key pair and new opaque keys.
      - Cannot be combined with O(anon_key) or O(service_role_key).
      - A file that cannot be parsed is overwritten only with O(force=true).
    type: bool
    default: false
  rotate_signing_key:
    description:
      - With O(asymmetric=true), replace the EC key pair on purpose (the JWT secret and the legacy keys stay) and mint
        the ES256 keys again; the opaque keys stay, as they name roles, not key pairs.
      - The replaced pair's public key stays in RV(jwks) for O(grace_days), so tokens it signed keep verifying.
    type: bool
    default: false
  grace_days:
    description:
      - How long the public key of a key pair replaced by O(rotate_signing_key) or O(force) stays in RV(jwks), so that
        sessions signed before the rotation stay valid until then. V(0) drops it at once.
      - Every run drops the retired keys whose time has come.
    type: int
    default: 0
  anon_key:
    description:
      - An existing legacy V(anon) key to keep, for example from Ansible Vault.
      - It must verify under the secret with the expected role and issuer and expire after the renewal window; otherwise
        the task fails before anything is written (a key silently replaced would no longer match the vault).
    type: str
  service_role_key:
    description:
      - An existing legacy V(service_role) key to keep; checked like O(anon_key).
    type: str
  return_secrets:
    description:
      - Return the secret and the keys, for roles that template them into configuration. Off by default, as
        community.crypto's C(return_content) is, so that a task without C(no_log) shows no secret.
      - A value given in O(jwt_secret), O(anon_key) or O(service_role_key) is never returned (the caller has it), so
        nothing passed in a C(no_log) option appears in any output.
      - Register the result only in tasks with C(no_log=true) and use it only in tasks with C(no_log=true) (see the
        examples); Ansible shows a task's whole result at C(-v) and more otherwise.
      - With V(false) only non-secret facts are returned (RV(expires), RV(minted), RV(kid)).
    type: bool
    default: false
requirements:
  - PyJWT (Debian package C(python3-jwt))
  - cryptography, with O(asymmetric=true) (Debian package C(python3-cryptography))
notes:
  - Ansible cannot mark single return values as secret; a module only hides the values of its own C(no_log) options.
    With O(return_secrets=true), always set C(no_log=true) on the task that registers this module's result. The
    invocation arguments in the result are masked regardless.
  - In check mode, newly minted values are returned but not stored, so a later real run mints different ones.
  - The JWKS contains the symmetric secret as an C(oct) key, as upstream's does (PostgREST verifies HS256 and ES256 keys
    from one key set), so it is as secret as the JWT secret.
  - With the asymmetric keys in use, upstream gives PostgREST the JWKS as C(PGRST_JWT_SECRET) and Auth the key set
    as C(GOTRUE_JWT_KEYS).
  - The opaque keys use upstream's checksum (SHA-256 over C(supabase-self-hosted|<prefix><random>)); the gateway maps
    them to the ES256 keys.
  - Tested with PyJWT 2.15 against PostgreSQL 15, reproducing PostgREST's request flow (verify the key, C(SET LOCAL ROLE),
    C(request.jwt.claims), row-level security).
seealso:
  - name: Self-hosting with Docker
    description: Upstream's guide, which explains the JWT secret and the API keys.
    link: https://supabase.com/docs/guides/self-hosting/docker
'''

EXAMPLES = r'''
- name: Ensure the JWT secret and the API keys (generated on the first run, kept afterwards)
  soulmatting.selfhosted.supabase_keys:
    path: /etc/supabase/keys.json
    return_secrets: true
  register: supabase_keys
  no_log: true  # the result holds the secret and the keys

- name: Write the keys into the stack's environment file
  ansible.builtin.template:
    src: supabase.env.j2  # uses supabase_keys.jwt_secret, supabase_keys.anon_key, supabase_keys.service_role_key
    dest: /opt/supabase/.env
    owner: root
    group: root
    mode: "0600"
  no_log: true
  diff: false

- name: Show when the keys expire (not secret)
  ansible.builtin.debug:
    var: supabase_keys.expires

- name: Check that the keys kept in Ansible Vault match the secret kept there (nothing secret is returned)
  soulmatting.selfhosted.supabase_keys:
    path: /etc/supabase/keys.json
    jwt_secret: "{{ vault_supabase_jwt_secret }}"
    anon_key: "{{ vault_supabase_anon_key }}"
    service_role_key: "{{ vault_supabase_service_role_key }}"

- name: With a secret from Ansible Vault, mint the keys and return them (the secret itself is not returned)
  soulmatting.selfhosted.supabase_keys:
    path: /etc/supabase/keys.json
    jwt_secret: "{{ vault_supabase_jwt_secret }}"
    return_secrets: true
  register: supabase_keys
  no_log: true

- name: Also the asymmetric key pair, the ES256 keys and the opaque sb_publishable_/sb_secret_ keys
  soulmatting.selfhosted.supabase_keys:
    path: /etc/supabase/keys.json
    asymmetric: true
    return_secrets: true
  register: supabase_keys
  no_log: true

- name: Rotate everything (every client needs the new keys afterwards)
  soulmatting.selfhosted.supabase_keys:
    path: /etc/supabase/keys.json
    force: true
    return_secrets: true
  register: supabase_keys
  no_log: true

- name: Only check expiry, without secrets in the result
  soulmatting.selfhosted.supabase_keys:
    path: /etc/supabase/keys.json
  check_mode: true
  register: supabase_keys_state
'''

RETURN = r'''
path:
  description: The file that keeps the secret and the keys.
  returned: always
  type: str
  sample: /etc/supabase/keys.json
minted:
  description: Names of the items generated or minted by this run (empty when everything was kept).
  returned: always
  type: list
  elements: str
  sample: [anon_key, service_role_key]
expires:
  description: Expiry (C(exp)) of each JWT key, as an ISO 8601 UTC time.
  returned: always
  type: dict
  sample: {anon_key: "2031-11-22T10:00:00Z", service_role_key: "2031-11-22T10:00:00Z"}
kid:
  description: Key ID of the EC key pair.
  returned: when O(asymmetric=true)
  type: str
  sample: 3f0c2a8e-6a0b-4f57-9d8c-2b1f0e6f7a11
retired:
  description: The key IDs of earlier key pairs still in RV(jwks), with the time each leaves it (ISO 8601 UTC).
  returned: when O(asymmetric=true)
  type: dict
  sample: {"0b5e8f3c-2d41-4a5e-9b0e-5c3e1f2a7d90": "2026-12-01T10:00:00Z"}
jwt_secret:
  description: The JWT secret (C(JWT_SECRET)).
  returned: when O(return_secrets=true) and O(jwt_secret) was not given
  type: str
anon_key:
  description: The legacy HS256 V(anon) key (C(ANON_KEY)).
  returned: when O(return_secrets=true) and O(anon_key) was not given
  type: str
service_role_key:
  description: The legacy HS256 V(service_role) key (C(SERVICE_ROLE_KEY)).
  returned: when O(return_secrets=true) and O(service_role_key) was not given
  type: str
jwt_keys:
  description:
    - C(JWT_KEYS) for Auth (C(GOTRUE_JWT_KEYS)) - the private EC JWK (C(kid), C(alg=ES256), C(use=sig),
      C(key_ops=[sign, verify])) and the secret as an C(oct) JWK. Use P(ansible.builtin.to_json#filter) to put it in
      an environment variable.
  returned: when O(asymmetric=true) and O(return_secrets=true)
  type: list
  elements: dict
jwks:
  description:
    - C(JWT_JWKS) for PostgREST, Realtime and Storage - a dict whose C(keys) list holds the public EC JWK and the C(oct) JWK.
  returned: when O(asymmetric=true) and O(return_secrets=true)
  type: dict
anon_key_asymmetric:
  description: The ES256 V(anon) key, with the C(kid) in its header (C(ANON_KEY_ASYMMETRIC)).
  returned: when O(asymmetric=true) and O(return_secrets=true)
  type: str
service_role_key_asymmetric:
  description: The ES256 V(service_role) key (C(SERVICE_ROLE_KEY_ASYMMETRIC)).
  returned: when O(asymmetric=true) and O(return_secrets=true)
  type: str
publishable_key:
  description: The opaque publishable key, C(sb_publishable_...) (C(SUPABASE_PUBLISHABLE_KEY)).
  returned: when O(asymmetric=true) and O(return_secrets=true)
  type: str
secret_key:
  description: The opaque secret key, C(sb_secret_...) (C(SUPABASE_SECRET_KEY)).
  returned: when O(asymmetric=true) and O(return_secrets=true)
  type: str
'''

import json
import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.soulmatting.selfhosted.plugins.module_utils._supabase_keys import (
    ASYMMETRIC_FIELDS,
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
    HAS_JWT,
    JWT_IMPORT_ERROR,
    SECRET_FIELDS,
    SupabaseKeysError,
    format_time,
    plan_keys,
)

FILE_MODE = 0o600
NO_LOG_OPTIONS = ('jwt_secret', 'anon_key', 'service_role_key')


def read_current(module, path):
    """The stored state (None when there is no file); fails on a file that cannot be used, unless force."""
    if not os.path.exists(path):
        return None
    if os.path.isdir(path):
        module.fail_json(msg='%s is a directory, not a file.' % path)
    try:
        with open(path, 'rb') as handle:
            data = json.loads(handle.read().decode('utf-8'))
    except (IOError, OSError) as exc:
        module.fail_json(msg='Cannot read %s: %s.' % (path, to_native(exc.strerror or exc)))
    except ValueError:
        data = None
    if isinstance(data, dict):
        return data
    if module.params['force']:
        return None
    module.fail_json(msg='%s is not a JSON object as this module writes; fix or remove it, or set force=true to overwrite it.' % path)


def file_state(path):
    """Mode and ownership of path, or None when it does not exist."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {'mode': st.st_mode & 0o7777, 'uid': st.st_uid, 'gid': st.st_gid}


def wanted_owner():
    # Root makes the file root's; anyone else cannot give files away, so their own user is fine.
    return (0, 0) if os.geteuid() == 0 else None


def needs_fixing(state):
    owner = wanted_owner()
    return state['mode'] != FILE_MODE or (owner is not None and (state['uid'], state['gid']) != owner)


def describe_file(state):
    if state is None:
        return 'absent'
    return 'mode %04o, owner %d:%d' % (state['mode'], state['uid'], state['gid'])


def fix_attributes(path):
    os.chmod(path, FILE_MODE)
    owner = wanted_owner()
    if owner is not None:
        os.chown(path, owner[0], owner[1])


def write_file(module, path, state):
    """Write the state atomically; the content never exists under a mode wider than 0600."""
    directory = os.path.dirname(path) or '.'
    if not os.path.isdir(directory):
        module.fail_json(msg='The directory %s of path does not exist.' % directory)
    content = json.dumps(state, indent=2, sort_keys=True) + '\n'
    if os.path.exists(path):
        # atomic_move copies the old file's mode onto the new one.
        fix_attributes(path)
    fd, tmp_path = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(content.encode('utf-8'))
            handle.flush()
            os.fsync(handle.fileno())
        # atomic_move gives a new file 0666 & ~umask.
        old_umask = os.umask(0o077)
        try:
            module.atomic_move(tmp_path, path)
        finally:
            os.umask(old_umask)
    finally:
        if os.path.exists(tmp_path):
            os.unlink(tmp_path)
    fix_attributes(path)


def masked_params(params):
    return dict((key, 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' if key in NO_LOG_OPTIONS and value is not None else value)
                for key, value in params.items())


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            jwt_secret=dict(type='str', no_log=True),
            issuer=dict(type='str', default='supabase'),
            ttl_days=dict(type='int', default=1825),
            renew_days=dict(type='int', default=30),
            asymmetric=dict(type='bool', default=False),
            force=dict(type='bool', default=False),
            rotate_signing_key=dict(type='bool', default=False),
            grace_days=dict(type='int', default=0),
            anon_key=dict(type='str', no_log=True),
            service_role_key=dict(type='str', no_log=True),
            return_secrets=dict(type='bool', default=False, no_log=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not HAS_JWT:
        module.fail_json(msg=missing_required_lib('PyJWT'), exception=JWT_IMPORT_ERROR)
    if params['asymmetric'] and not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib('cryptography'), exception=CRYPTOGRAPHY_IMPORT_ERROR)

    path = params['path']
    current = read_current(module, path)
    try:
        plan = plan_keys(current, params, now=int(time.time()))
    except SupabaseKeysError as exc:
        module.fail_json(msg=str(exc))
    for warning in plan.warnings:
        module.warn(warning)

    before_file = file_state(path)
    content_changed = current is None or plan.state != current
    attributes_changed = before_file is not None and needs_fixing(before_file)
    changed = content_changed or attributes_changed

    if changed and not module.check_mode:
        try:
            if content_changed:
                write_file(module, path, plan.state)
            else:
                fix_attributes(path)
        except (IOError, OSError) as exc:
            module.fail_json(msg='Cannot write %s: %s.' % (path, to_native(exc.strerror or exc)))

    result = dict(
        changed=changed,
        path=path,
        minted=plan.minted,
        expires=plan.expires,
        invocation=dict(module_args=masked_params(params)),
    )
    if plan.kid:
        result['kid'] = plan.kid
        result['retired'] = dict((entry['jwk'].get('kid'), format_time(entry['retire_at']))
                                 for entry in plan.state.get('retired_keys', []))
    if module._diff:
        before = dict(plan.before, file=describe_file(before_file))
        owner = wanted_owner() or (os.geteuid(), before_file['gid'] if before_file else os.getegid())
        after = dict(plan.after, file=describe_file(dict(mode=FILE_MODE, uid=owner[0], gid=owner[1])))
        result['diff'] = dict(before=before, after=after, before_header=path, after_header=path)
    if params['return_secrets']:
        # What the caller gave stays with the caller: it is never returned, so it cannot be printed.
        given = set(name for name in NO_LOG_OPTIONS if params[name] is not None)
        for name in SECRET_FIELDS:
            if name in plan.state and name not in given and (params['asymmetric'] or name not in ASYMMETRIC_FIELDS):
                result[name] = plan.state[name]
    module.exit_json(**result)


if __name__ == '__main__':
    main()
