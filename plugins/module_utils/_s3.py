# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Shared S3 connection handling: argument spec, client factory, error sentences, MinIO admin calls.

Private to this collection (leading underscore): no compatibility promise to other collections.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import json
import re
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible.module_utils.six.moves.urllib.parse import quote, urlencode, urlsplit
from ansible.module_utils.urls import open_url

BOTO3_IMPORT_ERROR = None
try:
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
        SSLError,
    )
except ImportError:
    BOTO3_IMPORT_ERROR = traceback.format_exc()

    class _BotocoreMissing(Exception):
        """Stand-in so except clauses stay valid without botocore (the module fails early then)."""

    BotoCoreError = ClientError = ConnectTimeoutError = EndpointConnectionError = _BotocoreMissing
    NoCredentialsError = ReadTimeoutError = SSLError = _BotocoreMissing

# Codes that mean "the feature is not implemented by this server".
UNSUPPORTED_CODES = frozenset(['NotImplemented', 'NotSupported', 'XNotImplemented', 'MethodNotAllowed'])
CREDENTIAL_CODES = frozenset(['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'InvalidClientTokenId', 'AuthorizationHeaderMalformed',
                              'InvalidToken', 'ExpiredToken', 'XMinioAdminInvalidSignature', 'XMinioAdminInvalidAccessKeyID'])

MINIO_ADMIN_PREFIX = '/minio/admin/v3/'


class S3Error(Exception):
    """A failure already phrased as one sentence for the user."""


def s3_argument_spec():
    """Connection options shared by the collection's S3 modules (documented in doc fragment soulmatting.selfhosted.s3)."""
    return dict(
        endpoint_url=dict(type='str', aliases=['endpoint', 's3_url'],
                          fallback=(env_fallback, ['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'])),
        access_key=dict(type='str', aliases=['aws_access_key_id'], no_log=False,
                        fallback=(env_fallback, ['AWS_ACCESS_KEY_ID', 'MINIO_ROOT_USER'])),
        secret_key=dict(type='str', aliases=['aws_secret_access_key'], no_log=True,
                        fallback=(env_fallback, ['AWS_SECRET_ACCESS_KEY', 'MINIO_ROOT_PASSWORD'])),
        region=dict(type='str', default='us-east-1'),
        validate_certs=dict(type='bool', default=True),
        ca_path=dict(type='path'),
    )


def check_s3_libs(module):
    """Fail the module with Ansible's standard message when boto3/botocore are missing."""
    if BOTO3_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib('boto3 and botocore'), exception=BOTO3_IMPORT_ERROR)


def connection_problems(params):
    """Return a list of sentences describing unusable connection parameters (empty when fine)."""
    problems = []
    endpoint = params.get('endpoint_url')
    if endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ('http', 'https') or not parts.netloc:
            problems.append('endpoint_url must be an http:// or https:// URL, got %r.' % endpoint)
    if not params.get('access_key') or not params.get('secret_key'):
        problems.append('access_key and secret_key are required (or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).')
    return problems


def _verify(params):
    if params.get('ca_path'):
        return params['ca_path']
    return bool(params.get('validate_certs', True))


def s3_client(params):
    """Build a boto3 S3 client speaking path-style plain S3, suitable for MinIO and other S3 servers."""
    options = dict(
        s3={'addressing_style': 'path'},
        signature_version='s3v4',
        retries={'max_attempts': 2, 'mode': 'standard'},
        connect_timeout=10,
        read_timeout=60,
    )
    # S3-compatible servers differ in their support for the checksums botocore 1.36 sends by default.
    # Older botocore (Debian 12's python3-botocore 1.29) sends them only when required and has no
    # such setting: passing it there fails.
    if 'request_checksum_calculation' in getattr(Config, 'OPTION_DEFAULTS', {}):
        options.update(request_checksum_calculation='when_required', response_checksum_validation='when_required')
    config = Config(**options)
    return boto3.session.Session().client(
        's3',
        endpoint_url=params.get('endpoint_url') or None,
        aws_access_key_id=params.get('access_key'),
        aws_secret_access_key=params.get('secret_key'),
        region_name=params.get('region') or 'us-east-1',
        verify=_verify(params),
        config=config,
    )


def error_code(exc):
    """The S3 error code of a ClientError (or '' for anything else)."""
    response = getattr(exc, 'response', None) or {}
    code = (response.get('Error') or {}).get('Code') or ''
    return str(code)


def http_status(exc):
    response = getattr(exc, 'response', None) or {}
    return (response.get('ResponseMetadata') or {}).get('HTTPStatusCode')


def is_unsupported(exc):
    return error_code(exc) in UNSUPPORTED_CODES or http_status(exc) == 501


def describe_error(exc, params, doing):
    """Turn a botocore exception into one sentence; `doing` says what was attempted ("read the policy of bucket x")."""
    endpoint = params.get('endpoint_url') or 'the default AWS S3 endpoint'
    if isinstance(exc, S3Error):
        return str(exc)
    if isinstance(exc, SSLError):
        return ('TLS verification failed for %s while trying to %s (%s); give the server\'s CA with ca_path or set validate_certs=false.'
                % (endpoint, doing, _tls_reason(exc)))
    if isinstance(exc, ConnectTimeoutError):
        return 'Could not connect to the S3 endpoint %s while trying to %s: the connection timed out.' % (endpoint, doing)
    if isinstance(exc, EndpointConnectionError):
        return 'Could not connect to the S3 endpoint %s while trying to %s: %s.' % (endpoint, doing, _connection_reason(exc))
    if isinstance(exc, ReadTimeoutError):
        return 'The S3 endpoint %s did not answer in time while trying to %s.' % (endpoint, doing)
    if isinstance(exc, NoCredentialsError):
        return 'No S3 credentials were given: set access_key and secret_key.'
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = (exc.response.get('Error') or {}).get('Message') or ''
        if code in CREDENTIAL_CODES:
            return 'The S3 server at %s rejected the credentials (%s) while trying to %s; check access_key and secret_key.' % (endpoint, code, doing)
        if code == 'AccessDenied' or http_status(exc) == 403:
            return 'Access denied by the S3 server at %s while trying to %s; the credentials lack the permission.' % (endpoint, doing)
        if is_unsupported(exc):
            return 'The S3 server at %s does not support this: it answered %s when asked to %s.' % (endpoint, code or http_status(exc), doing)
        return 'The S3 server at %s refused to %s: %s%s.' % (endpoint, doing, code or http_status(exc), (' (%s)' % message.rstrip('.')) if message else '')
    if isinstance(exc, BotoCoreError):
        return 'Could not %s at %s: %s.' % (doing, endpoint, _short(exc))
    return 'Could not %s at %s: %s.' % (doing, endpoint, _short(exc))


def _tls_reason(exc):
    match = re.search(r'(certificate verify failed: [^(]+|wrong version number|unknown protocol|handshake failure)', str(exc))
    return match.group(1).strip() if match else _short(exc)


def _connection_reason(exc):
    text = str(getattr(exc, 'kwargs', {}).get('error') or '')
    for needle, reason in (('Connection refused', 'connection refused'), ('Name or service not known', 'the host name does not resolve'),
                           ('No route to host', 'no route to host'), ('timed out', 'the connection timed out')):
        if needle in text:
            return reason
    return 'no answer'


def _short(exc):
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip('.')


def server_header(response_or_exc):
    """The Server header from a boto3 response dict or ClientError (lower-cased header names)."""
    response = getattr(response_or_exc, 'response', response_or_exc) or {}
    headers = (response.get('ResponseMetadata') or {}).get('HTTPHeaders') or {}
    return headers.get('server', '')


def is_minio(server):
    return 'minio' in (server or '').lower()


# ---- MinIO admin API (quota) ----

def build_admin_request(params, method, api, query, body=None):
    """Build a SigV4-signed MinIO admin API request; returns (url, headers, body_bytes).

    MinIO signs admin calls like S3 calls (service "s3") and expects x-amz-content-sha256 to carry the body's hash.
    """
    endpoint = (params.get('endpoint_url') or '').rstrip('/')
    if not endpoint:
        raise S3Error('endpoint_url is required for MinIO admin API calls.')
    payload = b'' if body is None else json.dumps(body, sort_keys=True, separators=(',', ':')).encode('utf-8')
    url = '%s%s%s' % (endpoint, MINIO_ADMIN_PREFIX, api)
    if query:
        url += '?' + urlencode(sorted(query.items()), quote_via=quote)
    request = AWSRequest(method=method, url=url, data=payload)
    request.headers['X-Amz-Content-SHA256'] = hashlib.sha256(payload).hexdigest()
    if payload:
        request.headers['Content-Type'] = 'application/json'
    signer = SigV4Auth(Credentials(params.get('access_key'), params.get('secret_key')), 's3', params.get('region') or 'us-east-1')
    signer.add_auth(request)
    headers = dict((k, v) for k, v in request.headers.items())
    return url, headers, payload


def minio_admin_call(params, method, api, query, body=None):
    """Send a MinIO admin API request and return the decoded JSON answer (None for an empty body)."""
    url, headers, payload = build_admin_request(params, method, api, query, body)
    endpoint = params.get('endpoint_url')
    try:
        response = open_url(url, data=payload or None, headers=headers, method=method, timeout=30,
                            validate_certs=bool(params.get('validate_certs', True)), ca_path=params.get('ca_path'),
                            use_proxy=True, follow_redirects='none')
        data = response.read()
    except Exception as exc:  # pylint: disable=broad-except
        read = getattr(exc, 'read', None)
        status = getattr(exc, 'code', None)
        if read is None or status is None:
            raise S3Error('Could not reach the MinIO admin API at %s (%s).' % (endpoint, _short(exc)))
        try:
            detail = json.loads(read() or b'{}')
        except ValueError:
            detail = {}
        code = detail.get('Code') or str(status)
        raise MinioAdminError(code, status, detail.get('Message') or '')
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise S3Error('The MinIO admin API at %s answered %s with something that is not JSON.' % (endpoint, api))


class MinioAdminError(S3Error):
    def __init__(self, code, status, message):
        self.code = code
        self.status = status
        self.message = message
        super(MinioAdminError, self).__init__('MinIO admin API error %s (HTTP %s)%s' % (code, status, (': ' + message) if message else ''))
