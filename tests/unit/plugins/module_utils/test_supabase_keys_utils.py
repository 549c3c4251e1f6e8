"""Unit tests of the Supabase key logic; every key is checked independently with PyJWT, hmac and hashlib."""

import base64
import hashlib
import hmac
import json

import jwt
import pytest

from ansible_collections.soulmatting.selfhosted.plugins.module_utils import _supabase_keys as sk

NOW = 1795000000  # 2026-11-18
DAY = 86400
SECRET = 'a-test-secret-that-is-long-enough-0123456789'
OTHER_SECRET = 'another-secret-of-at-least-thirty-two-chars!!'


def options(**overrides):
    opts = dict(jwt_secret=None, issuer='supabase', ttl_days=1825, renew_days=30, asymmetric=False, force=False,
                anon_key=None, service_role_key=None)
    opts.update(overrides)
    return opts


def b64url_json(part):
    return json.loads(base64.urlsafe_b64decode(part + '=' * (-len(part) % 4)))


def verify_legacy(token, secret, role, issuer='supabase', ttl_days=1825):
    """Verify a legacy key the way PostgREST does (HS256, the secret as raw UTF-8 bytes) and check its exact shape."""
    claims = jwt.decode(token, secret.encode('utf-8'), algorithms=['HS256'], options={'verify_exp': False, 'verify_iat': False})
    header_part = token.split('.')[0]
    assert b64url_json(header_part) == {'alg': 'HS256', 'typ': 'JWT'}
    assert set(claims) == {'role', 'iss', 'iat', 'exp'}
    assert claims['role'] == role
    assert claims['iss'] == issuer
    assert claims['exp'] - claims['iat'] == ttl_days * DAY
    return claims


def demo_key(role, secret):
    """A key shaped like upstream's demo keys: issuer supabase-demo, expiring on 2027-01-09."""
    return jwt.encode({'role': role, 'iss': 'supabase-demo', 'iat': 1641769200, 'exp': 1799535600}, secret.encode(), algorithm='HS256')


# Secrets and legacy keys

def test_generated_secret_is_long_and_url_safe():
    secrets = {sk.generate_secret() for dummy in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert len(secret) >= sk.MIN_SECRET_LENGTH
        assert set(secret) <= set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_')


def test_legacy_key_has_exact_claims_and_header():
    token = sk.mint_hs256(SECRET, 'anon', 'supabase', NOW, 1825)
    claims = verify_legacy(token, SECRET, 'anon')
    assert claims['iat'] == NOW
    # Claim order as upstream's generate-keys.sh writes it.
    assert list(b64url_json(token.split('.')[1])) == ['role', 'iss', 'iat', 'exp']


def test_legacy_key_signature_is_hmac_over_raw_secret_bytes():
    # A hex-looking secret: generators that hex-decode it produce keys PostgREST rejects.
    secret = '4f' * 32
    token = sk.mint_hs256(secret, 'service_role', 'supabase', NOW, 10)
    signing_input, signature = token.rsplit('.', 1)
    expected = hmac.new(secret.encode('utf-8'), signing_input.encode('ascii'), hashlib.sha256).digest()
    assert signature == base64.urlsafe_b64encode(expected).rstrip(b'=').decode()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, bytes.fromhex(secret), algorithms=['HS256'])


def test_inspect_accepts_own_key():
    token = sk.mint_hs256(SECRET, 'anon', 'supabase', NOW, 1825)
    assert sk.inspect_hs256(token, SECRET, 'anon', 'supabase') == (None, NOW + 1825 * DAY)


@pytest.mark.parametrize('token, role, issuer, problem', [
    (sk.mint_hs256(OTHER_SECRET, 'anon', 'supabase', NOW, 10), 'anon', 'supabase', 'is signed with another secret'),
    (sk.mint_hs256(SECRET, 'service_role', 'supabase', NOW, 10), 'anon', 'supabase', "has role 'service_role' instead of 'anon'"),
    (sk.mint_hs256(SECRET, 'anon', 'supabase-demo', NOW, 10), 'anon', 'supabase', "has issuer 'supabase-demo' instead of 'supabase'"),
    ('not-a-jwt', 'anon', 'supabase', 'is not a JWT'),
    ('a.b.c', 'anon', 'supabase', 'is not a JWT'),
])
def test_inspect_names_the_problem(token, role, issuer, problem):
    assert sk.inspect_hs256(token, SECRET, role, issuer) == (problem, None)


def test_inspect_rejects_unsigned_and_foreign_algorithms():
    unsigned = jwt.encode({'role': 'anon', 'iss': 'supabase', 'iat': NOW, 'exp': NOW + DAY}, None, algorithm='none')
    assert sk.inspect_hs256(unsigned, SECRET, 'anon', 'supabase')[0] == "is signed with 'none', not HS256"
    hs512 = jwt.encode({'role': 'anon', 'iss': 'supabase', 'iat': NOW, 'exp': NOW + DAY}, SECRET.encode() * 2, algorithm='HS512')
    assert sk.inspect_hs256(hs512, SECRET, 'anon', 'supabase')[0] == "is signed with 'HS512', not HS256"


def test_inspect_requires_an_expiry():
    token = jwt.encode({'role': 'anon', 'iss': 'supabase', 'iat': NOW}, SECRET.encode(), algorithm='HS256')
    assert sk.inspect_hs256(token, SECRET, 'anon', 'supabase') == ('has no valid expiry', None)


def test_judge_expiry():
    assert sk.judge_expiry(NOW + 31 * DAY, NOW, 30) is None
    assert sk.judge_expiry(NOW + 29 * DAY, NOW, 30) == 'expires on 2026-12-17T11:06:40Z, within the renewal window'
    assert sk.judge_expiry(NOW - 1, NOW, 30) == 'expired on 2026-11-18T11:06:39Z'
    assert sk.judge_expiry(NOW + 1, NOW, 0) is None


@pytest.mark.parametrize('secret, message', [
    ('', 'is empty'),
    ('x' * 31, 'has 31 characters; Supabase needs at least 32'),
    ('x' * 40 + '\n', 'control characters'),
])
def test_unusable_given_secret_fails(secret, message):
    with pytest.raises(sk.SupabaseKeysError, match=message):
        sk.plan_keys(None, options(jwt_secret=secret), NOW)


def test_unknown_fields_in_the_file_are_kept():
    first = sk.plan_keys(None, options(), NOW)
    current = dict(first.state, comment='managed by Ansible')
    plan = sk.plan_keys(dict(current), options(), NOW)
    assert plan.state == current


@pytest.mark.parametrize('overrides, message', [
    (dict(ttl_days=0), 'ttl_days must be at least 1'),
    (dict(renew_days=-1), 'renew_days cannot be negative'),
    (dict(ttl_days=30, renew_days=30), 'must be smaller than ttl_days'),
    (dict(issuer=''), 'issuer cannot be empty'),
    (dict(force=True, anon_key='x'), 'cannot be combined'),
])
def test_invalid_options_fail(overrides, message):
    with pytest.raises(sk.SupabaseKeysError, match=message):
        sk.plan_keys(None, options(**overrides), NOW)


# Planning legacy keys

def test_first_run_generates_secret_and_mints_keys():
    plan = sk.plan_keys(None, options(), NOW)
    assert plan.minted == ['jwt_secret', 'anon_key', 'service_role_key']
    secret = plan.state['jwt_secret']
    verify_legacy(plan.state['anon_key'], secret, 'anon')
    verify_legacy(plan.state['service_role_key'], secret, 'service_role')
    assert set(plan.state) == {'jwt_secret', 'anon_key', 'service_role_key'}
    assert plan.expires == {'anon_key': sk.format_time(NOW + 1825 * DAY), 'service_role_key': sk.format_time(NOW + 1825 * DAY)}
    assert plan.before['anon_key'] == 'absent'


def test_second_run_keeps_everything():
    first = sk.plan_keys(None, options(), NOW)
    second = sk.plan_keys(dict(first.state), options(), NOW + 100 * DAY)
    assert second.state == first.state
    assert second.minted == []
    assert second.before == second.after


def test_given_secret_is_used_and_short_ttl_respected():
    plan = sk.plan_keys(None, options(jwt_secret=SECRET, ttl_days=90, renew_days=7, issuer='my-stack'), NOW)
    assert plan.state['jwt_secret'] == SECRET
    assert 'jwt_secret' not in plan.minted
    verify_legacy(plan.state['anon_key'], SECRET, 'anon', issuer='my-stack', ttl_days=90)


def test_changed_secret_remints_keys():
    first = sk.plan_keys(None, options(jwt_secret=SECRET), NOW)
    second = sk.plan_keys(dict(first.state), options(jwt_secret=OTHER_SECRET), NOW)
    assert second.state['jwt_secret'] == OTHER_SECRET
    assert second.minted == ['anon_key', 'service_role_key']
    assert second.before['anon_key'] == 'stored key is signed with another secret'
    assert second.before['jwt_secret'] == 'another secret' and second.after['jwt_secret'] == 'the given secret'
    verify_legacy(second.state['anon_key'], OTHER_SECRET, 'anon')


def test_demo_keys_are_replaced():
    demo_secret = 'your-super-secret-jwt-token-with-at-least-32-characters-long'
    current = {'jwt_secret': SECRET, 'anon_key': demo_key('anon', demo_secret), 'service_role_key': demo_key('service_role', SECRET)}
    plan = sk.plan_keys(current, options(), NOW)
    assert plan.minted == ['anon_key', 'service_role_key']
    assert plan.before['anon_key'] == 'stored key is signed with another secret'
    assert plan.before['service_role_key'] == "stored key has issuer 'supabase-demo' instead of 'supabase'"
    verify_legacy(plan.state['service_role_key'], SECRET, 'service_role')


def test_key_within_renewal_window_is_reminted_alone():
    current = {'jwt_secret': SECRET,
               'anon_key': sk.mint_hs256(SECRET, 'anon', 'supabase', NOW - 1815 * DAY, 1825),
               'service_role_key': sk.mint_hs256(SECRET, 'service_role', 'supabase', NOW, 1825)}
    plan = sk.plan_keys(dict(current), options(), NOW)
    assert plan.minted == ['anon_key']
    assert plan.state['service_role_key'] == current['service_role_key']
    assert 'within the renewal window' in plan.before['anon_key']
    assert verify_legacy(plan.state['anon_key'], SECRET, 'anon')['iat'] == NOW


def test_issuer_change_remints():
    first = sk.plan_keys(None, options(jwt_secret=SECRET), NOW)
    plan = sk.plan_keys(dict(first.state), options(issuer='other'), NOW)
    assert plan.minted == ['anon_key', 'service_role_key']
    verify_legacy(plan.state['anon_key'], SECRET, 'anon', issuer='other')


def test_stored_short_secret_fails():
    with pytest.raises(sk.SupabaseKeysError, match='stored in the file has 5 characters'):
        sk.plan_keys({'jwt_secret': 'short'}, options(), NOW)


def test_force_rotates_generated_secret_and_keys():
    first = sk.plan_keys(None, options(), NOW)
    plan = sk.plan_keys(dict(first.state), options(force=True), NOW)
    assert plan.minted == ['jwt_secret', 'anon_key', 'service_role_key']
    assert plan.state['jwt_secret'] != first.state['jwt_secret']
    verify_legacy(plan.state['anon_key'], plan.state['jwt_secret'], 'anon')


def test_force_with_given_secret_keeps_secret_and_remints():
    first = sk.plan_keys(None, options(jwt_secret=SECRET), NOW)
    plan = sk.plan_keys(dict(first.state), options(jwt_secret=SECRET, force=True), NOW + 1)
    assert plan.minted == ['anon_key', 'service_role_key']
    assert plan.state['anon_key'] != first.state['anon_key']


def test_given_valid_keys_are_kept():
    anon = sk.mint_hs256(SECRET, 'anon', 'supabase', NOW - DAY, 1825)
    plan = sk.plan_keys(None, options(jwt_secret=SECRET, anon_key=anon), NOW)
    assert plan.state['anon_key'] == anon
    assert plan.minted == ['service_role_key']
    assert plan.after['anon_key'].startswith('given, valid until')


@pytest.mark.parametrize('key, problem', [
    (sk.mint_hs256(OTHER_SECRET, 'anon', 'supabase', NOW, 1825), 'is signed with another secret'),
    (sk.mint_hs256(SECRET, 'service_role', 'supabase', NOW, 1825), 'has role'),
    (sk.mint_hs256(SECRET, 'anon', 'supabase', NOW - 1820 * DAY, 1825), 'expires on .*, within the renewal window'),
])
def test_given_invalid_key_fails(key, problem):
    with pytest.raises(sk.SupabaseKeysError, match='The anon_key given ' + problem):
        sk.plan_keys(None, options(jwt_secret=SECRET, anon_key=key), NOW)


def test_labels_never_contain_secrets():
    first = sk.plan_keys(None, options(asymmetric=True), NOW)
    plan = sk.plan_keys(dict(first.state), options(jwt_secret=SECRET, asymmetric=True), NOW)
    labels = json.dumps([plan.before, plan.after, first.before, first.after, plan.expires, first.expires])
    secrets = [SECRET, first.state['jwt_secret'], sk.b64url(SECRET.encode())]
    secrets += [plan.state[name] for name in ('anon_key', 'service_role_key', 'anon_key_asymmetric', 'publishable_key', 'secret_key')]
    secrets.append(first.state['jwt_keys'][0]['d'])
    for secret in secrets:
        assert secret not in labels


# Asymmetric keys

def public_key_for(token, jwks):
    """Pick the verification key by kid from the JWKS, as PostgREST does, using PyJWT's own JWK parsing."""
    kid = jwt.get_unverified_header(token)['kid']
    matches = [k for k in jwks['keys'] if k.get('kid') == kid]
    assert len(matches) == 1
    return jwt.PyJWK.from_dict(matches[0]).key


def test_asymmetric_material_has_upstream_shape():
    plan = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    state = plan.state
    private, oct_key = state['jwt_keys']
    assert set(private) == {'kty', 'kid', 'use', 'key_ops', 'alg', 'ext', 'crv', 'x', 'y', 'd'}
    assert (private['kty'], private['crv'], private['alg'], private['use']) == ('EC', 'P-256', 'ES256', 'sig')
    assert private['key_ops'] == ['sign', 'verify']
    assert oct_key == {'kty': 'oct', 'k': base64.urlsafe_b64encode(SECRET.encode()).rstrip(b'=').decode(), 'alg': 'HS256'}
    public, jwks_oct = state['jwks']['keys']
    assert set(state['jwks']) == {'keys'}
    assert 'd' not in public and public['key_ops'] == ['verify']
    assert {k: v for k, v in private.items() if k not in ('d', 'key_ops')} == {k: v for k, v in public.items() if k != 'key_ops'}
    assert jwks_oct == oct_key
    assert plan.kid == private['kid']
    assert plan.minted == ['anon_key', 'service_role_key', 'jwt_keys', 'anon_key_asymmetric', 'service_role_key_asymmetric',
                           'publishable_key', 'secret_key']


def test_es256_keys_verify_against_jwks():
    plan = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    for name, role in (('anon_key_asymmetric', 'anon'), ('service_role_key_asymmetric', 'service_role')):
        token = plan.state[name]
        header = b64url_json(token.split('.')[0])
        assert header == {'alg': 'ES256', 'typ': 'JWT', 'kid': plan.kid}
        claims = jwt.decode(token, public_key_for(token, plan.state['jwks']), algorithms=['ES256'], options={'verify_iat': False})
        assert claims == {'role': role, 'iss': 'supabase', 'iat': NOW, 'exp': NOW + 1825 * DAY}
        # The signature is raw r||s (64 bytes), as JWS requires, not DER.
        assert len(base64.urlsafe_b64decode(token.split('.')[2] + '==')) == 64
    # Legacy keys verify with the oct member of the same key set.
    oct_key = jwt.PyJWK.from_dict(plan.state['jwks']['keys'][1]).key
    assert jwt.decode(plan.state['anon_key'], oct_key, algorithms=['HS256'], options={'verify_iat': False})['role'] == 'anon'


def test_es256_key_from_another_pair_is_refused():
    first = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    second = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    foreign = second.state['anon_key_asymmetric']
    forged = jwt.encode(jwt.decode(foreign, options={'verify_signature': False}),
                        jwt.PyJWK.from_dict(second.state['jwt_keys'][0]).key, algorithm='ES256', headers={'kid': first.kid})
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, public_key_for(forged, first.state['jwks']), algorithms=['ES256'])
    current = dict(first.state, anon_key_asymmetric=forged)
    plan = sk.plan_keys(current, options(asymmetric=True), NOW)
    assert plan.minted == ['anon_key_asymmetric']
    assert plan.before['anon_key_asymmetric'] == 'stored key is signed with another key'


def test_opaque_keys_have_upstream_shape_and_checksum():
    plan = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    for name, prefix in (('publishable_key', 'sb_publishable_'), ('secret_key', 'sb_secret_')):
        key = plan.state[name]
        assert key.startswith(prefix)
        body = key[len(prefix):]
        assert len(body) == 22 + 1 + 8 and body[22] == '_'
        assert set(body) <= set('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_')
        digest = hashlib.sha256(('supabase-self-hosted|' + key[:-9]).encode()).digest()
        assert key[-8:] == base64.urlsafe_b64encode(digest).decode()[:8]
        assert sk.check_opaque_key(key, prefix)
        assert not sk.check_opaque_key(key[:-1] + ('A' if key[-1] != 'A' else 'B'), prefix)
        assert not sk.check_opaque_key(key, 'sb_other_')
    assert plan.state['publishable_key'] != plan.state['secret_key']


def test_asymmetric_second_run_keeps_everything():
    first = sk.plan_keys(None, options(asymmetric=True), NOW)
    second = sk.plan_keys(json.loads(json.dumps(first.state)), options(asymmetric=True), NOW + DAY)
    assert second.state == first.state
    assert second.minted == []
    assert second.before == second.after


def test_secret_change_updates_key_sets_but_keeps_the_pair():
    first = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    plan = sk.plan_keys(dict(first.state), options(jwt_secret=OTHER_SECRET, asymmetric=True), NOW)
    assert plan.minted == ['anon_key', 'service_role_key']
    assert plan.kid == first.kid
    assert plan.state['jwt_keys'][0] == first.state['jwt_keys'][0]
    assert plan.state['jwt_keys'][1]['k'] == sk.b64url(OTHER_SECRET.encode())
    assert plan.state['jwks']['keys'][1]['k'] == sk.b64url(OTHER_SECRET.encode())
    assert plan.state['anon_key_asymmetric'] == first.state['anon_key_asymmetric']
    assert plan.before['jwt_keys'] != plan.after['jwt_keys']


def test_unusable_key_pair_is_replaced():
    first = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    broken = json.loads(json.dumps(first.state))
    broken['jwt_keys'][0]['d'] = first.state['jwt_keys'][0]['x']  # d that does not belong to x, y
    plan = sk.plan_keys(broken, options(asymmetric=True), NOW)
    assert plan.kid != first.kid
    assert plan.minted == ['jwt_keys', 'anon_key_asymmetric', 'service_role_key_asymmetric']
    assert 'unusable' in plan.before['jwt_keys']
    assert plan.state['publishable_key'] == first.state['publishable_key']


def test_malformed_opaque_key_is_regenerated():
    first = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    plan = sk.plan_keys(dict(first.state, secret_key='sb_secret_short'), options(asymmetric=True), NOW)
    assert plan.minted == ['secret_key']
    assert sk.check_opaque_key(plan.state['secret_key'], 'sb_secret_')


def test_force_rotates_asymmetric_material():
    first = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    plan = sk.plan_keys(dict(first.state), options(jwt_secret=SECRET, asymmetric=True, force=True), NOW + 1)
    assert plan.kid != first.kid
    for name in ('anon_key', 'jwt_keys', 'anon_key_asymmetric', 'publishable_key', 'secret_key'):
        assert plan.state[name] != first.state[name]


def test_asymmetric_off_keeps_material_untouched():
    first = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    plan = sk.plan_keys(dict(first.state), options(), NOW)
    assert plan.state == first.state
    assert plan.warnings == []


def test_asymmetric_off_drops_material_when_secret_changes():
    first = sk.plan_keys(None, options(jwt_secret=SECRET, asymmetric=True), NOW)
    plan = sk.plan_keys(dict(first.state), options(jwt_secret=OTHER_SECRET), NOW)
    assert set(plan.state) == {'jwt_secret', 'anon_key', 'service_role_key'}
    assert plan.after['jwks'] == 'removed'
    assert len(plan.warnings) == 1


def test_ec_jwk_round_trip_matches_pyjwt():
    jwk = sk.generate_ec_jwk()
    key = sk.ec_key_from_jwk(dict(jwk, kty='EC'))
    theirs = jwt.PyJWK.from_dict(dict(jwk, kty='EC', alg='ES256')).key
    assert theirs.private_numbers() == key.private_numbers()
    with pytest.raises(ValueError):
        sk.ec_key_from_jwk(dict(jwk, kty='EC', crv='P-384'))


def _options(**extra):
    options = dict(jwt_secret=None, issuer='supabase', ttl_days=1825, renew_days=30, asymmetric=True, force=False,
                   rotate_signing_key=False, grace_days=0, anon_key=None, service_role_key=None)
    options.update(extra)
    return options


def test_a_rotated_signing_key_stays_in_the_key_set_for_its_grace_period():
    now = 1_800_000_000
    first = sk.plan_keys(None, _options(), now)
    old_kid = first.kid
    old_token = first.state['anon_key_asymmetric']
    rotated = sk.plan_keys(first.state, _options(rotate_signing_key=True, grace_days=7), now + 10)
    assert rotated.kid != old_kid
    kids = [key.get('kid') for key in rotated.state['jwks']['keys']]
    assert kids[:2] == [rotated.kid, old_kid] and rotated.state['jwks']['keys'][-1]['kty'] == 'oct'
    # A session the old key signed verifies against the new key set; the secret and legacy keys are kept.
    old_public = [key for key in rotated.state['jwks']['keys'] if key.get('kid') == old_kid][0]
    claims = jwt.decode(old_token, jwt.PyJWK(old_public).key, algorithms=['ES256'], options={'verify_iat': False, 'verify_exp': False})
    assert claims['role'] == 'anon'
    assert rotated.state['jwt_secret'] == first.state['jwt_secret'] and rotated.state['anon_key'] == first.state['anon_key']
    assert rotated.state['publishable_key'] == first.state['publishable_key']
    assert 'd' not in old_public
    # Within the grace period nothing changes; after it the old key leaves the set.
    again = sk.plan_keys(rotated.state, _options(), now + 6 * sk.DAY)
    assert again.state == rotated.state
    later = sk.plan_keys(rotated.state, _options(), now + 8 * sk.DAY)
    assert [key.get('kid') for key in later.state['jwks']['keys']] == [rotated.kid, None]
    assert 'retired_keys' not in later.state


def test_without_grace_the_replaced_key_leaves_at_once():
    first = sk.plan_keys(None, _options(), 1_800_000_000)
    rotated = sk.plan_keys(first.state, _options(rotate_signing_key=True), 1_800_000_010)
    assert [key.get('kid') for key in rotated.state['jwks']['keys']] == [rotated.kid, None]


def test_negative_grace_is_refused():
    with pytest.raises(sk.SupabaseKeysError, match='grace_days'):
        sk.plan_keys(None, _options(grace_days=-1), 1_800_000_000)
