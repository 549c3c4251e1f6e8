"""Integration tests of soulmatting.selfhosted.supabase_keys through ansible-playbook on localhost.

Every run goes through the real controller and module transport. Results are read with the ansible.posix.json
callback (keys.yml turns no_log off for that); documented.yml runs the module the way its documentation shows
and its -vvv output is searched for every secret.
"""

import json
import os
import stat

import jwt
import pytest

from playbook_runner import run_playbook

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
KEYS_PLAYBOOK = os.path.join(HERE, 'keys.yml')
DOCUMENTED_PLAYBOOK = os.path.join(HERE, 'documented.yml')
JSON_CALLBACK = {'ANSIBLE_STDOUT_CALLBACK': 'ansible.posix.json'}
SECRET = 'integration-secret-that-is-long-enough-0123'
OTHER_SECRET = 'second-integration-secret-long-enough-98765'


def run_keys(path, check=False, diff=False, **options):
    """Run keys.yml; return (task result, process)."""
    extra = {'keys_path': str(path), 'keys_no_log': False}
    extra.update(('keys_' + name, value) for name, value in options.items())
    proc = run_playbook(KEYS_PLAYBOOK, extra_vars=extra, check=check, diff=diff, env=JSON_CALLBACK)
    try:
        output = json.loads(proc.stdout)
    except ValueError:
        pytest.fail('ansible-playbook printed no JSON:\n%s\n%s' % (proc.stdout, proc.stderr))
    result = output['plays'][0]['tasks'][0]['hosts']['localhost']
    return result, proc


def verify_legacy(token, secret, role):
    claims = jwt.decode(token, secret.encode('utf-8'), algorithms=['HS256'])
    assert set(claims) == {'role', 'iss', 'iat', 'exp'}
    assert claims['role'] == role and claims['iss'] == 'supabase'
    assert claims['exp'] - claims['iat'] == 1825 * 86400
    return claims


def test_first_run_creates_0600_file_and_second_run_is_unchanged(tmp_path):
    path = tmp_path / 'keys.json'
    result, proc = run_keys(path)
    assert proc.returncode == 0, proc.stderr
    assert result['changed'] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    if os.geteuid() == 0:
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (0, 0)
    stored = json.loads(path.read_text())
    assert result['jwt_secret'] == stored['jwt_secret'] and len(stored['jwt_secret']) >= 32
    verify_legacy(stored['anon_key'], stored['jwt_secret'], 'anon')
    verify_legacy(stored['service_role_key'], stored['jwt_secret'], 'service_role')
    content = path.read_bytes()

    result, proc = run_keys(path)
    assert proc.returncode == 0, proc.stderr
    assert result['changed'] is False
    assert result['minted'] == []
    assert path.read_bytes() == content


def test_changed_secret_remints_the_keys(tmp_path):
    path = tmp_path / 'keys.json'
    first, proc = run_keys(path, jwt_secret=SECRET)
    assert proc.returncode == 0, proc.stderr
    second, proc = run_keys(path, jwt_secret=OTHER_SECRET)
    assert proc.returncode == 0, proc.stderr
    assert second['changed'] is True
    assert second['minted'] == ['anon_key', 'service_role_key']
    stored = json.loads(path.read_text())
    assert stored['jwt_secret'] == OTHER_SECRET
    assert stored['anon_key'] != first['anon_key']
    verify_legacy(stored['anon_key'], OTHER_SECRET, 'anon')
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(first['anon_key'], OTHER_SECRET.encode(), algorithms=['HS256'])
    third, proc = run_keys(path, jwt_secret=OTHER_SECRET)
    assert third['changed'] is False


def test_short_secret_fails_cleanly_and_writes_nothing(tmp_path):
    path = tmp_path / 'keys.json'
    result, proc = run_keys(path, jwt_secret='only-twenty-chars-12')
    assert proc.returncode != 0
    assert result['failed'] is True
    assert result['msg'] == 'The JWT secret given in jwt_secret has 20 characters; Supabase needs at least 32.'
    # ansible-core 2.19 adds exception='(traceback unavailable)' to every failure; a real traceback would show here.
    assert 'Traceback' not in proc.stdout + proc.stderr
    assert result.get('exception', '(traceback unavailable)') == '(traceback unavailable)'
    assert list(tmp_path.iterdir()) == []

    run_keys(path, jwt_secret=SECRET)
    content = path.read_bytes()
    result, proc = run_keys(path, jwt_secret='only-twenty-chars-12')
    assert result['failed'] is True
    assert path.read_bytes() == content


def test_check_mode_writes_nothing(tmp_path):
    path = tmp_path / 'keys.json'
    result, proc = run_keys(path, check=True, diff=True, asymmetric=True)
    assert proc.returncode == 0, proc.stderr
    assert result['changed'] is True
    assert list(tmp_path.iterdir()) == []
    assert result['diff']['before']['file'] == 'absent'

    run_keys(path, jwt_secret=SECRET)
    content = path.read_bytes()
    result, proc = run_keys(path, check=True, diff=True, jwt_secret=OTHER_SECRET)
    assert result['changed'] is True
    assert result['diff']['before']['anon_key'] == 'stored key is signed with another secret'
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ['keys.json']


def test_given_key_from_another_secret_fails_and_writes_nothing(tmp_path):
    foreign = jwt.encode({'role': 'anon', 'iss': 'supabase', 'iat': 1700000000, 'exp': 1900000000},
                         OTHER_SECRET.encode(), algorithm='HS256')
    result, proc = run_keys(tmp_path / 'keys.json', jwt_secret=SECRET, anon_key=foreign)
    assert result['failed'] is True
    assert result['msg'].startswith('The anon_key given is signed with another secret')
    assert list(tmp_path.iterdir()) == []


def test_asymmetric_keys_verify_against_the_jwks_and_are_stable(tmp_path):
    path = tmp_path / 'keys.json'
    result, proc = run_keys(path, asymmetric=True)
    assert proc.returncode == 0, proc.stderr
    stored = json.loads(path.read_text())
    jwks = stored['jwks']
    assert result['jwks'] == jwks and result['kid'] == jwks['keys'][0]['kid']
    for name, role in (('anon_key_asymmetric', 'anon'), ('service_role_key_asymmetric', 'service_role')):
        token = stored[name]
        header = jwt.get_unverified_header(token)
        assert header['alg'] == 'ES256'
        key = jwt.PyJWKSet.from_dict(jwks)[header['kid']].key
        assert jwt.decode(token, key, algorithms=['ES256'])['role'] == role
    assert stored['publishable_key'].startswith('sb_publishable_')
    assert stored['secret_key'].startswith('sb_secret_')
    content = path.read_bytes()
    result, proc = run_keys(path, asymmetric=True)
    assert result['changed'] is False
    assert path.read_bytes() == content


def _secret_values(stored):
    values = [stored['jwt_secret'], stored['anon_key'], stored['service_role_key'], stored['anon_key_asymmetric'],
              stored['service_role_key_asymmetric'], stored['publishable_key'], stored['secret_key'],
              stored['jwt_keys'][0]['d'], stored['jwt_keys'][1]['k']]
    # Signatures alone are secret-derived too; catch a key printed in part.
    values += [token.rsplit('.', 1)[1] for token in values[1:5]]
    return values


@pytest.mark.parametrize('given_secret', [None, SECRET], ids=['generated-secret', 'given-secret'])
def test_documented_use_prints_no_secret_at_vvv(tmp_path, given_secret):
    path = tmp_path / 'keys.json'
    env_path = tmp_path / 'supabase.env'
    extra = {'keys_path': str(path), 'env_path': str(env_path)}
    if given_secret:
        extra['keys_jwt_secret'] = given_secret
    outputs = []
    for dummy in range(2):  # the first run mints, the second keeps
        proc = run_playbook(DOCUMENTED_PLAYBOOK, extra_vars=extra, diff=True, verbosity=3)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    stored = json.loads(path.read_text())
    # The run was real: the values reached the environment file, unmasked.
    env = env_path.read_text()
    assert 'ANON_KEY=%s\n' % stored['anon_key'] in env
    assert 'JWT_SECRET=%s\n' % stored['jwt_secret'] in env
    assert 'SUPABASE_SECRET_KEY=%s\n' % stored['secret_key'] in env
    assert 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER' not in env
    for output in outputs:
        assert 'supabase_keys.expires' in output
        assert 'anon_key_asymmetric' in output  # the expiry facts are shown
        for value in _secret_values(stored):
            assert value not in output
