# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Supabase API keys: mint, verify and plan (the logic of the supabase_keys module, free of Ansible)."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import binascii
import datetime
import hashlib
import re
import secrets
import traceback
import uuid

JWT_IMPORT_ERROR = None
try:
    import jwt
except ImportError:
    jwt = None
    JWT_IMPORT_ERROR = traceback.format_exc()

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography.hazmat.primitives.asymmetric import ec
except ImportError:
    ec = None
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

HAS_JWT = jwt is not None
HAS_CRYPTOGRAPHY = ec is not None

# GoTrue refuses shorter secrets.
MIN_SECRET_LENGTH = 32
DAY = 86400

LEGACY_KEYS = (('anon_key', 'anon'), ('service_role_key', 'service_role'))
ASYMMETRIC_KEYS = (('anon_key_asymmetric', 'anon'), ('service_role_key_asymmetric', 'service_role'))
OPAQUE_KEYS = (('publishable_key', 'sb_publishable_'), ('secret_key', 'sb_secret_'))
ASYMMETRIC_FIELDS = ('jwt_keys', 'jwks') + tuple(n for n, dummy in ASYMMETRIC_KEYS) + tuple(n for n, dummy in OPAQUE_KEYS)
# Public keys of earlier key pairs, kept in the key set until their grace period ends (not secret, but
# part of the asymmetric material).
RETIRED_FIELD = 'retired_keys'
SECRET_FIELDS = ('jwt_secret',) + tuple(n for n, dummy in LEGACY_KEYS) + ASYMMETRIC_FIELDS

# Upstream's self-hosting scripts checksum opaque keys with this fixed project reference.
OPAQUE_PROJECT_REF = 'supabase-self-hosted'
_OPAQUE_RANDOM_LENGTH = 22
_OPAQUE_CHECKSUM_LENGTH = 8


class SupabaseKeysError(Exception):
    """A problem the user has to fix; the message is one sentence meant for them."""


def b64url(data):
    """Base64url without padding, as JWS and JWK use it."""
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def b64url_decode(text):
    text = str(text)
    return base64.urlsafe_b64decode((text + '=' * (-len(text) % 4)).encode('ascii'))


def format_time(timestamp):
    """A UNIX time as an ISO 8601 UTC string (what the diff and the expiry report show)."""
    moment = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(timestamp))
    return moment.strftime('%Y-%m-%dT%H:%M:%SZ')


def generate_secret():
    """A new JWT secret: 64 URL-safe characters (384 random bits), safe in .env files and YAML."""
    return secrets.token_urlsafe(48)


def check_secret(secret, origin):
    if not isinstance(secret, str) or not secret:
        raise SupabaseKeysError('The JWT secret %s is empty or not a string.' % origin)
    if any(ord(char) < 32 or ord(char) == 127 for char in secret):
        raise SupabaseKeysError('The JWT secret %s contains control characters such as a line break; it must fit on one line of an environment file.' % origin)
    if len(secret) < MIN_SECRET_LENGTH:
        raise SupabaseKeysError('The JWT secret %s has %d characters; Supabase needs at least %d.' % (origin, len(secret), MIN_SECRET_LENGTH))


def _to_text(token):
    # PyJWT 1.x returned bytes.
    return token.decode('ascii') if isinstance(token, bytes) else token


def claims_for(role, issuer, iat, ttl_days):
    """The exact claims of a Supabase API key, in upstream's order."""
    return {'role': role, 'iss': issuer, 'iat': int(iat), 'exp': int(iat) + int(ttl_days) * DAY}


def mint_hs256(secret, role, issuer, iat, ttl_days):
    """A legacy API key: HS256 over the secret taken as raw UTF-8 bytes, header {"alg":"HS256","typ":"JWT"}."""
    try:
        return _to_text(jwt.encode(claims_for(role, issuer, iat, ttl_days), secret.encode('utf-8'), algorithm='HS256'))
    except jwt.InvalidKeyError:
        raise SupabaseKeysError('The JWT secret cannot be used as an HMAC key because it looks like a PEM or SSH key.')


def mint_es256(private_key, kid, role, issuer, iat, ttl_days):
    """A new-style API key: ES256 with the key's kid in the header."""
    return _to_text(jwt.encode(claims_for(role, issuer, iat, ttl_days), private_key, algorithm='ES256', headers={'kid': kid}))


_DECODE_OPTIONS = {
    'verify_signature': True,
    # Expiry is judged against the caller's clock and renewal window, the rest below.
    'verify_exp': False,
    'verify_iat': False,
    'verify_nbf': False,
    'verify_aud': False,
    'verify_iss': False,
}


def _check_claims(claims, role, issuer):
    if claims.get('role') != role:
        return 'has role %r instead of %r' % (claims.get('role'), role), None
    if claims.get('iss') != issuer:
        return 'has issuer %r instead of %r' % (claims.get('iss'), issuer), None
    exp = claims.get('exp')
    if isinstance(exp, bool) or not isinstance(exp, int):
        return 'has no valid expiry', None
    return None, exp


def _inspect_jwt(token, alg, key, wrong_key_problem, role, issuer, kid=None):
    """Verify TOKEN as an ALG token under KEY (and KID when given): (problem, exp)."""
    if not isinstance(token, str) or token.count('.') != 2:
        return 'is not a JWT', None
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return 'is not a JWT', None
    if header.get('alg') != alg:
        return 'is signed with %r, not %s' % (header.get('alg'), alg), None
    if kid is not None and header.get('kid') != kid:
        return 'names another signing key', None
    try:
        claims = jwt.decode(token, key, algorithms=[alg], options=_DECODE_OPTIONS)
    except jwt.InvalidSignatureError:
        return wrong_key_problem, None
    except (jwt.PyJWTError, ValueError):
        return 'is not a valid JWT', None
    return _check_claims(claims, role, issuer)


def inspect_hs256(token, secret, role, issuer):
    """Check a legacy key against the secret: (problem, exp); problem is None when it verifies with the expected role and issuer."""
    return _inspect_jwt(token, 'HS256', secret.encode('utf-8'), 'is signed with another secret', role, issuer)


def inspect_es256(token, public_key, kid, role, issuer):
    """Check a new-style key against the EC public key and kid: (problem, exp)."""
    return _inspect_jwt(token, 'ES256', public_key, 'is signed with another key', role, issuer, kid=kid)


def judge_expiry(exp, now, renew_days):
    """None when a key expiring at exp is outside the renewal window, else why it has to be minted again."""
    if exp <= now:
        return 'expired on %s' % format_time(exp)
    if exp - now < renew_days * DAY:
        return 'expires on %s, within the renewal window' % format_time(exp)
    return None


# EC P-256 keys as JWK (RFC 7518 section 6.2): coordinates and d are 32-byte big-endian integers.

def _int_b64(number):
    return b64url(number.to_bytes(32, 'big'))


def _b64_int(text):
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise ValueError('a P-256 coordinate has 32 bytes')
    return int.from_bytes(raw, 'big')


def generate_ec_jwk():
    """A new P-256 private key as the JWK members crv, x, y and d."""
    return ec_key_to_jwk(ec.generate_private_key(ec.SECP256R1()))


def ec_key_to_jwk(private_key):
    numbers = private_key.private_numbers()
    return {
        'crv': 'P-256',
        'x': _int_b64(numbers.public_numbers.x),
        'y': _int_b64(numbers.public_numbers.y),
        'd': _int_b64(numbers.private_value),
    }


def ec_key_from_jwk(jwk):
    """The cryptography private key of a P-256 JWK; ValueError when the JWK is not one."""
    if not isinstance(jwk, dict) or jwk.get('kty') != 'EC' or jwk.get('crv') != 'P-256':
        raise ValueError('not a P-256 JWK')
    try:
        x, y, d = _b64_int(jwk['x']), _b64_int(jwk['y']), _b64_int(jwk['d'])
    except (KeyError, TypeError, ValueError, UnicodeError, binascii.Error):
        raise ValueError('the JWK lacks valid x, y and d')
    public_numbers = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1())
    private_key = ec.EllipticCurvePrivateNumbers(d, public_numbers).private_key()
    derived = private_key.public_key().public_numbers()
    if (derived.x, derived.y) != (x, y):
        raise ValueError('x and y do not belong to d')
    return private_key


def oct_jwk(secret):
    """The symmetric secret as a JWK, so services verify legacy HS256 keys from the same key set."""
    return {'kty': 'oct', 'k': b64url(secret.encode('utf-8')), 'alg': 'HS256'}


def build_jwt_keys(ec_jwk, kid, secret):
    """JWT_KEYS for Auth: the private EC JWK (signs) plus the oct key, as upstream writes it."""
    private = {'kty': 'EC', 'kid': kid, 'use': 'sig', 'key_ops': ['sign', 'verify'], 'alg': 'ES256', 'ext': True,
               'crv': 'P-256', 'x': ec_jwk['x'], 'y': ec_jwk['y'], 'd': ec_jwk['d']}
    return [private, oct_jwk(secret)]


def public_jwk(ec_jwk, kid):
    """The public half of an EC JWK, as a key set lists it."""
    return {'kty': 'EC', 'kid': kid, 'use': 'sig', 'key_ops': ['verify'], 'alg': 'ES256', 'ext': True,
            'crv': 'P-256', 'x': ec_jwk['x'], 'y': ec_jwk['y']}


def build_jwks(ec_jwk, kid, secret, retired=()):
    """JWT_JWKS for PostgREST, Realtime and Storage: the public EC JWK, the public keys still in their grace
    period after a rotation (tokens they signed keep verifying), and the oct key."""
    return {'keys': [public_jwk(ec_jwk, kid)] + [entry['jwk'] for entry in retired] + [oct_jwk(secret)]}


def parse_jwt_keys(jwt_keys):
    """The (private EC JWK, kid, private key) found in a stored JWT_KEYS; ValueError when there is no usable one."""
    if not isinstance(jwt_keys, list):
        raise ValueError('not a list of JWKs')
    candidates = [k for k in jwt_keys if isinstance(k, dict) and k.get('kty') == 'EC' and 'd' in k]
    if len(candidates) != 1:
        raise ValueError('no single private EC key')
    jwk = candidates[0]
    kid = jwk.get('kid')
    if not isinstance(kid, str) or not kid:
        raise ValueError('the EC key has no kid')
    private_key = ec_key_from_jwk(jwk)
    return {'crv': 'P-256', 'x': jwk['x'], 'y': jwk['y'], 'd': jwk['d']}, kid, private_key


def _opaque_checksum(intermediate):
    digest = hashlib.sha256((OPAQUE_PROJECT_REF + '|' + intermediate).encode('utf-8')).digest()
    return b64url(digest)[:_OPAQUE_CHECKSUM_LENGTH]


def generate_opaque_key(prefix):
    """An opaque API key as upstream makes it: prefix, 22 random url-safe characters, '_', an 8-character checksum."""
    intermediate = prefix + b64url(secrets.token_bytes(17))[:_OPAQUE_RANDOM_LENGTH]
    return intermediate + '_' + _opaque_checksum(intermediate)


def check_opaque_key(key, prefix):
    """Whether key has the shape and checksum of an opaque key with this prefix."""
    if not isinstance(key, str):
        return False
    pattern = '^%s[A-Za-z0-9_-]{%d}_[A-Za-z0-9_-]{%d}$' % (re.escape(prefix), _OPAQUE_RANDOM_LENGTH, _OPAQUE_CHECKSUM_LENGTH)
    if not re.match(pattern, key):
        return False
    intermediate, checksum = key[:-_OPAQUE_CHECKSUM_LENGTH - 1], key[-_OPAQUE_CHECKSUM_LENGTH:]
    return secrets.compare_digest(_opaque_checksum(intermediate), checksum)


def validate_options(options):
    if options.get('grace_days', 0) < 0:
        raise SupabaseKeysError('grace_days cannot be negative.')
    if options['ttl_days'] < 1:
        raise SupabaseKeysError('ttl_days must be at least 1.')
    if options['renew_days'] < 0:
        raise SupabaseKeysError('renew_days cannot be negative.')
    if options['renew_days'] >= options['ttl_days']:
        raise SupabaseKeysError('renew_days (%d) must be smaller than ttl_days (%d), or every run would mint new keys.'
                                % (options['renew_days'], options['ttl_days']))
    if not options['issuer']:
        raise SupabaseKeysError('issuer cannot be empty.')
    if options.get('jwt_secret') is not None:
        check_secret(options['jwt_secret'], 'given in jwt_secret')
    if options['force'] and any(options.get(name) for name, dummy in LEGACY_KEYS):
        raise SupabaseKeysError('force re-mints every key, so it cannot be combined with anon_key or service_role_key.')


class Plan(object):
    """What a run finds and does: the new stored state and, for every item, a secret-free before/after label."""

    def __init__(self):
        self.state = {}
        self.before = {}
        self.after = {}
        self.minted = []
        self.expires = {}
        self.warnings = []
        self.kid = None

    def keep(self, name, value, label):
        self.state[name] = value
        self.before[name] = label
        self.after[name] = label

    def mint(self, name, value, before, after):
        self.state[name] = value
        self.before[name] = before
        self.after[name] = after
        self.minted.append(name)


def _legacy_keys(plan, current, options, secret, now):
    iat = int(now)
    for name, role in LEGACY_KEYS:
        given = options.get(name)
        stored = current.get(name)
        if given:
            problem, exp = inspect_hs256(given, secret, role, options['issuer'])
            problem = problem or judge_expiry(exp, now, options['renew_days'])
            if problem:
                raise SupabaseKeysError('The %s given %s; give a valid key or leave %s out to have one minted.' % (name, problem, name))
            label = 'valid until %s' % format_time(exp)
            if given == stored:
                plan.keep(name, given, label)
            else:
                plan.state[name] = given
                plan.before[name] = _describe_stored_hs256(stored, secret, role, options['issuer'])
                plan.after[name] = 'given, ' + label
            plan.expires[name] = format_time(exp)
            continue
        if stored is not None and not options['force']:
            problem, exp = inspect_hs256(stored, secret, role, options['issuer'])
            problem = problem or judge_expiry(exp, now, options['renew_days'])
            if not problem:
                plan.keep(name, stored, 'valid until %s' % format_time(exp))
                plan.expires[name] = format_time(exp)
                continue
            before = 'stored key %s' % problem
        elif stored is not None:
            before = 'stored key (forced rotation)'
        else:
            before = 'absent'
        token = mint_hs256(secret, role, options['issuer'], iat, options['ttl_days'])
        exp = iat + options['ttl_days'] * DAY
        plan.mint(name, token, before, 'minted, valid until %s' % format_time(exp))
        plan.expires[name] = format_time(exp)


def _describe_stored_hs256(stored, secret, role, issuer):
    if stored is None:
        return 'absent'
    problem, exp = inspect_hs256(stored, secret, role, issuer)
    return 'stored key %s' % problem if problem else 'another key, valid until %s' % format_time(exp)


def _retired_keys(plan, current, options, now, replaced):
    """The public keys of earlier key pairs still in their grace period: those stored whose time has not come,
    plus REPLACED (the pair a rotation just retired, as (ec_jwk, kid)) when grace_days is above 0."""
    stored = current.get('retired_keys') or []
    kept = [entry for entry in stored if isinstance(entry, dict) and entry.get('retire_at', 0) > now and 'jwk' in entry]
    if replaced is not None and options.get('grace_days', 0) > 0:
        ec_jwk, kid = replaced
        kept.append({'jwk': public_jwk(ec_jwk, kid), 'retire_at': int(now) + options['grace_days'] * DAY})
    if kept != stored:
        plan.before['retired_keys'] = ', '.join('kid %s until %s' % (e['jwk'].get('kid'), format_time(e['retire_at']))
                                                for e in stored if isinstance(e, dict) and 'jwk' in e) or 'none'
        plan.after['retired_keys'] = ', '.join('kid %s until %s' % (e['jwk'].get('kid'), format_time(e['retire_at']))
                                               for e in kept) or 'none'
    if kept:
        plan.state['retired_keys'] = kept
    return kept


def _asymmetric_keys(plan, current, options, secret, now):
    iat = int(now)
    force = options['force'] or options.get('rotate_signing_key', False)
    ec_jwk = kid = private_key = None
    replaced = None
    before_label = 'absent'
    if current.get('jwt_keys') is not None and not force:
        try:
            ec_jwk, kid, private_key = parse_jwt_keys(current['jwt_keys'])
        except ValueError as exc:
            before_label = 'stored key set unusable (%s)' % exc
    elif current.get('jwt_keys') is not None:
        before_label = 'stored key set (forced rotation)'
        try:
            old_jwk, old_kid, dummy = parse_jwt_keys(current['jwt_keys'])
            replaced = (old_jwk, old_kid)
        except ValueError:
            replaced = None
    new_pair = private_key is None
    if new_pair:
        ec_jwk, kid = generate_ec_jwk(), str(uuid.uuid4())
        private_key = ec_key_from_jwk(dict(ec_jwk, kty='EC'))
    plan.kid = kid
    retired = _retired_keys(plan, current, options, now, replaced)

    jwt_keys = build_jwt_keys(ec_jwk, kid, secret)
    if new_pair:
        plan.mint('jwt_keys', jwt_keys, before_label, 'new EC P-256 key pair, kid %s' % kid)
    elif jwt_keys == current.get('jwt_keys'):
        plan.keep('jwt_keys', jwt_keys, 'EC P-256 key pair, kid %s' % kid)
    else:
        # Same key pair; the oct member follows the secret (or the layout is restored).
        plan.state['jwt_keys'] = jwt_keys
        plan.before['jwt_keys'] = 'EC P-256 key pair, kid %s, out-of-date symmetric key' % kid
        plan.after['jwt_keys'] = 'EC P-256 key pair, kid %s' % kid
    jwks = build_jwks(ec_jwk, kid, secret, retired)
    if jwks == current.get('jwks'):
        plan.keep('jwks', jwks, 'public key set, kid %s' % kid)
    else:
        plan.state['jwks'] = jwks
        plan.before['jwks'] = 'absent' if current.get('jwks') is None else 'public key set out of date'
        plan.after['jwks'] = 'public key set, kid %s' % kid

    public_key = private_key.public_key()
    for name, role in ASYMMETRIC_KEYS:
        stored = current.get(name)
        if stored is not None and not new_pair and not force:
            problem, exp = inspect_es256(stored, public_key, kid, role, options['issuer'])
            problem = problem or judge_expiry(exp, now, options['renew_days'])
            if not problem:
                plan.keep(name, stored, 'valid until %s' % format_time(exp))
                plan.expires[name] = format_time(exp)
                continue
            before = 'stored key %s' % problem
        elif stored is not None:
            before = 'stored key (new key pair)' if new_pair and not force else 'stored key (forced rotation)'
        else:
            before = 'absent'
        token = mint_es256(private_key, kid, role, options['issuer'], iat, options['ttl_days'])
        exp = iat + options['ttl_days'] * DAY
        plan.mint(name, token, before, 'minted, valid until %s' % format_time(exp))
        plan.expires[name] = format_time(exp)

    for name, prefix in OPAQUE_KEYS:
        stored = current.get(name)
        # The opaque keys name roles, not key pairs: a new signing key alone keeps them (the gateway maps
        # them to the new JWTs).
        if stored is not None and not options['force'] and check_opaque_key(stored, prefix):
            plan.keep(name, stored, 'present')
            continue
        if stored is None:
            before = 'absent'
        else:
            before = 'stored key (forced rotation)' if force else 'stored key malformed'
        plan.mint(name, generate_opaque_key(prefix), before, 'generated')


def plan_keys(current, options, now):
    """Decide the stored state from what the file holds (current, a dict) and the module options.

    options holds jwt_secret, issuer, ttl_days, renew_days, asymmetric, force, rotate_signing_key, grace_days,
    anon_key, service_role_key.
    Raises SupabaseKeysError before anything is decided when an input is unusable.
    """
    validate_options(options)
    current = current or {}
    plan = Plan()

    stored_secret = current.get('jwt_secret')
    given_secret = options.get('jwt_secret')
    if given_secret is not None:
        secret = given_secret
        if stored_secret == secret:
            plan.keep('jwt_secret', secret, 'present')
        else:
            plan.state['jwt_secret'] = secret
            plan.before['jwt_secret'] = 'absent' if stored_secret is None else 'another secret'
            plan.after['jwt_secret'] = 'the given secret'
    elif stored_secret is not None and not options['force']:
        check_secret(stored_secret, 'stored in the file')
        secret = stored_secret
        plan.keep('jwt_secret', secret, 'present')
    else:
        secret = generate_secret()
        plan.mint('jwt_secret', secret, 'absent' if stored_secret is None else 'present (forced rotation)', 'generated')
    secret_changed = secret != stored_secret

    _legacy_keys(plan, current, options, secret, now)

    if options['asymmetric']:
        _asymmetric_keys(plan, current, options, secret, now)
    else:
        leftovers = [name for name in ASYMMETRIC_FIELDS + (RETIRED_FIELD,) if name in current]
        if leftovers and secret_changed:
            # Their oct key still carries the old secret: stale material is worse than none.
            for name in leftovers:
                plan.before[name] = 'present'
                plan.after[name] = 'removed'
            plan.warnings.append('The asymmetric keys stored in the file were removed because the JWT secret changed and '
                                 'asymmetric is false; set asymmetric to true to mint new ones.')
        else:
            for name in leftovers:
                plan.state[name] = current[name]
    # Whatever else someone keeps in the file stays there.
    for name, value in current.items():
        if name not in SECRET_FIELDS and name != RETIRED_FIELD:
            plan.state[name] = value
    return plan
