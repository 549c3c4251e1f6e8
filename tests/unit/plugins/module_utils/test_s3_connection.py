"""Unit tests of the shared S3 connection helpers: argument spec, error sentences, MinIO admin requests."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, SSLError

from ansible_collections.soulmatting.selfhosted.plugins.module_utils import _s3

PARAMS = {'endpoint_url': 'http://127.0.0.1:9000', 'access_key': 'AKIDEXAMPLE', 'secret_key': 'wJalrXUtnFEMI/K7MDENG',
          'region': 'us-east-1', 'validate_certs': True, 'ca_path': None}


def test_argument_spec_shape():
    spec = _s3.s3_argument_spec()
    assert set(spec) == {'endpoint_url', 'access_key', 'secret_key', 'region', 'validate_certs', 'ca_path'}
    assert spec['secret_key']['no_log'] is True
    assert spec['access_key']['no_log'] is False
    assert spec['region']['default'] == 'us-east-1'
    assert spec['validate_certs']['default'] is True
    assert spec['access_key']['fallback'][1] == ['AWS_ACCESS_KEY_ID', 'MINIO_ROOT_USER']
    assert spec['secret_key']['fallback'][1] == ['AWS_SECRET_ACCESS_KEY', 'MINIO_ROOT_PASSWORD']


def test_connection_problems():
    assert _s3.connection_problems(PARAMS) == []
    assert 'http:// or https://' in _s3.connection_problems(dict(PARAMS, endpoint_url='127.0.0.1:9000'))[0]
    assert 'access_key and secret_key are required' in _s3.connection_problems(dict(PARAMS, secret_key=None))[0]


def _client_error(code, status, message='', server='MinIO'):
    return ClientError({'Error': {'Code': code, 'Message': message},
                        'ResponseMetadata': {'HTTPStatusCode': status, 'HTTPHeaders': {'server': server}}}, 'GetBucketPolicy')


@pytest.mark.parametrize('exc, words', [
    (_client_error('SignatureDoesNotMatch', 403), 'rejected the credentials (SignatureDoesNotMatch)'),
    (_client_error('InvalidAccessKeyId', 403), 'check access_key and secret_key'),
    (_client_error('AccessDenied', 403), 'Access denied'),
    (_client_error('NotImplemented', 501), 'does not support this'),
    (_client_error('MalformedXML', 400, 'The XML you provided was not well-formed.'), 'refused to read x: MalformedXML (The XML'),
    (EndpointConnectionError(endpoint_url='http://127.0.0.1:9000/'), 'Could not connect to the S3 endpoint http://127.0.0.1:9000'),
    (SSLError(endpoint_url='https://h/', error='certificate verify failed'), 'TLS verification failed'),
    (_s3.S3Error('Already phrased.'), 'Already phrased.'),
])
def test_describe_error(exc, words):
    sentence = _s3.describe_error(exc, PARAMS, 'read x')
    assert words in sentence
    assert '\n' not in sentence and 'Traceback' not in sentence


def test_server_detection():
    assert _s3.server_header(_client_error('X', 404, server='SeaweedFS 8000GB 4.48')) == 'SeaweedFS 8000GB 4.48'
    assert _s3.server_header({'ResponseMetadata': {'HTTPHeaders': {'server': 'MinIO'}}}) == 'MinIO'
    assert _s3.is_minio('MinIO') and _s3.is_minio('MinIO/RELEASE.2025')
    assert not _s3.is_minio('SeaweedFS 8000GB 4.48') and not _s3.is_minio('AmazonS3') and not _s3.is_minio('')


def test_client_factory_settings():
    client = _s3.s3_client(dict(PARAMS, ca_path='/some/ca.pem'))
    assert client.meta.endpoint_url == 'http://127.0.0.1:9000'
    assert client.meta.region_name == 'us-east-1'
    assert client.meta.config.s3['addressing_style'] == 'path'


# ---- MinIO admin API ----

def _expected_signature(method, url, headers, body, secret, region):
    """SigV4 computed independently of botocore, to check the request it signed."""
    auth = headers['Authorization']
    assert auth.startswith('AWS4-HMAC-SHA256 Credential=')
    fields = dict(part.strip().split('=', 1) for part in auth[len('AWS4-HMAC-SHA256 '):].split(','))
    signed = fields['SignedHeaders'].split(';')
    lower = dict((k.lower(), v) for k, v in headers.items())
    parts = urlsplit(url)
    lower.setdefault('host', parts.netloc)
    query = '&'.join('%s=%s' % (quote(k, safe='-_.~'), quote(v, safe='-_.~')) for k, v in sorted(parse_qsl(parts.query)))
    canonical = '\n'.join([method, parts.path, query,
                           ''.join('%s:%s\n' % (h, ' '.join(lower[h].split())) for h in signed),
                           ';'.join(signed), hashlib.sha256(body).hexdigest()])
    amz_date = lower['x-amz-date']
    scope = '%s/%s/s3/aws4_request' % (amz_date[:8], region)
    to_sign = '\n'.join(['AWS4-HMAC-SHA256', amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ('AWS4' + secret).encode()
    for item in (amz_date[:8], region, 's3', 'aws4_request'):
        key = hmac.new(key, item.encode(), hashlib.sha256).digest()
    return fields, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def test_set_quota_request_construction():
    body = {'quota': 1073741824, 'quotatype': 'hard'}
    url, headers, payload = _s3.build_admin_request(PARAMS, 'PUT', 'set-bucket-quota', {'bucket': 'media'}, body)
    assert url == 'http://127.0.0.1:9000/minio/admin/v3/set-bucket-quota?bucket=media'
    assert json.loads(payload) == body
    assert headers['X-Amz-Content-SHA256'] == hashlib.sha256(payload).hexdigest()
    assert headers['Content-Type'] == 'application/json'
    fields, signature = _expected_signature('PUT', url, headers, payload, PARAMS['secret_key'], 'us-east-1')
    assert fields['Credential'].startswith('AKIDEXAMPLE/') and fields['Credential'].endswith('/us-east-1/s3/aws4_request')
    assert 'x-amz-content-sha256' in fields['SignedHeaders'].split(';') and 'host' in fields['SignedHeaders'].split(';')
    assert fields['Signature'] == signature
    # A different secret gives a different signature: the check above is not vacuous.
    assert _expected_signature('PUT', url, headers, payload, 'other', 'us-east-1')[1] != signature


def test_get_quota_request_construction_other_region():
    params = dict(PARAMS, endpoint_url='https://minio.example.org:9000/', region='eu-central-1')
    url, headers, payload = _s3.build_admin_request(params, 'GET', 'get-bucket-quota', {'bucket': 'a.b-c'})
    assert url == 'https://minio.example.org:9000/minio/admin/v3/get-bucket-quota?bucket=a.b-c'
    assert payload == b''
    assert headers['X-Amz-Content-SHA256'] == hashlib.sha256(b'').hexdigest()
    fields, signature = _expected_signature('GET', url, headers, payload, PARAMS['secret_key'], 'eu-central-1')
    assert fields['Signature'] == signature and '/eu-central-1/s3/' in fields['Credential']


class _AdminStub(BaseHTTPRequestHandler):
    """Plays the MinIO admin API: checks the signature, remembers the quota."""
    quota = {}
    seen = []

    def _answer(self, status, data):
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self):
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        url = 'http://%s%s' % (self.headers['Host'], self.path)
        fields, signature = _expected_signature(self.command, url, dict(self.headers.items()), body, PARAMS['secret_key'], 'us-east-1')
        self.seen.append((self.command, self.path, body))
        if fields['Signature'] != signature:
            return self._answer(403, {'Code': 'XMinioAdminInvalidSignature', 'Message': 'bad signature'})
        bucket = dict(parse_qsl(urlsplit(self.path).query))['bucket']
        if self.path.startswith('/minio/admin/v3/set-bucket-quota'):
            self.quota[bucket] = json.loads(body)
            return self._answer(200, {})
        if bucket not in self.quota:
            return self._answer(404, {'Code': 'XMinioAdminBucketQuotaConfigNotFound', 'Message': 'No quota config found'})
        return self._answer(200, self.quota[bucket])

    do_GET = do_PUT = _handle

    def log_message(self, *args):
        pass


@pytest.fixture
def admin_stub():
    server = HTTPServer(('127.0.0.1', 0), _AdminStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _AdminStub.quota, _AdminStub.seen = {}, []
    yield 'http://127.0.0.1:%d' % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_admin_call_over_http(admin_stub):
    params = dict(PARAMS, endpoint_url=admin_stub)
    with pytest.raises(_s3.MinioAdminError) as err:
        _s3.minio_admin_call(params, 'GET', 'get-bucket-quota', {'bucket': 'media'})
    assert err.value.code == 'XMinioAdminBucketQuotaConfigNotFound' and err.value.status == 404
    _s3.minio_admin_call(params, 'PUT', 'set-bucket-quota', {'bucket': 'media'}, {'quota': 5, 'quotatype': 'hard'})
    assert _s3.minio_admin_call(params, 'GET', 'get-bucket-quota', {'bucket': 'media'}) == {'quota': 5, 'quotatype': 'hard'}
    with pytest.raises(_s3.MinioAdminError) as err:
        _s3.minio_admin_call(dict(params, secret_key='wrong'), 'GET', 'get-bucket-quota', {'bucket': 'media'})
    assert err.value.code == 'XMinioAdminInvalidSignature'
    assert [seen[0] for seen in _AdminStub.seen] == ['GET', 'PUT', 'GET', 'GET']


def test_admin_call_unreachable():
    with pytest.raises(_s3.S3Error) as err:
        _s3.minio_admin_call(dict(PARAMS, endpoint_url='http://127.0.0.1:9'), 'GET', 'get-bucket-quota', {'bucket': 'b'})
    assert 'Could not reach the MinIO admin API at http://127.0.0.1:9' in str(err.value)
