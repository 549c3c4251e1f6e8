#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: minio_bucket
short_description: Manage S3 buckets on MinIO and other S3-compatible servers
version_added: 0.1.0
description:
  - Creates, configures and deletes a bucket on MinIO or any server speaking the S3 API
    (SeaweedFS, RustFS, Ceph RGW, Garage, AWS S3), idempotently.
  - Manages anonymous access (presets or a custom policy), versioning, object lock with default retention,
    lifecycle rules, tags and, on MinIO only, the bucket quota.
  - Every option left out is left as the server has it.
  - All input is validated and the bucket's current state read before the first change is made.
author:
  - SoulMatting maintainers (@soulmatting)
extends_documentation_fragment:
  - soulmatting.selfhosted.s3
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the bucket.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
options:
  name:
    description:
      - Name of the bucket (3 to 63 lowercase letters, digits, dots and hyphens).
    type: str
    required: true
    aliases: [bucket]
  state:
    description:
      - V(present) creates the bucket if needed and applies the given settings.
      - V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  force:
    description:
      - With O(state=absent), delete every object, object version and delete marker (and abort unfinished
        multipart uploads) before deleting the bucket.
      - Without it, deleting a bucket that is not empty fails and changes nothing.
      - Objects under COMPLIANCE retention cannot be deleted; objects under GOVERNANCE retention are deleted with
        the governance bypass, which needs the C(s3:BypassGovernanceRetention) permission.
    type: bool
    default: false
  policy:
    description:
      - Anonymous access to the bucket.
      - V(private) removes the bucket policy; V(download) allows anonymous listing and reading; V(upload) allows
        anonymous writing (and multipart uploads) but not reading; V(public) allows both. These are the same
        policies as C(mc anonymous set).
      - Anything else is a custom bucket policy, given as a dict or as JSON text. It is compared with the
        bucket's policy after normalising (key order, whitespace, statement order and single values versus
        one-item lists for Action, Resource and Principal), so only a real difference counts as a change.
      - Custom policies are checked before anything is written. Actions must be V(*) or start with C(s3:) and be
        known S3 actions or wildcards matching one, resources must be S3 ARNs.
    type: raw
  versioning:
    description:
      - V(enabled) or V(suspended). A bucket whose versioning was never enabled cannot return to that state.
    type: str
    choices: [enabled, suspended]
  object_lock:
    description:
      - Object lock (WORM) settings.
      - Object lock can only be turned on when the bucket is created (S3 then enables versioning as well);
        asking for it on an existing bucket without object lock fails, and it can never be turned off.
      - The default retention is managed as given, so leaving out O(object_lock.mode) removes it.
    type: dict
    suboptions:
      enabled:
        description: Whether the bucket has object lock.
        type: bool
        default: true
      mode:
        description: Default retention mode applied to new objects.
        type: str
        choices: [GOVERNANCE, COMPLIANCE]
      days:
        description: Default retention period in days.
        type: int
      years:
        description: Default retention period in years.
        type: int
  lifecycle:
    description:
      - Lifecycle rules, replacing those of the bucket. An empty list removes the lifecycle configuration.
    type: list
    elements: dict
    suboptions:
      id:
        description: Unique rule ID.
        type: str
        required: true
      prefix:
        description: Object key prefix the rule applies to; empty means the whole bucket.
        type: str
        default: ''
      expire_days:
        description: Days after creation when current object versions expire.
        type: int
      noncurrent_expire_days:
        description: Days after becoming noncurrent when old object versions are deleted.
        type: int
      abort_incomplete_multipart_days:
        description: Days after which unfinished multipart uploads are aborted.
        type: int
      enabled:
        description: Whether the rule is active.
        type: bool
        default: true
  tags:
    description:
      - Bucket tags as a dict. An empty dict with O(purge_tags=true) removes all tags.
    type: dict
  purge_tags:
    description:
      - Remove tags not listed in O(tags). Has no effect when O(tags) is not given.
    type: bool
    default: true
  quota:
    description:
      - Hard quota of the bucket, in bytes or as a size such as V(10GiB) (1024-based) or V(10GB) (1000-based);
        V(0) removes the quota.
      - MinIO only, set through the MinIO admin API (C(/minio/admin/v3/set-bucket-quota)) with the same
        credentials, which need the admin permission for bucket quotas. Against a server that is not MinIO
        (told by its C(Server) response header) the task fails before anything is changed.
    type: raw
notes:
  - Tested against SeaweedFS 4.48 (a real S3 server with signature checks), where bucket creation and deletion
    (with C(force) on versioned objects), all four policy presets and custom policies, versioning, object lock
    with default retention, lifecycle rules and tags were exercised in check, apply and idempotence runs.
  - SeaweedFS 4.48 serves anonymous reads granted by a bucket policy but refuses anonymous writes even when the
    policy allows C(s3:PutObject); the O(policy=upload) and O(policy=public) presets are stored correctly there,
    yet only MinIO (and AWS) honour their write part.
  - The quota feature was not exercised against MinIO (no MinIO server was available to the tests); its request
    construction and signing are unit-tested, and against SeaweedFS only the "not MinIO" refusal was tested.
  - Objects are never read or uploaded by this module; only C(force) deletes them.
seealso:
  - name: mc anonymous
    description: The MinIO client command whose presets O(policy) mirrors.
    link: https://min.io/docs/minio/linux/reference/minio-mc/mc-anonymous-set.html
'''

EXAMPLES = r'''
- name: Create the storage bucket, private, versioned, with a lifecycle and tags
  soulmatting.selfhosted.minio_bucket:
    endpoint_url: http://127.0.0.1:9000
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    name: supabase-storage
    policy: private
    versioning: enabled
    lifecycle:
      - id: expire-old-versions
        noncurrent_expire_days: 30
        abort_incomplete_multipart_days: 7
    tags:
      app: supabase

- name: Public downloads from a bucket
  soulmatting.selfhosted.minio_bucket:
    endpoint_url: https://s3.example.org
    ca_path: /etc/ssl/private-ca.pem
    name: public-assets
    policy: download

- name: A custom policy (key order and whitespace never cause a change)
  soulmatting.selfhosted.minio_bucket:
    endpoint_url: http://127.0.0.1:9000
    name: reports
    policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: "*"
          Action: s3:GetObject
          Resource: arn:aws:s3:::reports/public/*

- name: A WORM bucket for backups with 30 days of governance retention
  soulmatting.selfhosted.minio_bucket:
    endpoint_url: http://127.0.0.1:9000
    name: backups
    object_lock:
      mode: GOVERNANCE
      days: 30

- name: Limit a bucket to 50 GiB (MinIO only)
  soulmatting.selfhosted.minio_bucket:
    endpoint_url: http://127.0.0.1:9000
    name: uploads
    quota: 50GiB

- name: Delete a bucket with everything in it, all versions included
  soulmatting.selfhosted.minio_bucket:
    endpoint_url: http://127.0.0.1:9000
    name: scratch
    state: absent
    force: true
'''

RETURN = r'''
bucket:
  description:
    - The bucket as it is after the task (in check mode, as it would be).
    - Settings the server could not report (because it does not implement them) are V(null).
  returned: always
  type: dict
  contains:
    name:
      description: Bucket name.
      type: str
      sample: supabase-storage
    exists:
      description: Whether the bucket exists.
      type: bool
      sample: true
    access:
      description: Anonymous access, V(private), V(download), V(upload), V(public) or V(custom).
      type: str
      sample: download
    policy:
      description: The normalised bucket policy, or V(null) without one.
      type: dict
      sample: {"Version": "2012-10-17", "Statement": []}
    versioning:
      description: V(enabled), V(suspended) or V(disabled) (never enabled).
      type: str
      sample: enabled
    object_lock:
      description: Object lock state and default retention.
      type: dict
      sample: {"enabled": true, "mode": "GOVERNANCE", "days": 30, "years": null}
    lifecycle:
      description: Lifecycle rules in the form of the O(lifecycle) option; parts this module does not manage are listed in C(unmanaged).
      type: list
      elements: dict
      sample: [{"id": "expire", "prefix": "", "enabled": true, "expire_days": 30,
                "noncurrent_expire_days": null, "abort_incomplete_multipart_days": null}]
    tags:
      description: Bucket tags.
      type: dict
      sample: {"app": "supabase"}
    quota:
      description: Hard quota in bytes (V(0) for none); only read when O(quota) is given.
      type: int
      sample: 53687091200
  sample: {"name": "scratch", "exists": false}
actions:
  description: What was (or in check mode would be) done, in order.
  returned: always
  type: list
  elements: str
  sample: [create, versioning, put_policy, put_tags]
server:
  description: The server's C(Server) response header, which tells MinIO from other servers.
  returned: always
  type: str
  sample: MinIO
'''

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.soulmatting.selfhosted.plugins.module_utils._s3 import (
    ClientError,
    MinioAdminError,
    S3Error,
    check_s3_libs,
    connection_problems,
    describe_error,
    error_code,
    http_status,
    is_minio,
    is_unsupported,
    minio_admin_call,
    s3_argument_spec,
    s3_client,
    server_header,
)
from ansible_collections.soulmatting.selfhosted.plugins.module_utils._s3_bucket import (
    BucketSpecError,
    absent_state,
    bucket_name_problem,
    conflicts,
    desired_policy,
    desired_state,
    diff_view,
    lifecycle_from_s3,
    lifecycle_to_s3,
    normalise_policy,
    object_lock_state,
    object_lock_to_s3,
    parse_size,
    plan,
    policy_kind,
    tags_from_s3,
    tags_to_s3,
    validate_lifecycle,
    validate_object_lock,
)

NOT_FOUND_CODES = ('404', 'NoSuchBucket', 'NotFound')
# What servers answer for a bucket without that configuration.
EMPTY_CODES = {
    'policy': ('NoSuchBucketPolicy',),
    'lifecycle': ('NoSuchLifecycleConfiguration',),
    'tags': ('NoSuchTagSet', 'NoSuchTagSetError'),
    'object_lock': ('ObjectLockConfigurationNotFoundError', 'ObjectLockConfigurationNotFound'),
}
FEATURE_WORDS = {
    'policy': 'bucket policies', 'versioning': 'versioning', 'object_lock': 'object lock',
    'lifecycle': 'lifecycle rules', 'tags': 'bucket tags',
}


def build_spec(params):
    """Validate every option; returns the spec the planner uses (None for options left alone)."""
    name = params['name']
    spec = {'purge_tags': params['purge_tags']}
    if params['policy'] is not None:
        document = desired_policy(params['policy'], name)
        spec['policy'] = {'document': document, 'kind': policy_kind(document, name)}
    spec['versioning'] = params['versioning']
    spec['object_lock'] = validate_object_lock(params['object_lock'])
    spec['lifecycle'] = validate_lifecycle(params['lifecycle']) if params['lifecycle'] is not None else None
    spec['tags'] = params['tags']
    spec['quota'] = parse_size(params['quota']) if params['quota'] is not None else None
    return spec


class BucketManager(object):

    def __init__(self, module, client):
        self.module = module
        self.params = module.params
        self.client = client
        self.name = module.params['name']
        self.server = ''

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    def call(self, doing, method, **kwargs):
        try:
            return getattr(self.client, method)(Bucket=self.name, **kwargs)
        except Exception as exc:  # pylint: disable=broad-except
            raise S3Error(describe_error(exc, self.params, doing))

    # ---- reading ----

    def exists(self):
        try:
            response = self.client.head_bucket(Bucket=self.name)
            self.server = server_header(response)
            return True
        except ClientError as exc:
            self.server = server_header(exc)
            if error_code(exc) in NOT_FOUND_CODES or http_status(exc) == 404:
                return False
            if http_status(exc) in (400, 403):
                # HEAD answers carry no error code: a GET tells bad credentials from missing permissions.
                self.call('read bucket %s' % self.name, 'get_bucket_versioning')
                return True
            raise S3Error(describe_error(exc, self.params, 'look up bucket %s' % self.name))
        except Exception as exc:  # pylint: disable=broad-except
            raise S3Error(describe_error(exc, self.params, 'look up bucket %s' % self.name))

    def read_feature(self, feature, managed, method):
        try:
            return getattr(self.client, method)(Bucket=self.name)
        except ClientError as exc:
            if error_code(exc) in EMPTY_CODES.get(feature, ()):
                return {}
            if is_unsupported(exc):
                if managed:
                    raise S3Error('The S3 server at %s (%s) does not support %s: it answered %s.'
                                  % (self.params['endpoint_url'], self.server or 'unknown server', FEATURE_WORDS[feature],
                                     error_code(exc) or http_status(exc)))
                return None
            raise S3Error(describe_error(exc, self.params, 'read the %s of bucket %s' % (FEATURE_WORDS[feature], self.name)))
        except Exception as exc:  # pylint: disable=broad-except
            raise S3Error(describe_error(exc, self.params, 'read the %s of bucket %s' % (FEATURE_WORDS[feature], self.name)))

    def read_state(self, spec):
        if not self.exists():
            return absent_state(self.name)
        state = {'name': self.name, 'exists': True}

        answer = self.read_feature('versioning', spec.get('versioning') is not None or spec.get('object_lock') is not None,
                                   'get_bucket_versioning')
        state['versioning'] = None if answer is None else {'Enabled': 'enabled', 'Suspended': 'suspended'}.get(answer.get('Status'), 'disabled')

        answer = self.read_feature('policy', spec.get('policy') is not None, 'get_bucket_policy')
        if answer is None:
            state['policy'] = state['access'] = None
        else:
            text = answer.get('Policy')
            try:
                state['policy'] = normalise_policy(text) if text else None
            except BucketSpecError:
                state['policy'] = {'unparsed': text}
            state['access'] = policy_kind(state['policy'], self.name) if 'unparsed' not in (state['policy'] or {}) else 'custom'

        answer = self.read_feature('object_lock', spec.get('object_lock') is not None, 'get_object_lock_configuration')
        state['object_lock'] = None if answer is None else object_lock_state(answer.get('ObjectLockConfiguration'))

        answer = self.read_feature('lifecycle', spec.get('lifecycle') is not None, 'get_bucket_lifecycle_configuration')
        state['lifecycle'] = None if answer is None else lifecycle_from_s3(answer.get('Rules'))

        answer = self.read_feature('tags', spec.get('tags') is not None, 'get_bucket_tagging')
        state['tags'] = None if answer is None else tags_from_s3(answer.get('TagSet'))

        state['quota'] = self.read_quota() if spec.get('quota') is not None else None
        return state

    def read_quota(self):
        try:
            answer = minio_admin_call(self.params, 'GET', 'get-bucket-quota', {'bucket': self.name}) or {}
        except MinioAdminError as exc:
            if 'QuotaConfigNotFound' in exc.code:
                return 0
            raise S3Error('Could not read the quota of bucket %s from the MinIO admin API at %s: %s.'
                          % (self.name, self.params['endpoint_url'], exc))
        return int(answer.get('size') or answer.get('quota') or 0)

    def is_empty(self):
        try:
            answer = self.client.list_object_versions(Bucket=self.name, MaxKeys=1)
            if answer.get('Versions') or answer.get('DeleteMarkers'):
                return False
        except ClientError as exc:
            if not is_unsupported(exc):
                raise S3Error(describe_error(exc, self.params, 'list the object versions of bucket %s' % self.name))
        except Exception as exc:  # pylint: disable=broad-except
            raise S3Error(describe_error(exc, self.params, 'list the object versions of bucket %s' % self.name))
        answer = self.call('list the objects of bucket %s' % self.name, 'list_objects_v2', MaxKeys=1)
        return not answer.get('Contents')

    # ---- writing ----

    def empty_bucket(self, bypass_governance):
        """Delete every object version, delete marker and unfinished upload."""
        extra = {'BypassGovernanceRetention': True} if bypass_governance else {}
        for dummy in range(5):
            batch = []
            try:
                for page in self.client.get_paginator('list_object_versions').paginate(Bucket=self.name):
                    for item in (page.get('Versions') or []) + (page.get('DeleteMarkers') or []):
                        batch.append({'Key': item['Key'], 'VersionId': item['VersionId']})
            except ClientError as exc:
                if not is_unsupported(exc):
                    raise S3Error(describe_error(exc, self.params, 'list the object versions of bucket %s' % self.name))
            if not batch:
                for page in self.client.get_paginator('list_objects_v2').paginate(Bucket=self.name):
                    batch.extend({'Key': item['Key']} for item in page.get('Contents') or [])
            if not batch:
                break
            for start in range(0, len(batch), 1000):
                answer = self.call('delete objects in bucket %s' % self.name, 'delete_objects',
                                   Delete={'Objects': batch[start:start + 1000], 'Quiet': True}, **extra)
                errors = answer.get('Errors') or []
                if errors:
                    first = errors[0]
                    raise S3Error('Could not delete object %s (version %s) in bucket %s: %s %s; the bucket was kept.'
                                  % (first.get('Key'), first.get('VersionId', '-'), self.name, first.get('Code'),
                                     (first.get('Message') or '').rstrip('.')))
        try:
            uploads = self.client.list_multipart_uploads(Bucket=self.name).get('Uploads') or []
        except ClientError as exc:
            if not is_unsupported(exc):
                raise S3Error(describe_error(exc, self.params, 'list unfinished uploads in bucket %s' % self.name))
            uploads = []
        for upload in uploads:
            self.call('abort an unfinished upload in bucket %s' % self.name, 'abort_multipart_upload',
                      Key=upload['Key'], UploadId=upload['UploadId'])

    def apply(self, op, after):
        name = self.name
        if op == 'create':
            kwargs = {}
            region = self.params['region']
            if region and region != 'us-east-1':
                kwargs['CreateBucketConfiguration'] = {'LocationConstraint': region}
            if after['object_lock']['enabled']:
                kwargs['ObjectLockEnabledForBucket'] = True
            self.call('create bucket %s' % name, 'create_bucket', **kwargs)
        elif op == 'versioning':
            self.call('set versioning on bucket %s' % name, 'put_bucket_versioning',
                      VersioningConfiguration={'Status': after['versioning'].capitalize()})
        elif op == 'object_lock':
            self.call('set the object lock configuration of bucket %s' % name, 'put_object_lock_configuration',
                      ObjectLockConfiguration=object_lock_to_s3(after['object_lock']))
        elif op == 'put_policy':
            self.call('set the policy of bucket %s' % name, 'put_bucket_policy', Policy=json.dumps(after['policy'], sort_keys=True))
        elif op == 'delete_policy':
            self.call('delete the policy of bucket %s' % name, 'delete_bucket_policy')
        elif op == 'put_lifecycle':
            self.call('set the lifecycle rules of bucket %s' % name, 'put_bucket_lifecycle_configuration',
                      LifecycleConfiguration=lifecycle_to_s3(after['lifecycle']))
        elif op == 'delete_lifecycle':
            self.call('delete the lifecycle rules of bucket %s' % name, 'delete_bucket_lifecycle')
        elif op == 'put_tags':
            self.call('set the tags of bucket %s' % name, 'put_bucket_tagging', Tagging=tags_to_s3(after['tags']))
        elif op == 'delete_tags':
            self.call('delete the tags of bucket %s' % name, 'delete_bucket_tagging')
        elif op == 'quota':
            body = {'quota': after['quota'], 'size': after['quota'], 'quotatype': 'hard'}
            try:
                minio_admin_call(self.params, 'PUT', 'set-bucket-quota', {'bucket': name}, body)
            except S3Error as exc:
                raise S3Error('Could not set the quota of bucket %s through the MinIO admin API: %s.' % (name, str(exc).rstrip('.')))

    def run_ops(self, ops, after):
        done = []
        for op in ops:
            try:
                self.apply(op, after)
            except S3Error as exc:
                msg = str(exc)
                if done:
                    msg = '%s (Already done: %s.)' % (msg, ', '.join(done))
                self.fail(msg, actions=done)
            done.append(op)

    # ---- states ----

    def present(self, spec):
        current = self.read_state(spec)
        problems = conflicts(current, spec)
        if spec.get('quota') is not None and not is_minio(self.server):
            problems.append('quota is a MinIO feature and the server at %s is not MinIO (its Server header is %s).'
                            % (self.params['endpoint_url'], repr(self.server) if self.server else 'missing'))
        if problems:
            self.fail(' '.join(problems))
        after = desired_state(current, spec)
        ops = plan(current, after)
        result = after
        if ops and not self.module.check_mode:
            self.run_ops(ops, after)
            result = self.read_state(spec)
            drift = [key for key in after if after[key] is not None and result.get(key) != after[key]]
            if drift:
                self.module.warn('After the changes the server reports different values for %s of bucket %s than were set.'
                                 % (', '.join(sorted(drift)), self.name))
        return current, result, ops

    def absent(self, spec):
        if not self.exists():
            return absent_state(self.name), absent_state(self.name), []
        current = self.read_state({})
        empty = self.is_empty()
        if not empty and not self.params['force']:
            self.fail('Bucket %s is not empty (it holds objects or object versions); set force=true to delete them with the bucket.' % self.name)
        ops = ([] if empty else ['empty']) + ['delete']
        if not self.module.check_mode:
            if not empty:
                self.empty_bucket(bypass_governance=bool((current.get('object_lock') or {}).get('enabled')))
            self.run_ops_delete()
        return current, absent_state(self.name), ops

    def run_ops_delete(self):
        self.call('delete bucket %s' % self.name, 'delete_bucket')


def main():
    argument_spec = s3_argument_spec()
    argument_spec.update(
        name=dict(type='str', required=True, aliases=['bucket']),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        force=dict(type='bool', default=False),
        policy=dict(type='raw'),
        versioning=dict(type='str', choices=['enabled', 'suspended']),
        object_lock=dict(type='dict', options=dict(
            enabled=dict(type='bool', default=True),
            mode=dict(type='str', choices=['GOVERNANCE', 'COMPLIANCE']),
            days=dict(type='int'),
            years=dict(type='int'),
        ), mutually_exclusive=[['days', 'years']]),
        lifecycle=dict(type='list', elements='dict', options=dict(
            id=dict(type='str', required=True),
            prefix=dict(type='str', default=''),
            expire_days=dict(type='int'),
            noncurrent_expire_days=dict(type='int'),
            abort_incomplete_multipart_days=dict(type='int'),
            enabled=dict(type='bool', default=True),
        )),
        tags=dict(type='dict'),
        purge_tags=dict(type='bool', default=True),
        quota=dict(type='raw'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_s3_libs(module)

    params = module.params
    problems = connection_problems(params)
    name_problem = bucket_name_problem(params['name'])
    if name_problem:
        problems.insert(0, name_problem)
    if problems:
        module.fail_json(msg=' '.join(problems))
    try:
        spec = build_spec(params) if params['state'] == 'present' else {}
    except BucketSpecError as exc:
        module.fail_json(msg=str(exc))

    try:
        manager = BucketManager(module, s3_client(params))
        if params['state'] == 'present':
            before, after, ops = manager.present(spec)
        else:
            before, after, ops = manager.absent(spec)
    except (S3Error, BucketSpecError) as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-except
        module.fail_json(msg=describe_error(exc, params, 'manage bucket %s' % params['name']))

    result = dict(changed=bool(ops), bucket=after, actions=ops, server=manager.server)
    if module._diff:
        result['diff'] = dict(before=diff_view(before), after=diff_view(after))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
