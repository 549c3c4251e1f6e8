# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure logic of the minio_bucket module: validation, policy presets and normalisation, lifecycle
translation, desired state and the list of changes. Nothing here talks to a server."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import json
import re

from ansible.module_utils.six import string_types

POLICY_VERSION = '2012-10-17'
PRESETS = ('private', 'download', 'upload', 'public')

# The anonymous-access presets, the way `mc anonymous set` writes them.
_PRESET_ACTIONS = {
    'download': (['s3:GetBucketLocation', 's3:ListBucket'], ['s3:GetObject']),
    'upload': (['s3:GetBucketLocation', 's3:ListBucketMultipartUploads'],
               ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:ListMultipartUploadParts', 's3:PutObject']),
    'public': (['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
               ['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject']),
}

# S3 policy actions (AWS plus MinIO's extras); compared case-insensitively as S3 does.
KNOWN_ACTIONS = frozenset(a.lower() for a in """
AbortMultipartUpload BypassGovernanceRetention CreateAccessPoint CreateBucket CreateJob DeleteAccessPoint DeleteBucket
DeleteBucketOwnershipControls DeleteBucketPolicy DeleteBucketWebsite DeleteObject DeleteObjectTagging DeleteObjectVersion
DeleteObjectVersionTagging ForceDeleteBucket GetAccelerateConfiguration GetAnalyticsConfiguration GetBucketAcl GetBucketCORS
GetBucketLocation GetBucketLogging GetBucketNotification GetBucketObjectLockConfiguration GetBucketOwnershipControls
GetBucketPolicy GetBucketPolicyStatus GetBucketPublicAccessBlock GetBucketRequestPayment GetBucketTagging GetBucketVersioning
GetBucketWebsite GetEncryptionConfiguration GetIntelligentTieringConfiguration GetInventoryConfiguration
GetLifecycleConfiguration GetMetricsConfiguration GetObject GetObjectAcl GetObjectAttributes GetObjectLegalHold
GetObjectRetention GetObjectTagging GetObjectTorrent GetObjectVersion GetObjectVersionAcl GetObjectVersionAttributes
GetObjectVersionForReplication GetObjectVersionTagging GetObjectVersionTorrent GetReplicationConfiguration HeadBucket
HeadObject ListAllMyBuckets ListBucket ListBucketMultipartUploads ListBucketVersions ListenBucketNotification
ListenNotification ListMultipartUploadParts ObjectOwnerOverrideToBucketOwner PutAccelerateConfiguration
PutAnalyticsConfiguration PutBucketAcl PutBucketCORS PutBucketLogging PutBucketNotification PutBucketObjectLockConfiguration
PutBucketOwnershipControls PutBucketPolicy PutBucketPublicAccessBlock PutBucketRequestPayment PutBucketTagging
PutBucketVersioning PutBucketWebsite PutEncryptionConfiguration PutIntelligentTieringConfiguration PutInventoryConfiguration
PutLifecycleConfiguration PutMetricsConfiguration PutObject PutObjectAcl PutObjectLegalHold PutObjectRetention
PutObjectTagging PutObjectVersionAcl PutObjectVersionTagging PutReplicationConfiguration ReplicateDelete ReplicateObject
ReplicateTags RestoreObject
""".split())

_LIST_KEYS = ('Action', 'NotAction', 'Resource', 'NotResource')
_PRINCIPAL_KEYS = ('Principal', 'NotPrincipal')
_BUCKET_NAME_RE = re.compile(r'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$')
_IPV4_RE = re.compile(r'^\d{1,3}(\.\d{1,3}){3}$')
_SIZE_RE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([kmgtp]i?b?|b)?\s*$', re.IGNORECASE)
_SIZE_UNITS = {'': 1, 'b': 1}
for _i, _u in enumerate('kmgtp'):
    _SIZE_UNITS[_u + 'b'] = 1000 ** (_i + 1)
    _SIZE_UNITS[_u + 'ib'] = 1024 ** (_i + 1)
    _SIZE_UNITS[_u] = 1024 ** (_i + 1)
    _SIZE_UNITS[_u + 'i'] = 1024 ** (_i + 1)


class BucketSpecError(ValueError):
    """Bad input, phrased as one sentence."""


# ---- validation ----

def bucket_name_problem(name):
    """Return why `name` is not a valid S3 bucket name, or None."""
    if not isinstance(name, string_types) or not name:
        return 'The bucket name must be a non-empty string.'
    if len(name) < 3 or len(name) > 63:
        return 'Invalid bucket name %r: it must be 3 to 63 characters long.' % name
    if not _BUCKET_NAME_RE.match(name):
        return ('Invalid bucket name %r: use only lowercase letters, digits, dots and hyphens, '
                'starting and ending with a letter or digit.' % name)
    if '..' in name or '.-' in name or '-.' in name:
        return 'Invalid bucket name %r: dots may not be next to each other or to a hyphen.' % name
    if _IPV4_RE.match(name):
        return 'Invalid bucket name %r: it may not look like an IP address.' % name
    if name.startswith('xn--') or name.endswith('-s3alias') or name.endswith('--ol-s3'):
        return 'Invalid bucket name %r: the prefix xn-- and the suffixes -s3alias and --ol-s3 are reserved.' % name
    return None


def parse_size(value):
    """Bytes from an int or a size string: "10GiB" (1024-based), "10GB" (1000-based), "10G" (1024-based)."""
    if isinstance(value, bool):
        raise BucketSpecError('quota must be a size such as 10GiB or a number of bytes, not a boolean.')
    if isinstance(value, int):
        number, unit = value, ''
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise BucketSpecError('quota %r is not a size: use a number of bytes or a value like 500MiB or 10GB.' % (value,))
        number, unit = float(match.group(1)), (match.group(2) or '').lower()
    result = int(number * _SIZE_UNITS[unit])
    if result < 0:
        raise BucketSpecError('quota may not be negative.')
    return result


# ---- policy ----

def preset_policy(preset, bucket):
    """The policy document of an anonymous-access preset (None for private)."""
    if preset == 'private':
        return None
    bucket_actions, object_actions = _PRESET_ACTIONS[preset]
    return {
        'Version': POLICY_VERSION,
        'Statement': [
            {'Effect': 'Allow', 'Principal': {'AWS': ['*']}, 'Action': list(bucket_actions),
             'Resource': ['arn:aws:s3:::%s' % bucket]},
            {'Effect': 'Allow', 'Principal': {'AWS': ['*']}, 'Action': list(object_actions),
             'Resource': ['arn:aws:s3:::%s/*' % bucket]},
        ],
    }


def _as_sorted_list(value):
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    return sorted(set(items), key=lambda item: json.dumps(item, sort_keys=True))


def _normalise_principal(value):
    # AWS treats "*" and {"AWS": "*"} alike; MinIO echoes the latter as {"AWS": ["*"]}.
    if value == '*':
        return {'AWS': ['*']}
    if isinstance(value, dict):
        return dict((key, _as_sorted_list(item)) for key, item in value.items())
    return value


def _normalise_statement(statement):
    if not isinstance(statement, dict):
        raise BucketSpecError('Each policy statement must be an object, got %r.' % (statement,))
    result = {}
    for key, value in statement.items():
        if key == 'Sid' and value in ('', None):
            continue
        if key in _LIST_KEYS:
            result[key] = _as_sorted_list(value)
        elif key in _PRINCIPAL_KEYS:
            result[key] = _normalise_principal(value)
        elif key == 'Condition' and isinstance(value, dict):
            if value:
                result[key] = dict(
                    (operator, dict((cond_key, _as_sorted_list(cond_value)) for cond_key, cond_value in conditions.items())
                     if isinstance(conditions, dict) else conditions)
                    for operator, conditions in value.items())
        else:
            result[key] = value
    return result


def normalise_policy(policy):
    """Canonical form of a policy document: lists for Action/Resource/Principal values, sorted lists and statements.

    Two documents that S3 servers treat alike (key order, whitespace, "x" vs ["x"]) normalise to equal values.
    """
    if policy is None:
        return None
    if isinstance(policy, string_types):
        policy = parse_policy_json(policy)
    if not isinstance(policy, dict):
        raise BucketSpecError('The policy must be a JSON object.')
    result = {}
    for key, value in policy.items():
        if key == 'Statement':
            statements = value if isinstance(value, list) else [value]
            normalised = [_normalise_statement(statement) for statement in statements]
            unique = dict((json.dumps(statement, sort_keys=True), statement) for statement in normalised)
            result[key] = [unique[k] for k in sorted(unique)]
        elif key == 'Id' and value in ('', None):
            continue
        else:
            result[key] = value
    return result


def parse_policy_json(text):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise BucketSpecError('The policy is not valid JSON: %s.' % str(exc).rstrip('.'))


def validate_policy(policy, bucket):
    """Check a custom policy document; returns it normalised or raises BucketSpecError."""
    document = normalise_policy(policy)
    statements = document.get('Statement')
    if not statements:
        raise BucketSpecError('The policy needs at least one statement in "Statement".')
    for index, statement in enumerate(statements, start=1):
        if statement.get('Effect') not in ('Allow', 'Deny'):
            raise BucketSpecError('Policy statement %d needs "Effect" set to "Allow" or "Deny".' % index)
        if 'Principal' not in statement and 'NotPrincipal' not in statement:
            raise BucketSpecError('Policy statement %d of a bucket policy needs a "Principal".' % index)
        actions = statement.get('Action', []) + statement.get('NotAction', [])
        if not actions:
            raise BucketSpecError('Policy statement %d needs an "Action".' % index)
        for action in actions:
            problem = action_problem(action)
            if problem:
                raise BucketSpecError('Policy statement %d: %s' % (index, problem))
        resources = statement.get('Resource', []) + statement.get('NotResource', [])
        if not resources:
            raise BucketSpecError('Policy statement %d needs a "Resource".' % index)
        for resource in resources:
            if not isinstance(resource, string_types) or not (resource == '*' or resource.startswith('arn:aws:s3:::')):
                raise BucketSpecError('Policy statement %d: resource %r is not an S3 ARN (arn:aws:s3:::%s...).' % (index, resource, bucket))
    return document


def action_problem(action):
    """Why a policy action is not acceptable, or None."""
    if not isinstance(action, string_types):
        return 'action %r is not a string.' % (action,)
    if action == '*':
        return None
    if not action.lower().startswith('s3:'):
        return 'action %r is not an S3 action (they start with "s3:").' % action
    name = action[3:]
    if '*' in name or '?' in name:
        pattern = re.compile('^' + re.escape(name.lower()).replace(r'\*', '.*').replace(r'\?', '.') + '$')
        if any(pattern.match(known) for known in KNOWN_ACTIONS):
            return None
        return 'the wildcard action %r matches no known S3 action.' % action
    if name.lower() not in KNOWN_ACTIONS:
        return 'unknown S3 action %r.' % action
    return None


def policy_kind(policy, bucket):
    """Name the preset a (normalised) policy equals: private, download, upload, public, or custom."""
    if policy is None:
        return 'private'
    normalised = normalise_policy(policy)
    for preset in ('download', 'upload', 'public'):
        if normalised == normalise_policy(preset_policy(preset, bucket)):
            return preset
    return 'custom'


def desired_policy(value, bucket):
    """Normalised document for the `policy` option (preset name, dict or JSON string); None means no policy."""
    if isinstance(value, string_types):
        stripped = value.strip()
        if stripped in PRESETS:
            return normalise_policy(preset_policy(stripped, bucket))
        if not stripped.startswith('{'):
            raise BucketSpecError('policy must be one of %s, or a policy document (a dict or JSON text); got %r.'
                                  % (', '.join(PRESETS), value if len(value) < 40 else value[:40] + '...'))
        value = parse_policy_json(stripped)
    if not isinstance(value, dict):
        raise BucketSpecError('policy must be one of %s, or a policy document (a dict or JSON text).' % ', '.join(PRESETS))
    return validate_policy(value, bucket)


# ---- lifecycle ----

_LIFECYCLE_FIELDS = ('expire_days', 'noncurrent_expire_days', 'abort_incomplete_multipart_days')


def validate_lifecycle(rules):
    """Check and complete the `lifecycle` option; returns the rules sorted by id in the module's own form."""
    seen = set()
    result = []
    for rule in rules:
        rule_id = rule.get('id')
        if not rule_id or len(rule_id) > 255:
            raise BucketSpecError('Every lifecycle rule needs an id of 1 to 255 characters.')
        if rule_id in seen:
            raise BucketSpecError('Lifecycle rule id %r is used twice.' % rule_id)
        seen.add(rule_id)
        if all(rule.get(field) is None for field in _LIFECYCLE_FIELDS):
            raise BucketSpecError('Lifecycle rule %r needs at least one of %s.' % (rule_id, ', '.join(_LIFECYCLE_FIELDS)))
        for field in _LIFECYCLE_FIELDS:
            if rule.get(field) is not None and rule[field] < 1:
                raise BucketSpecError('Lifecycle rule %r: %s must be a positive number of days.' % (rule_id, field))
        result.append(lifecycle_rule(rule_id, rule.get('prefix') or '', rule.get('enabled', True) is not False,
                                     rule.get('expire_days'), rule.get('noncurrent_expire_days'),
                                     rule.get('abort_incomplete_multipart_days')))
    return sorted(result, key=lambda item: item['id'])


def lifecycle_rule(rule_id, prefix, enabled, expire_days=None, noncurrent_expire_days=None, abort_days=None, unmanaged=None):
    rule = {
        'id': rule_id,
        'prefix': prefix,
        'enabled': enabled,
        'expire_days': expire_days,
        'noncurrent_expire_days': noncurrent_expire_days,
        'abort_incomplete_multipart_days': abort_days,
    }
    if unmanaged:
        rule['unmanaged'] = sorted(unmanaged)
    return rule


def lifecycle_to_s3(rules):
    """The module's lifecycle rules as an S3 LifecycleConfiguration."""
    s3_rules = []
    for rule in rules:
        s3_rule = {'ID': rule['id'], 'Filter': {'Prefix': rule['prefix'] or ''},
                   'Status': 'Enabled' if rule['enabled'] else 'Disabled'}
        if rule.get('expire_days') is not None:
            s3_rule['Expiration'] = {'Days': rule['expire_days']}
        if rule.get('noncurrent_expire_days') is not None:
            s3_rule['NoncurrentVersionExpiration'] = {'NoncurrentDays': rule['noncurrent_expire_days']}
        if rule.get('abort_incomplete_multipart_days') is not None:
            s3_rule['AbortIncompleteMultipartUpload'] = {'DaysAfterInitiation': rule['abort_incomplete_multipart_days']}
        s3_rules.append(s3_rule)
    return {'Rules': s3_rules}


def lifecycle_from_s3(s3_rules):
    """S3 lifecycle rules in the module's form; parts the module does not manage are listed under `unmanaged`."""
    result = []
    for s3_rule in s3_rules or []:
        unmanaged = []
        prefix = s3_rule.get('Prefix')  # the legacy form puts Prefix at the top level
        rule_filter = s3_rule.get('Filter')
        if isinstance(rule_filter, dict):
            for key, value in rule_filter.items():
                if key == 'Prefix':
                    prefix = value
                elif value not in (None, {}, []):
                    unmanaged.append('Filter.%s' % key)
        expiration = s3_rule.get('Expiration') or {}
        for key in expiration:
            if key != 'Days':
                unmanaged.append('Expiration.%s' % key)
        noncurrent = s3_rule.get('NoncurrentVersionExpiration') or {}
        for key in noncurrent:
            if key != 'NoncurrentDays':
                unmanaged.append('NoncurrentVersionExpiration.%s' % key)
        for key in s3_rule:
            if key not in ('ID', 'Prefix', 'Filter', 'Status', 'Expiration', 'NoncurrentVersionExpiration', 'AbortIncompleteMultipartUpload'):
                unmanaged.append(key)
        result.append(lifecycle_rule(
            s3_rule.get('ID') or '', prefix or '', s3_rule.get('Status') == 'Enabled',
            expiration.get('Days'), noncurrent.get('NoncurrentDays'),
            (s3_rule.get('AbortIncompleteMultipartUpload') or {}).get('DaysAfterInitiation'), unmanaged))
    return sorted(result, key=lambda item: item['id'])


# ---- tags ----

def tags_from_s3(tag_set):
    return dict((tag['Key'], tag['Value']) for tag in tag_set or [])


def tags_to_s3(tags):
    return {'TagSet': [{'Key': key, 'Value': tags[key]} for key in sorted(tags)]}


def desired_tags(current, wanted, purge):
    wanted = dict((str(key), '' if value is None else str(value)) for key, value in (wanted or {}).items())
    if purge:
        return wanted
    merged = dict(current or {})
    merged.update(wanted)
    return merged


# ---- object lock ----

def object_lock_state(config):
    """Object lock configuration (S3 form or None) as {'enabled', 'mode', 'days', 'years'}."""
    config = config or {}
    retention = (config.get('Rule') or {}).get('DefaultRetention') or {}
    return {
        'enabled': config.get('ObjectLockEnabled') == 'Enabled',
        'mode': retention.get('Mode'),
        'days': retention.get('Days'),
        'years': retention.get('Years'),
    }


def object_lock_to_s3(state):
    config = {'ObjectLockEnabled': 'Enabled'}
    if state.get('mode'):
        retention = {'Mode': state['mode']}
        if state.get('days'):
            retention['Days'] = state['days']
        else:
            retention['Years'] = state['years']
        config['Rule'] = {'DefaultRetention': retention}
    return config


def validate_object_lock(option):
    if option is None:
        return None
    enabled = option.get('enabled', True) is not False
    mode, days, years = option.get('mode'), option.get('days'), option.get('years')
    if not enabled and (mode or days or years):
        raise BucketSpecError('object_lock retention (mode, days, years) needs object_lock.enabled=true.')
    if mode and not (days or years):
        raise BucketSpecError('object_lock.mode needs a retention period in object_lock.days or object_lock.years.')
    if (days or years) and not mode:
        raise BucketSpecError('object_lock.days and object_lock.years need object_lock.mode (GOVERNANCE or COMPLIANCE).')
    for name, value in (('days', days), ('years', years)):
        if value is not None and value < 1:
            raise BucketSpecError('object_lock.%s must be a positive number.' % name)
    return {'enabled': enabled, 'mode': mode if enabled else None, 'days': days if mode else None, 'years': years if mode else None}


# ---- state and plan ----

def absent_state(name):
    return {'name': name, 'exists': False}


def desired_state(current, spec):
    """The bucket as it should be: the current state with every option the user set applied.

    `spec` holds validated options; a key that is None is left as the server has it.
    """
    after = copy.deepcopy(current)
    after['exists'] = True
    if not current.get('exists'):
        # A new bucket starts with the server's defaults.
        after.update(policy=None, access='private', versioning='disabled', lifecycle=[], tags={},
                     object_lock={'enabled': False, 'mode': None, 'days': None, 'years': None})
        if spec.get('quota') is not None:
            after['quota'] = 0
    if spec.get('policy') is not None:
        after['policy'] = spec['policy']['document']
        after['access'] = spec['policy']['kind']
    if spec.get('object_lock') is not None:
        after['object_lock'] = dict(spec['object_lock'])
        if spec['object_lock']['enabled'] and not current.get('exists'):
            # S3 turns versioning on for buckets created with object lock.
            after['versioning'] = 'enabled'
    if spec.get('versioning') is not None:
        after['versioning'] = spec['versioning']
    if spec.get('lifecycle') is not None:
        after['lifecycle'] = spec['lifecycle']
    if spec.get('tags') is not None:
        after['tags'] = desired_tags(current.get('tags') if current.get('exists') else {}, spec['tags'], spec.get('purge_tags', True))
    if spec.get('quota') is not None:
        after['quota'] = spec['quota']
    return after


def conflicts(current, spec):
    """Requests that cannot be met for this bucket, each as one sentence (checked before any write)."""
    problems = []
    lock = spec.get('object_lock')
    exists = current.get('exists')
    current_lock = current.get('object_lock') or {}
    if lock is not None and exists:
        if lock['enabled'] and not current_lock.get('enabled'):
            problems.append('Object lock can only be enabled when bucket %s is created; it exists without object lock '
                            '(recreate it, or drop object_lock).' % current['name'])
        if not lock['enabled'] and current_lock.get('enabled'):
            problems.append('Object lock cannot be disabled on bucket %s once it is enabled.' % current['name'])
    lock_on = (lock or {}).get('enabled') if lock is not None else current_lock.get('enabled')
    if lock_on and spec.get('versioning') == 'suspended':
        problems.append('Versioning cannot be suspended on bucket %s because object lock needs it enabled.' % current['name'])
    return problems


def plan(current, after):
    """Operations that turn `current` into `after`, in the order they must run (each a short string)."""
    ops = []
    if not current.get('exists'):
        ops.append('create')
        locked = after['object_lock']['enabled']
        # Creating with object lock also enables versioning.
        before = {'versioning': 'enabled' if locked else 'disabled', 'policy': None, 'lifecycle': [], 'tags': {},
                  'object_lock': {'enabled': locked, 'mode': None, 'days': None, 'years': None}, 'quota': 0}
    else:
        before = current
    if after.get('versioning') != before.get('versioning') and after.get('versioning') in ('enabled', 'suspended'):
        ops.append('versioning')
    if (after.get('object_lock') or {}).get('enabled') and after['object_lock'] != before.get('object_lock'):
        ops.append('object_lock')
    if after.get('policy') != before.get('policy'):
        ops.append('delete_policy' if after.get('policy') is None else 'put_policy')
    if after.get('lifecycle') != before.get('lifecycle'):
        ops.append('delete_lifecycle' if not after.get('lifecycle') else 'put_lifecycle')
    if after.get('tags') != before.get('tags'):
        ops.append('delete_tags' if not after.get('tags') else 'put_tags')
    if after.get('quota') is not None and after.get('quota') != before.get('quota'):
        ops.append('quota')
    return ops


def diff_view(state):
    """A copy of a bucket state fit for Ansible's diff (keys with unknown values dropped)."""
    return dict((key, value) for key, value in state.items() if value is not None)
