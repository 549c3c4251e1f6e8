"""The keys supabase_keys writes, used the way PostgREST uses them, against a real PostgreSQL.

A private PostgreSQL cluster (Debian's postgresql package, /usr/lib/postgresql/<version>/bin) is created in a
temporary directory, started on a free loopback port and stopped at teardown. It gets Supabase's request roles
(anon, authenticated, service_role with BYPASSRLS, authenticator which logs in with a password and holds no
privileges itself) and a table under row-level security.

Each request then follows PostgREST: verify the JWT (HS256 with the secret as raw bytes, or by kid from the
JWKS), connect as authenticator, SET LOCAL ROLE to the role claim, publish the claims in request.jwt.claims, and
query. PostgREST itself is not available here; this reproduces its documented flow step by step.
"""

import base64
import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import jwt
import pytest

from playbook_runner import run_playbook

import psycopg
from psycopg import sql

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
AUTHENTICATOR_PASSWORD = 'authenticator-test-password'
OTHER_SECRET = 'a-secret-the-stack-does-not-use-0123456789'


class RequestRefused(Exception):
    """What PostgREST answers with 401 (PGRST301 and friends)."""


def _pg_bin():
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'))
    if not found:
        pytest.fail('PostgreSQL server binaries not found: apt-get install -y postgresql')
    return os.path.dirname(found[-1])


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _as_postgres(cmd):
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        cmd = ['runuser', '-u', 'postgres', '--'] + cmd
    return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)


SETUP_SQL = """
CREATE ROLE anon NOLOGIN NOINHERIT;
CREATE ROLE authenticated NOLOGIN NOINHERIT;
CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
CREATE ROLE authenticator LOGIN NOINHERIT PASSWORD '{password}';
GRANT anon, authenticated, service_role TO authenticator;
CREATE TABLE public.notes (id int PRIMARY KEY, body text NOT NULL, published boolean NOT NULL);
INSERT INTO public.notes VALUES (1, 'public note', true), (2, 'draft', false), (3, 'another public note', true);
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY read_published ON public.notes FOR SELECT TO anon, authenticated USING (published);
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
GRANT SELECT ON public.notes TO anon, authenticated, service_role;
"""


@pytest.fixture(scope='module')
def postgres():
    """A private PostgreSQL cluster on a free loopback port; yields a dict with port and socket dir."""
    bin_dir = _pg_bin()
    workdir = tempfile.mkdtemp(prefix='supabase-keys-pg-')
    data_dir = os.path.join(workdir, 'data')
    os.makedirs(data_dir)
    if os.geteuid() == 0:
        pg_user = pwd.getpwnam('postgres')
        for directory in (workdir, data_dir):
            os.chown(directory, pg_user.pw_uid, pg_user.pw_gid)
    port = _free_port()
    log = os.path.join(workdir, 'postgres.log')
    proc = _as_postgres([os.path.join(bin_dir, 'initdb'), '-D', data_dir, '-U', 'postgres', '--auth-local=trust',
                         '--auth-host=scram-sha-256', '--no-sync'])
    assert proc.returncode == 0, proc.stderr
    proc = _as_postgres([os.path.join(bin_dir, 'pg_ctl'), '-D', data_dir, '-l', log, '-w', '-t', '60', 'start', '-o',
                         '-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off' % (port, workdir)])
    if proc.returncode != 0:
        with open(log) as handle:
            pytest.fail('PostgreSQL did not start: %s %s' % (proc.stderr, handle.read()))
    try:
        with psycopg.connect(host=workdir, port=port, user='postgres', dbname='postgres', autocommit=True) as conn:
            conn.execute(SETUP_SQL.format(password=AUTHENTICATOR_PASSWORD))
        yield {'port': port, 'socket_dir': workdir}
    finally:
        _as_postgres([os.path.join(bin_dir, 'pg_ctl'), '-D', data_dir, '-m', 'immediate', '-w', 'stop'])
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope='module')
def keys(tmp_path_factory):
    """The key file written by the module (asymmetric on), through ansible-playbook."""
    path = tmp_path_factory.mktemp('keys') / 'keys.json'
    proc = run_playbook(os.path.join(HERE, 'keys.yml'), extra_vars={'keys_path': str(path), 'keys_asymmetric': True})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(str(path)) as handle:
        return json.load(handle)


def verify_like_postgrest(token, jwt_secret=None, jwks=None):
    """Return the claims, or raise RequestRefused: PostgREST's JWT check with PGRST_JWT_SECRET as secret or JWKS."""
    try:
        if jwks is None:
            return jwt.decode(token, jwt_secret.encode('utf-8'), algorithms=['HS256'])
        header = jwt.get_unverified_header(token)
        key_set = jwt.PyJWKSet.from_dict(jwks)
        candidates = [k for k in key_set.keys if (header.get('kid') is None or k.key_id == header.get('kid'))
                      and k.algorithm_name == header.get('alg')]
        for candidate in candidates:
            try:
                return jwt.decode(token, candidate.key, algorithms=[candidate.algorithm_name])
            except jwt.InvalidSignatureError:
                continue
        raise RequestRefused('no key in the JWKS verifies this token')
    except jwt.PyJWTError as exc:
        raise RequestRefused('JWSError: %s' % exc)


def request(postgres, token, **verify):
    """GET /notes as PostgREST would serve it: the ids visible to the token's role, and the role seen by SQL."""
    claims = verify_like_postgrest(token, **verify)
    with psycopg.connect(host='127.0.0.1', port=postgres['port'], user='authenticator', password=AUTHENTICATOR_PASSWORD,
                         dbname='postgres') as conn:
        with conn.transaction():
            conn.execute(sql.SQL('SET LOCAL ROLE {}').format(sql.Identifier(claims['role'])))
            conn.execute("SELECT set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
            ids = [row[0] for row in conn.execute('SELECT id FROM public.notes ORDER BY id')]
            seen = conn.execute("SELECT current_user, current_setting('request.jwt.claims', true)::json->>'role'").fetchone()
    return ids, seen


def test_authenticator_alone_sees_nothing(postgres):
    with psycopg.connect(host='127.0.0.1', port=postgres['port'], user='authenticator', password=AUTHENTICATOR_PASSWORD,
                         dbname='postgres') as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute('SELECT id FROM public.notes')


def test_anon_key_sees_only_what_the_policy_allows(postgres, keys):
    ids, seen = request(postgres, keys['anon_key'], jwt_secret=keys['jwt_secret'])
    assert ids == [1, 3]
    assert seen == ('anon', 'anon')


def test_service_role_key_sees_everything(postgres, keys):
    ids, seen = request(postgres, keys['service_role_key'], jwt_secret=keys['jwt_secret'])
    assert ids == [1, 2, 3]
    assert seen == ('service_role', 'service_role')


def test_key_signed_with_another_secret_is_refused(postgres, keys):
    forged = jwt.encode(jwt.decode(keys['service_role_key'], options={'verify_signature': False}),
                        OTHER_SECRET.encode(), algorithm='HS256')
    with pytest.raises(RequestRefused, match='Signature verification failed'):
        request(postgres, forged, jwt_secret=keys['jwt_secret'])
    # The same claims under the right secret pass: only the signature made the difference.
    resigned = jwt.encode(jwt.decode(forged, options={'verify_signature': False}), keys['jwt_secret'].encode(), algorithm='HS256')
    assert request(postgres, resigned, jwt_secret=keys['jwt_secret'])[0] == [1, 2, 3]


def test_secret_decoded_as_base64_does_not_verify(keys):
    # The classic self-hosting mistake: a generator that base64- or hex-decodes the secret instead of using its bytes.
    decoded = base64.urlsafe_b64decode(keys['jwt_secret'] + '=' * (-len(keys['jwt_secret']) % 4))
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(keys['anon_key'], decoded, algorithms=['HS256'])
    assert jwt.decode(keys['anon_key'], keys['jwt_secret'].encode('utf-8'), algorithms=['HS256'])['role'] == 'anon'


def test_es256_keys_work_with_the_jwks(postgres, keys):
    assert request(postgres, keys['anon_key_asymmetric'], jwks=keys['jwks'])[0] == [1, 3]
    assert request(postgres, keys['service_role_key_asymmetric'], jwks=keys['jwks'])[0] == [1, 2, 3]
    # With the JWKS configured, the legacy HS256 keys still verify through its oct member.
    assert request(postgres, keys['anon_key'], jwks=keys['jwks'])[0] == [1, 3]
    assert request(postgres, keys['service_role_key'], jwks=keys['jwks'])[0] == [1, 2, 3]


def test_es256_key_from_another_pair_is_refused(postgres, keys):
    from cryptography.hazmat.primitives.asymmetric import ec

    claims = jwt.decode(keys['service_role_key_asymmetric'], options={'verify_signature': False})
    kid = jwt.get_unverified_header(keys['service_role_key_asymmetric'])['kid']
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm='ES256', headers={'kid': kid})
    with pytest.raises(RequestRefused):
        request(postgres, forged, jwks=keys['jwks'])


def test_opaque_keys_have_the_documented_shape(keys):
    for name, prefix in (('publishable_key', 'sb_publishable_'), ('secret_key', 'sb_secret_')):
        value = keys[name]
        assert value.startswith(prefix)
        assert len(value) == len(prefix) + 22 + 1 + 8
        assert value[len(prefix) + 22] == '_'
