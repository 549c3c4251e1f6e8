# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The stack's secret store on the controller: one file per secret, generated once, kept.

Private to this collection (leading underscore): no compatibility promise to other collections.

Every generated secret of the stack has one name (the variable that can supply it instead, for
example from ansible-vault) and one file named after it in the store directory. Lookups run on
the controller, so every play and every host reads the same file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import fcntl
import os
import secrets
import string
import tempfile

ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
HEX = '0123456789abcdef'

# name: (length, alphabet, what it is). One entry per secret of the stack; the name is also the
# variable that supplies it instead. Lengths follow what each consumer demands (REALTIME's
# DB_ENC_KEY is exactly 16 characters, SECRET_KEY_BASE at least 64, the JWT secret at least 32).
CATALOGUE = {
    'postgres_password': (40, ALNUM, 'password of the database admin and of the Supabase service roles'),
    'redis_password': (40, ALNUM, 'password every Redis client gives'),
    'minio_root_password': (40, ALNUM, 'root password of the S3 object store'),
    'supabase_jwt_secret': (64, ALNUM, 'JWT secret that signs and verifies the API keys and sessions'),
    'supabase_dashboard_password': (32, ALNUM, 'password of the Studio dashboard login'),
    'supabase_secret_key_base': (64, ALNUM, 'SECRET_KEY_BASE of Realtime and the pooler'),
    'supabase_realtime_db_enc_key': (16, ALNUM, 'DB_ENC_KEY of Realtime (exactly 16 characters)'),
    'supabase_vault_enc_key': (32, ALNUM, 'VAULT_ENC_KEY of the pooler'),
    'supabase_pg_meta_crypto_key': (32, ALNUM, 'CRYPTO_KEY of postgres-meta'),
    'supabase_storage_s3_access_key': (20, UPPER_ALNUM, "access key ID of the Storage service's own S3 identity"),
    'supabase_storage_s3_secret_key': (40, ALNUM, "secret key of the Storage service's own S3 identity"),
    'supabase_s3_protocol_access_key': (32, HEX, "access key ID of Storage's S3 protocol endpoint"),
    'supabase_s3_protocol_secret_key': (64, HEX, "secret key of Storage's S3 protocol endpoint"),
    'supabase_logflare_public_token': (40, ALNUM, 'public access token of Logflare (analytics)'),
    'supabase_logflare_private_token': (40, ALNUM, 'private access token of Logflare (analytics)'),
    'traefik_dashboard_password': (32, ALNUM, 'password of the proxy dashboard login'),
    'monitoring_grafana_admin_password': (32, ALNUM, 'password of the Grafana admin user'),
    'backup_cipher_passphrase': (64, ALNUM, 'passphrase that encrypts the backups at rest'),
}

# The store keeps nothing but secrets: git and the collection build must never pick it up.
GITIGNORE = '.gitignore'
LOCK = '.lock'


class SecretStoreError(Exception):
    """A failure phrased as one sentence for the user."""


def describe(name):
    """The catalogue entry of NAME; fails with the known names when it is not one."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise SecretStoreError('%r is not a secret of the stack; known secrets: %s.' % (name, ', '.join(sorted(CATALOGUE))))


def generate(name):
    length, alphabet, dummy = describe(name)
    return ''.join(secrets.choice(alphabet) for dummy in range(length))


def _read(path):
    with open(path, 'r') as handle:
        value = handle.read().rstrip('\n')
    # Stores written by ansible.builtin.password (collection 0.1.0) may carry " salt=..." after the value.
    return value.split(' salt=', 1)[0]


def _ensure_directory(directory):
    try:
        os.makedirs(directory, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise SecretStoreError('Cannot create the secret store %s: %s.' % (directory, exc.strerror))
    if not os.path.isdir(directory):
        raise SecretStoreError('The secret store %s is not a directory.' % directory)
    marker = os.path.join(directory, GITIGNORE)
    if not os.path.exists(marker):
        with open(marker, 'w') as handle:
            handle.write('# The secret store of the soulmatting.selfhosted collection: never commit it.\n*\n')


def _write_new(directory, name, value):
    """Create the file atomically, readable by its owner only; never replace one that exists."""
    fd, tmp_path = tempfile.mkstemp(prefix='.%s.' % name, dir=directory)
    try:
        with os.fdopen(fd, 'w') as handle:
            handle.write(value + '\n')
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o600)
        os.link(tmp_path, os.path.join(directory, name))
    finally:
        os.unlink(tmp_path)


def get(directory, name):
    """The value of secret NAME in DIRECTORY, generated and stored on first use.

    Safe against concurrent callers (Ansible forks): creation happens under an exclusive lock
    and never overwrites a file that appeared meanwhile.
    """
    describe(name)
    if not directory:
        raise SecretStoreError('The secret store directory (selfhosted_secrets_dir) is empty.')
    directory = os.path.abspath(os.path.expanduser(directory))
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        _create(directory, name, path)
    value = _read(path)
    if not value:
        raise SecretStoreError('The secret file %s is empty; remove it to generate a new value, or fill it.' % path)
    return value


def _create(directory, name, path):
    _ensure_directory(directory)
    with open(os.path.join(directory, LOCK), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not os.path.isfile(path):
                _write_new(directory, name, generate(name))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def replace(directory, name, value=None):
    """Puts VALUE (or a newly generated one) in place of secret NAME; returns whether it changed.

    The file is replaced atomically under the store's lock, so concurrent readers see the old or the new
    value, never a half-written one.
    """
    describe(name)
    if value is not None and (not value or '\n' in value):
        raise SecretStoreError('The new value of %s is empty or spans lines.' % name)
    directory = os.path.abspath(os.path.expanduser(directory))
    _ensure_directory(directory)
    path = os.path.join(directory, name)
    with open(os.path.join(directory, LOCK), 'a') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            old = _read(path) if os.path.isfile(path) else None
            new = generate(name) if value is None else value
            if new == old:
                return False
            fd, tmp_path = tempfile.mkstemp(prefix='.%s.' % name, dir=directory)
            try:
                with os.fdopen(fd, 'w') as handle:
                    handle.write(new + '\n')
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(tmp_path, 0o600)
                os.rename(tmp_path, path)
            finally:
                if os.path.exists(tmp_path):
                    os.unlink(tmp_path)
            return True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
