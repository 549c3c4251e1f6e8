"""Unit tests of the pure bucket logic: validation, policies, lifecycle, tags, object lock, planning."""

import json

import pytest

from ansible_collections.soulmatting.selfhosted.plugins.module_utils import _s3_bucket as sb


# ---- bucket names and sizes ----

@pytest.mark.parametrize('name', ['abc', 'my-bucket', 'logs.2026', 'a' * 63, '0-9'])
def test_valid_bucket_names(name):
    assert sb.bucket_name_problem(name) is None


@pytest.mark.parametrize('name, words', [
    ('ab', '3 to 63'),
    ('a' * 64, '3 to 63'),
    ('My-Bucket', 'lowercase'),
    ('under_score', 'lowercase'),
    ('-start', 'starting and ending'),
    ('end-', 'starting and ending'),
    ('two..dots', 'next to each other'),
    ('dot.-dash', 'next to each other'),
    ('192.168.1.10', 'IP address'),
    ('xn--punycode', 'reserved'),
    ('thing-s3alias', 'reserved'),
    ('', 'non-empty'),
])
def test_invalid_bucket_names(name, words):
    problem = sb.bucket_name_problem(name)
    assert problem is not None and words in problem


@pytest.mark.parametrize('value, expected', [
    (0, 0), (1024, 1024), ('1024', 1024), ('10GiB', 10 * 1024 ** 3), ('10GB', 10 * 1000 ** 3),
    ('10G', 10 * 1024 ** 3), ('1.5 MiB', int(1.5 * 1024 ** 2)), ('500mb', 500 * 1000 ** 2), ('3 b', 3),
])
def test_parse_size(value, expected):
    assert sb.parse_size(value) == expected


@pytest.mark.parametrize('value', ['ten gigs', '10XB', True, '-1', ''])
def test_parse_size_rejects(value):
    with pytest.raises(sb.BucketSpecError):
        sb.parse_size(value)


# ---- policy presets and normalisation ----

def test_private_preset_is_no_policy():
    assert sb.preset_policy('private', 'b') is None
    assert sb.desired_policy('private', 'bkt') is None
    assert sb.policy_kind(None, 'bkt') == 'private'


@pytest.mark.parametrize('preset, bucket_actions, object_actions', [
    ('download', {'s3:GetBucketLocation', 's3:ListBucket'}, {'s3:GetObject'}),
    ('upload', {'s3:GetBucketLocation', 's3:ListBucketMultipartUploads'},
     {'s3:AbortMultipartUpload', 's3:DeleteObject', 's3:ListMultipartUploadParts', 's3:PutObject'}),
    ('public', {'s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'},
     {'s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'}),
])
def test_presets(preset, bucket_actions, object_actions):
    doc = sb.preset_policy(preset, 'media')
    by_resource = dict((tuple(s['Resource']), set(s['Action'])) for s in doc['Statement'])
    assert by_resource == {('arn:aws:s3:::media',): bucket_actions, ('arn:aws:s3:::media/*',): object_actions}
    assert all(s['Principal'] == {'AWS': ['*']} and s['Effect'] == 'Allow' for s in doc['Statement'])
    # A preset validates as a custom policy too, and is recognised by name.
    assert sb.policy_kind(sb.validate_policy(doc, 'media'), 'media') == preset
    assert sb.desired_policy(preset, 'media') == sb.normalise_policy(doc)


def test_preset_recognised_from_server_echo():
    # How SeaweedFS and MinIO echo the download preset: scalars for single items, other statement order.
    echoed = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},'
              '"Action":"s3:GetObject","Resource":"arn:aws:s3:::media/*"},'
              '{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:ListBucket","s3:GetBucketLocation"],'
              '"Resource":"arn:aws:s3:::media"}]}\n')
    assert sb.policy_kind(sb.normalise_policy(echoed), 'media') == 'download'
    assert sb.policy_kind(sb.normalise_policy(echoed), 'other') == 'custom'


def test_normalisation_ignores_order_whitespace_and_scalar_lists():
    a = {'Version': '2012-10-17', 'Statement': [
        {'Sid': 'read', 'Effect': 'Allow', 'Principal': '*', 'Action': 's3:GetObject', 'Resource': 'arn:aws:s3:::b/*'},
        {'Effect': 'Deny', 'Principal': {'AWS': 'arn:aws:iam::1:user/x'}, 'Action': ['s3:PutObject', 's3:DeleteObject'],
         'Resource': ['arn:aws:s3:::b/*'], 'Condition': {'IpAddress': {'aws:SourceIp': '10.0.0.0/8'}}},
    ]}
    b_text = json.dumps({'Statement': [
        {'Resource': ['arn:aws:s3:::b/*'], 'Action': ['s3:DeleteObject', 's3:PutObject'], 'Effect': 'Deny',
         'Condition': {'IpAddress': {'aws:SourceIp': ['10.0.0.0/8']}}, 'Principal': {'AWS': ['arn:aws:iam::1:user/x']}},
        {'Action': ['s3:GetObject'], 'Resource': ['arn:aws:s3:::b/*'], 'Principal': {'AWS': ['*']}, 'Effect': 'Allow', 'Sid': 'read'},
    ], 'Version': '2012-10-17'}, indent=4)
    assert sb.normalise_policy(a) == sb.normalise_policy(b_text)
    assert sb.normalise_policy(a) == sb.normalise_policy(sb.normalise_policy(a))


def test_normalisation_keeps_real_differences():
    base = {'Version': '2012-10-17', 'Statement': [
        {'Effect': 'Allow', 'Principal': '*', 'Action': 's3:GetObject', 'Resource': 'arn:aws:s3:::b/*'}]}
    other_action = json.loads(json.dumps(base))
    other_action['Statement'][0]['Action'] = 's3:PutObject'
    other_effect = json.loads(json.dumps(base))
    other_effect['Statement'][0]['Effect'] = 'Deny'
    other_resource = json.loads(json.dumps(base))
    other_resource['Statement'][0]['Resource'] = 'arn:aws:s3:::b/public/*'
    for changed in (other_action, other_effect, other_resource):
        assert sb.normalise_policy(base) != sb.normalise_policy(changed)


def test_single_statement_object_and_empty_sid():
    one = {'Version': '2012-10-17', 'Statement': {'Sid': '', 'Effect': 'Allow', 'Principal': {'AWS': '*'},
                                                  'Action': 's3:GetObject', 'Resource': 'arn:aws:s3:::b/*'}}
    listed = {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Principal': '*',
                                                      'Action': ['s3:GetObject'], 'Resource': ['arn:aws:s3:::b/*']}]}
    assert sb.normalise_policy(one) == sb.normalise_policy(listed)


@pytest.mark.parametrize('text, words', [
    ('{"Version": "2012-10-17", "Statement": [', 'not valid JSON'),
    ('{"Version": "2012-10-17", "Statement": []}', 'at least one statement'),
    ('{"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}]}', 'Effect'),
    ('{"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}', 'Principal'),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObjekt", "Resource": "*"}]}', "unknown S3 action 's3:GetObjekt'"),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ec2:RunInstances", "Resource": "*"}]}', 'start with "s3:"'),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:Fly*", "Resource": "*"}]}', 'matches no known'),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "b/*"}]}', 'not an S3 ARN'),
    ('{"Statement": [{"Effect": "Allow", "Principal": "*", "Resource": "*"}]}', 'needs an "Action"'),
    ('readonly', 'must be one of private, download, upload, public'),
    (['a'], 'must be one of'),
])
def test_bad_policies(text, words):
    with pytest.raises(sb.BucketSpecError) as err:
        sb.desired_policy(text, 'b')
    assert words in str(err.value)


@pytest.mark.parametrize('action', ['*', 's3:*', 's3:Get*', 's3:getobject', 's3:List?ucket', 's3:ListenBucketNotification'])
def test_accepted_actions(action):
    assert sb.action_problem(action) is None


def test_custom_policy_json_and_dict_are_equal():
    doc = {'Version': '2012-10-17', 'Statement': [
        {'Effect': 'Allow', 'Principal': '*', 'Action': ['s3:GetObject'], 'Resource': 'arn:aws:s3:::b/pub/*'}]}
    assert sb.desired_policy(doc, 'b') == sb.desired_policy(json.dumps(doc, indent=2), 'b')
    assert sb.policy_kind(sb.desired_policy(doc, 'b'), 'b') == 'custom'


# ---- lifecycle ----

def test_lifecycle_round_trip():
    rules = sb.validate_lifecycle([
        {'id': 'z-logs', 'prefix': 'logs/', 'expire_days': 30, 'noncurrent_expire_days': None,
         'abort_incomplete_multipart_days': 2, 'enabled': True},
        {'id': 'a-old', 'prefix': '', 'expire_days': None, 'noncurrent_expire_days': 7,
         'abort_incomplete_multipart_days': None, 'enabled': False},
    ])
    assert [r['id'] for r in rules] == ['a-old', 'z-logs']
    s3 = sb.lifecycle_to_s3(rules)
    assert s3['Rules'][0] == {'ID': 'a-old', 'Filter': {'Prefix': ''}, 'Status': 'Disabled',
                              'NoncurrentVersionExpiration': {'NoncurrentDays': 7}}
    assert s3['Rules'][1] == {'ID': 'z-logs', 'Filter': {'Prefix': 'logs/'}, 'Status': 'Enabled', 'Expiration': {'Days': 30},
                              'AbortIncompleteMultipartUpload': {'DaysAfterInitiation': 2}}
    # What the server echoes back (in any order) reads as the same rules.
    assert sb.lifecycle_from_s3(list(reversed(s3['Rules']))) == rules


def test_lifecycle_from_s3_legacy_prefix_and_unmanaged_parts():
    rules = sb.lifecycle_from_s3([
        {'ID': 'legacy', 'Prefix': 'tmp/', 'Status': 'Enabled', 'Expiration': {'Days': 1}},
        {'ID': 'tiering', 'Filter': {'And': {'Prefix': 'x/', 'Tags': [{'Key': 'k', 'Value': 'v'}]}}, 'Status': 'Enabled',
         'Transitions': [{'Days': 30, 'StorageClass': 'GLACIER'}], 'Expiration': {'ExpiredObjectDeleteMarker': True}},
    ])
    assert rules[0] == sb.lifecycle_rule('legacy', 'tmp/', True, 1)
    assert rules[1]['unmanaged'] == ['Expiration.ExpiredObjectDeleteMarker', 'Filter.And', 'Transitions']
    # A rule with unmanaged parts never equals a rule the module would write, so it gets replaced.
    assert rules[1] not in sb.validate_lifecycle([{'id': 'tiering', 'prefix': 'x/', 'expire_days': 1}])


@pytest.mark.parametrize('rules, words', [
    ([{'id': 'a', 'expire_days': 1}, {'id': 'a', 'expire_days': 2}], 'used twice'),
    ([{'id': 'a'}], 'at least one of'),
    ([{'id': 'a', 'expire_days': 0}], 'positive'),
    ([{'id': '', 'expire_days': 3}], 'needs an id'),
])
def test_lifecycle_rejects(rules, words):
    with pytest.raises(sb.BucketSpecError) as err:
        sb.validate_lifecycle(rules)
    assert words in str(err.value)


# ---- tags and object lock ----

def test_tags():
    assert sb.tags_from_s3([{'Key': 'a', 'Value': '1'}]) == {'a': '1'}
    assert sb.tags_to_s3({'b': '2', 'a': '1'}) == {'TagSet': [{'Key': 'a', 'Value': '1'}, {'Key': 'b', 'Value': '2'}]}
    assert sb.desired_tags({'a': '1', 'old': 'x'}, {'a': 2}, purge=True) == {'a': '2'}
    assert sb.desired_tags({'a': '1', 'old': 'x'}, {'a': 2}, purge=False) == {'a': '2', 'old': 'x'}


def test_object_lock_translation():
    assert sb.object_lock_state(None) == {'enabled': False, 'mode': None, 'days': None, 'years': None}
    s3 = {'ObjectLockEnabled': 'Enabled', 'Rule': {'DefaultRetention': {'Mode': 'GOVERNANCE', 'Days': 3}}}
    state = sb.object_lock_state(s3)
    assert state == {'enabled': True, 'mode': 'GOVERNANCE', 'days': 3, 'years': None}
    assert sb.object_lock_to_s3(state) == s3
    assert sb.object_lock_to_s3({'enabled': True, 'mode': 'COMPLIANCE', 'days': None, 'years': 1}) == {
        'ObjectLockEnabled': 'Enabled', 'Rule': {'DefaultRetention': {'Mode': 'COMPLIANCE', 'Years': 1}}}
    assert sb.object_lock_to_s3({'enabled': True, 'mode': None, 'days': None, 'years': None}) == {'ObjectLockEnabled': 'Enabled'}


@pytest.mark.parametrize('option, words', [
    ({'enabled': True, 'mode': 'GOVERNANCE', 'days': None, 'years': None}, 'needs a retention period'),
    ({'enabled': True, 'mode': None, 'days': 3, 'years': None}, 'need object_lock.mode'),
    ({'enabled': False, 'mode': 'GOVERNANCE', 'days': 3, 'years': None}, 'needs object_lock.enabled=true'),
    ({'enabled': True, 'mode': 'GOVERNANCE', 'days': 0, 'years': None}, 'needs a retention period'),
    ({'enabled': True, 'mode': 'GOVERNANCE', 'days': -2, 'years': None}, 'positive'),
])
def test_object_lock_rejects(option, words):
    with pytest.raises(sb.BucketSpecError) as err:
        sb.validate_object_lock(option)
    assert words in str(err.value)


# ---- desired state, conflicts, plan ----

def _existing(**overrides):
    state = {'name': 'b', 'exists': True, 'policy': None, 'access': 'private', 'versioning': 'disabled',
             'object_lock': {'enabled': False, 'mode': None, 'days': None, 'years': None},
             'lifecycle': [], 'tags': {}, 'quota': None}
    state.update(overrides)
    return state


def test_plan_new_bucket_everything():
    spec = {'policy': {'document': sb.desired_policy('download', 'b'), 'kind': 'download'}, 'versioning': None,
            'object_lock': sb.validate_object_lock({'enabled': True, 'mode': 'GOVERNANCE', 'days': 1}),
            'lifecycle': sb.validate_lifecycle([{'id': 'r', 'expire_days': 3}]), 'tags': {'a': '1'}, 'purge_tags': True,
            'quota': 1024}
    after = sb.desired_state(sb.absent_state('b'), spec)
    assert after['versioning'] == 'enabled'  # object lock brings versioning
    assert after['access'] == 'download' and after['quota'] == 1024
    assert sb.plan(sb.absent_state('b'), after) == ['create', 'object_lock', 'put_policy', 'put_lifecycle', 'put_tags', 'quota']


def test_plan_new_bucket_defaults_only():
    spec = {'purge_tags': True}
    after = sb.desired_state(sb.absent_state('b'), spec)
    assert sb.plan(sb.absent_state('b'), after) == ['create']
    assert after['access'] == 'private' and after['versioning'] == 'disabled'


def test_plan_idempotent_and_left_alone():
    current = _existing(versioning='enabled', tags={'a': '1'}, lifecycle=sb.validate_lifecycle([{'id': 'r', 'expire_days': 3}]))
    # Nothing given: nothing changes.
    assert sb.plan(current, sb.desired_state(current, {'purge_tags': True})) == []
    # The same values again: nothing changes.
    spec = {'versioning': 'enabled', 'tags': {'a': 1}, 'purge_tags': True,
            'lifecycle': sb.validate_lifecycle([{'id': 'r', 'expire_days': 3}])}
    assert sb.plan(current, sb.desired_state(current, spec)) == []


def test_plan_changes_and_removals():
    current = _existing(versioning='enabled', tags={'a': '1'}, lifecycle=sb.validate_lifecycle([{'id': 'r', 'expire_days': 3}]),
                        policy=sb.desired_policy('public', 'b'), access='public')
    spec = {'versioning': 'suspended', 'tags': {}, 'purge_tags': True, 'lifecycle': [],
            'policy': {'document': None, 'kind': 'private'}}
    after = sb.desired_state(current, spec)
    assert sb.plan(current, after) == ['versioning', 'delete_policy', 'delete_lifecycle', 'delete_tags']
    # Merging tags without purge keeps the old ones.
    after = sb.desired_state(current, {'tags': {'b': '2'}, 'purge_tags': False})
    assert after['tags'] == {'a': '1', 'b': '2'} and sb.plan(current, after) == ['put_tags']


def test_plan_retention_change_on_locked_bucket():
    current = _existing(versioning='enabled', object_lock={'enabled': True, 'mode': 'GOVERNANCE', 'days': 1, 'years': None})
    spec = {'object_lock': sb.validate_object_lock({'enabled': True, 'mode': 'COMPLIANCE', 'years': 1}), 'purge_tags': True}
    assert sb.plan(current, sb.desired_state(current, spec)) == ['object_lock']
    spec = {'object_lock': sb.validate_object_lock({'enabled': True}), 'purge_tags': True}
    assert sb.plan(current, sb.desired_state(current, spec)) == ['object_lock']  # removes the default retention
    assert sb.conflicts(current, spec) == []


def test_conflicts():
    unlocked = _existing()
    locked = _existing(versioning='enabled', object_lock={'enabled': True, 'mode': None, 'days': None, 'years': None})
    want_lock = {'object_lock': sb.validate_object_lock({'enabled': True})}
    assert 'only be enabled when bucket b is created' in sb.conflicts(unlocked, want_lock)[0]
    assert sb.conflicts(sb.absent_state('b'), want_lock) == []
    assert 'cannot be disabled' in sb.conflicts(locked, {'object_lock': sb.validate_object_lock({'enabled': False})})[0]
    assert 'cannot be suspended' in sb.conflicts(locked, {'versioning': 'suspended'})[0]
    assert 'cannot be suspended' in sb.conflicts(sb.absent_state('b'), dict(want_lock, versioning='suspended'))[0]
    assert sb.conflicts(unlocked, {'versioning': 'suspended'}) == []


def test_diff_view_drops_unknown_values():
    assert sb.diff_view({'name': 'b', 'quota': None, 'tags': {}}) == {'name': 'b', 'tags': {}}
