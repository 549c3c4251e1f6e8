"""Unit tests of the minio_bucket module's flow against a fake S3 client (no server)."""

import json

import pytest
from botocore.exceptions import ClientError

from ansible_collections.soulmatting.selfhosted.plugins.modules import minio_bucket

CONNECTION = {'endpoint_url': 'http://127.0.0.1:9000', 'access_key': 'ak', 'secret_key': 'sk-secret'}
WRITES = ('create_bucket', 'put_bucket_versioning', 'put_object_lock_configuration', 'put_bucket_policy',
          'delete_bucket_policy', 'put_bucket_lifecycle_configuration', 'delete_bucket_lifecycle',
          'put_bucket_tagging', 'delete_bucket_tagging', 'delete_objects', 'delete_bucket')


def _error(code, status, op='Op'):
    return ClientError({'Error': {'Code': code, 'Message': code},
                        'ResponseMetadata': {'HTTPStatusCode': status, 'HTTPHeaders': {'server': 'FakeS3'}}}, op)


class FakeS3(object):
    """Just enough of an S3 client: one bucket, versions, configuration, every call recorded."""

    def __init__(self, exists=True, versions=0, server='FakeS3'):
        self.exists = exists
        self.versions = versions
        self.server = server
        self.calls = []
        self.config = {}

    def _meta(self):
        return {'ResponseMetadata': {'HTTPStatusCode': 200, 'HTTPHeaders': {'server': self.server}}}

    def __getattr__(self, name):
        def method(**kwargs):
            self.calls.append(name)
            return self._dispatch(name, kwargs)
        return method

    def _dispatch(self, name, kwargs):
        if name == 'head_bucket':
            if not self.exists:
                raise ClientError({'Error': {'Code': '404', 'Message': 'Not Found'},
                                   'ResponseMetadata': {'HTTPStatusCode': 404, 'HTTPHeaders': {'server': self.server}}}, 'HeadBucket')
            return self._meta()
        if name == 'get_bucket_versioning':
            return {'Status': self.config.get('versioning', '')} if self.config.get('versioning') else {}
        if name == 'get_bucket_policy':
            if 'policy' not in self.config:
                raise _error('NoSuchBucketPolicy', 404)
            return {'Policy': self.config['policy']}
        if name == 'get_object_lock_configuration':
            raise _error('ObjectLockConfigurationNotFoundError', 404)
        if name == 'get_bucket_lifecycle_configuration':
            raise _error('NotImplemented', 501)
        if name == 'get_bucket_tagging':
            raise _error('NoSuchTagSet', 404)
        if name == 'list_object_versions':
            return {'Versions': [{'Key': 'k%d' % i, 'VersionId': 'v%d' % i} for i in range(self.versions)]}
        if name == 'list_objects_v2':
            return {}
        if name == 'list_multipart_uploads':
            return {}
        if name == 'delete_objects':
            self.versions = 0
            return {}
        if name == 'get_paginator':
            raise AssertionError('not used')
        if name == 'create_bucket':
            self.exists = True
        if name == 'put_bucket_policy':
            self.config['policy'] = kwargs['Policy']
        if name == 'put_bucket_versioning':
            self.config['versioning'] = kwargs['VersioningConfiguration']['Status']
        return {}

    def get_paginator(self, name):
        client = self

        class Pager(object):
            def paginate(self, **kwargs):
                client.calls.append('paginate_' + name)
                return [client._dispatch(name, kwargs)]
        return Pager()


def run(monkeypatch, run_module, fake, args, check=False, diff=False):
    monkeypatch.setattr(minio_bucket, 's3_client', lambda params: fake)
    return run_module(minio_bucket.main, dict(CONNECTION, **args), check_mode=check, diff=diff)


def test_check_mode_reports_and_writes_nothing(monkeypatch, run_module):
    fake = FakeS3(exists=False)
    result = run(monkeypatch, run_module, fake, {'name': 'media', 'policy': 'download', 'versioning': 'enabled'}, check=True, diff=True)
    assert result['changed'] is True
    assert result['actions'] == ['create', 'versioning', 'put_policy']
    assert result['bucket']['access'] == 'download' and result['bucket']['versioning'] == 'enabled'
    assert result['diff']['before'] == {'name': 'media', 'exists': False}
    assert result['diff']['after']['access'] == 'download'
    assert not [call for call in fake.calls if call in WRITES]


def test_apply_then_idempotent(monkeypatch, run_module):
    fake = FakeS3(exists=True)
    result = run(monkeypatch, run_module, fake, {'name': 'media', 'policy': 'upload'})
    assert result['changed'] is True and result['actions'] == ['put_policy']
    assert result['bucket']['access'] == 'upload'
    assert 'sk-secret' not in json.dumps(result)
    fake.calls = []
    result = run(monkeypatch, run_module, fake, {'name': 'media', 'policy': 'upload'})
    assert result['changed'] is False and result['actions'] == []
    assert not [call for call in fake.calls if call in WRITES]


def test_unsupported_feature_is_a_clear_error_only_when_managed(monkeypatch, run_module):
    fake = FakeS3(exists=True)
    result = run(monkeypatch, run_module, fake, {'name': 'media', 'tags': {'a': 'b'}})
    assert result['changed'] is True and result['bucket']['lifecycle'] is None
    result = run(monkeypatch, run_module, FakeS3(exists=True), {'name': 'media', 'lifecycle': [{'id': 'r', 'expire_days': 1}]})
    assert result['failed'] is True
    assert 'does not support lifecycle rules: it answered NotImplemented' in result['msg']


def test_non_empty_without_force_fails_before_any_write(monkeypatch, run_module):
    fake = FakeS3(exists=True, versions=3)
    result = run(monkeypatch, run_module, fake, {'name': 'media', 'state': 'absent'})
    assert result['failed'] is True and 'is not empty' in result['msg'] and 'force=true' in result['msg']
    assert not [call for call in fake.calls if call in WRITES]


def test_absent_force_empties_then_deletes(monkeypatch, run_module):
    fake = FakeS3(exists=True, versions=3)
    result = run(monkeypatch, run_module, fake, {'name': 'media', 'state': 'absent', 'force': True}, check=True)
    assert result['changed'] is True and result['actions'] == ['empty', 'delete']
    assert 'delete_bucket' not in fake.calls and 'delete_objects' not in fake.calls
    result = run(monkeypatch, run_module, fake, {'name': 'media', 'state': 'absent', 'force': True})
    assert result['changed'] is True and result['bucket'] == {'name': 'media', 'exists': False}
    assert fake.calls.index('delete_objects') < fake.calls.index('delete_bucket')


def test_quota_on_non_minio_fails_before_any_write(monkeypatch, run_module):
    fake = FakeS3(exists=False, server='SeaweedFS 8000GB 4.48')
    result = run(monkeypatch, run_module, fake, {'name': 'media', 'quota': '1GiB', 'versioning': 'enabled'})
    assert result['failed'] is True
    assert "quota is a MinIO feature and the server at http://127.0.0.1:9000 is not MinIO (its Server header is 'SeaweedFS 8000GB 4.48')" in result['msg']
    assert not [call for call in fake.calls if call in WRITES]


@pytest.mark.parametrize('args, words', [
    ({'name': 'Bad_Name'}, 'Invalid bucket name'),
    ({'name': 'media', 'policy': '{"Statement": [}'}, 'not valid JSON'),
    ({'name': 'media', 'policy': {'Version': '2012-10-17', 'Statement': [
        {'Effect': 'Allow', 'Principal': '*', 'Action': 's3:Teleport', 'Resource': 'arn:aws:s3:::media/*'}]}}, "unknown S3 action 's3:Teleport'"),
    ({'name': 'media', 'quota': 'lots'}, 'is not a size'),
    ({'name': 'media', 'endpoint_url': 'ftp://x'}, 'http:// or https://'),
])
def test_bad_input_fails_without_contacting_the_server(monkeypatch, run_module, args, words):
    fake = FakeS3()
    result = run(monkeypatch, run_module, fake, args)
    assert result['failed'] is True and words in result['msg']
    assert fake.calls == []
