"""Unit tests of the supabase_keys module: file handling, check and diff modes, what it returns."""

import json
import os
import stat

import jwt

from ansible_collections.soulmatting.selfhosted.plugins.modules import supabase_keys

SECRET = 'a-test-secret-that-is-long-enough-0123456789'
OTHER_SECRET = 'another-secret-of-at-least-thirty-two-chars!!'


def run(run_module, args, check_mode=False, diff=False):
    """Run the module in-process and return its JSON result (asking for the secrets unless told otherwise)."""
    return run_module(supabase_keys.main, dict({'return_secrets': True}, **args), check_mode=check_mode, diff=diff)


def file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_creates_file_0600_and_returns_matching_keys(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    result = run(run_module, {'path': str(path)})
    assert result['changed'] is True
    assert file_mode(path) == 0o600
    if os.geteuid() == 0:
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (0, 0)
    stored = json.loads(path.read_text())
    assert set(stored) == {'jwt_secret', 'anon_key', 'service_role_key'}
    for name in stored:
        assert result[name] == stored[name]
    claims = jwt.decode(result['anon_key'], stored['jwt_secret'].encode(), algorithms=['HS256'])
    assert claims['role'] == 'anon'
    assert result['minted'] == ['jwt_secret', 'anon_key', 'service_role_key']
    assert [p.name for p in tmp_path.iterdir()] == ['keys.json']


def test_second_run_is_unchanged_and_leaves_file_alone(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    first = run(run_module, {'path': str(path)})
    content = path.read_bytes()
    second = run(run_module, {'path': str(path)})
    assert second['changed'] is False
    assert second['minted'] == []
    assert path.read_bytes() == content
    assert second['anon_key'] == first['anon_key']


def test_check_mode_writes_nothing(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    result = run(run_module, {'path': str(path)}, check_mode=True)
    assert result['changed'] is True
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []

    run(run_module, {'path': str(path), 'jwt_secret': SECRET})
    content = path.read_bytes()
    result = run(run_module, {'path': str(path), 'jwt_secret': OTHER_SECRET}, check_mode=True)
    assert result['changed'] is True
    assert result['minted'] == ['anon_key', 'service_role_key']
    assert path.read_bytes() == content


def test_diff_names_changes_without_secrets(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    run(run_module, {'path': str(path), 'jwt_secret': SECRET, 'asymmetric': True})
    stored = json.loads(path.read_text())
    result = run(run_module, {'path': str(path), 'jwt_secret': OTHER_SECRET, 'asymmetric': True}, diff=True)
    diff = result['diff']
    assert diff['before']['anon_key'] == 'stored key is signed with another secret'
    assert diff['after']['anon_key'].startswith('minted, valid until ')
    assert diff['before']['anon_key_asymmetric'] == diff['after']['anon_key_asymmetric']
    text = json.dumps(diff)
    new = json.loads(path.read_text())
    for value in (SECRET, OTHER_SECRET, stored['anon_key'], new['anon_key'], new['jwt_keys'][0]['d'], new['jwt_keys'][1]['k'],
                  stored['jwt_keys'][1]['k'], new['secret_key'], new['publishable_key']):
        assert value not in text


def test_given_values_are_never_returned_and_invocation_is_masked(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    result = run(run_module, {'path': str(path), 'jwt_secret': SECRET})
    assert 'jwt_secret' not in result
    assert SECRET not in json.dumps(result)
    assert result['invocation']['module_args']['jwt_secret'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'
    anon = result['anon_key']  # minted by the module, so returned when asked
    result = run(run_module, {'path': str(path), 'jwt_secret': SECRET, 'anon_key': anon})
    assert result['changed'] is False
    assert 'anon_key' not in result and 'service_role_key' in result
    assert anon not in json.dumps(result)
    assert result['invocation']['module_args']['anon_key'] == 'VALUE_SPECIFIED_IN_NO_LOG_PARAMETER'


def test_secrets_are_returned_only_when_asked(tmp_path, run_module):
    # A task that forgets no_log shows no secret: by default the result holds only facts.
    path = tmp_path / 'keys.json'
    result = run_module(supabase_keys.main, {'path': str(path), 'asymmetric': True})
    stored = json.loads(path.read_text())
    text = json.dumps(result)
    assert not set(stored) & set(result)
    for value in (stored['jwt_secret'], stored['anon_key'], stored['secret_key'], stored['jwt_keys'][0]['d']):
        assert value not in text
    assert result['minted'] and set(result['expires']) >= {'anon_key', 'service_role_key'}


def test_return_secrets_false_returns_only_facts(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    result = run(run_module, {'path': str(path), 'asymmetric': True, 'return_secrets': False})
    stored = json.loads(path.read_text())
    text = json.dumps(result)
    for name, value in stored.items():
        assert name not in result
        assert json.dumps(value) not in text
    assert set(result['expires']) == {'anon_key', 'service_role_key', 'anon_key_asymmetric', 'service_role_key_asymmetric'}
    assert result['kid'] == stored['jwt_keys'][0]['kid']


def test_short_secret_fails_and_writes_nothing(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    result = run(run_module, {'path': str(path), 'jwt_secret': 'too-short'})
    assert result['failed'] is True
    assert 'at least 32' in result['msg']
    assert 'too-short' not in json.dumps(result)
    assert not path.exists()


def test_given_key_of_another_secret_fails(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    other = run(run_module, {'path': str(tmp_path / 'other.json'), 'jwt_secret': OTHER_SECRET})
    result = run(run_module, {'path': str(path), 'jwt_secret': SECRET, 'service_role_key': other['service_role_key']})
    assert result['failed'] is True
    assert result['msg'].startswith('The service_role_key given is signed with another secret')
    assert not path.exists()


def test_loose_permissions_are_fixed(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    run(run_module, {'path': str(path)})
    content = path.read_bytes()
    os.chmod(path, 0o644)
    result = run(run_module, {'path': str(path)}, check_mode=True, diff=True)
    assert result['changed'] is True
    assert result['diff']['before']['file'].startswith('mode 0644')
    assert file_mode(path) == 0o644
    result = run(run_module, {'path': str(path)})
    assert result['changed'] is True and result['minted'] == []
    assert file_mode(path) == 0o600
    assert path.read_bytes() == content


def test_rewrite_never_widens_mode(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    old_umask = os.umask(0)
    try:
        run(run_module, {'path': str(path), 'jwt_secret': SECRET})
        assert file_mode(path) == 0o600
        run(run_module, {'path': str(path), 'jwt_secret': OTHER_SECRET})
        assert file_mode(path) == 0o600
    finally:
        os.umask(old_umask)


def test_unparseable_file_fails_unless_forced(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    path.write_text('JWT_SECRET=abc\n')
    result = run(run_module, {'path': str(path)})
    assert result['failed'] is True
    assert 'not a JSON object' in result['msg']
    assert path.read_text() == 'JWT_SECRET=abc\n'
    result = run(run_module, {'path': str(path), 'force': True})
    assert result['changed'] is True
    assert json.loads(path.read_text())['jwt_secret'] == result['jwt_secret']


def test_missing_directory_fails_cleanly(tmp_path, run_module):
    result = run(run_module, {'path': str(tmp_path / 'missing' / 'keys.json')})
    assert result['failed'] is True
    assert result['msg'] == 'The directory %s of path does not exist.' % (tmp_path / 'missing')


def test_missing_pyjwt_is_reported(tmp_path, run_module, monkeypatch):
    monkeypatch.setattr(supabase_keys, 'HAS_JWT', False)
    monkeypatch.setattr(supabase_keys, 'JWT_IMPORT_ERROR', 'ImportError: No module named jwt')
    result = run(run_module, {'path': str(tmp_path / 'keys.json')})
    assert result['failed'] is True
    assert 'PyJWT' in result['msg']
    assert not (tmp_path / 'keys.json').exists()


def test_missing_cryptography_only_matters_for_asymmetric(tmp_path, run_module, monkeypatch):
    monkeypatch.setattr(supabase_keys, 'HAS_CRYPTOGRAPHY', False)
    monkeypatch.setattr(supabase_keys, 'CRYPTOGRAPHY_IMPORT_ERROR', 'ImportError: No module named cryptography')
    result = run(run_module, {'path': str(tmp_path / 'keys.json'), 'asymmetric': True})
    assert result['failed'] is True
    assert 'cryptography' in result['msg']
    result = run(run_module, {'path': str(tmp_path / 'keys.json')})
    assert result['changed'] is True


def test_asymmetric_material_kept_but_not_returned_when_off(tmp_path, run_module):
    path = tmp_path / 'keys.json'
    run(run_module, {'path': str(path), 'asymmetric': True})
    stored = json.loads(path.read_text())
    result = run(run_module, {'path': str(path)})
    assert result['changed'] is False
    assert 'jwks' not in result and 'publishable_key' not in result
    assert json.loads(path.read_text()) == stored
