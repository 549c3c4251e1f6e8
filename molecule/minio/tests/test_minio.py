"""Verify the minio role (SeaweedFS engine) with a real S3 client: signatures, buckets, anonymous access."""

import json
import urllib.error
import urllib.request

import boto3
import botocore.exceptions
import pytest
from botocore import UNSIGNED
from botocore.config import Config

ENDPOINT = "http://127.0.0.1:19000"
USER = "molecule-root"
PASSWORD = "molecule-minio-password-0001"
CONTAINER = "molecule-minio"
PROJECT_DIR = "/var/tmp/soulmatting-molecule/minio"
STATE_FILE = "/var/tmp/soulmatting-molecule/minio-before-recreate.id"
BUCKETS = {"molecule-private", "molecule-public", "molecule-lifecycle"}


def client(user=USER, password=PASSWORD, signed=True):
    options = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 1}}
    if not signed:
        return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", config=Config(signature_version=UNSIGNED, **options))
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1", aws_access_key_id=user,
                        aws_secret_access_key=password, config=Config(**options))


def error_code(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(*args, **kwargs)
    return caught.value.response["Error"]["Code"]


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_container_is_healthy(host):
    state = host.check_output("docker inspect -f '{{.State.Health.Status}} {{.HostConfig.RestartPolicy.Name}}' %s", CONTAINER)
    assert state == "healthy unless-stopped"


def test_declared_buckets_listed_with_the_root_credentials():
    names = {bucket["Name"] for bucket in client().list_buckets()["Buckets"]}
    assert BUCKETS <= names


@pytest.mark.parametrize("user,password", [(USER, "wrong-password-000000000000"), ("someone-else", PASSWORD)])
def test_wrong_credentials_are_refused(user, password):
    code = error_code(client(user, password).list_buckets)
    assert code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied")


def test_anonymous_listing_is_refused():
    assert error_code(client(signed=False).list_buckets) == "AccessDenied"
    assert error_code(client(signed=False).list_objects_v2, Bucket="molecule-private") == "AccessDenied"


def test_download_policy_serves_unsigned_gets_and_private_does_not():
    s3 = client()
    for bucket in ("molecule-public", "molecule-private"):
        s3.put_object(Bucket=bucket, Key="probe/hello.txt", Body=b"hello from " + bucket.encode())
    assert http_get(ENDPOINT + "/molecule-public/probe/hello.txt") == (200, b"hello from molecule-public")
    status, _body = http_get(ENDPOINT + "/molecule-private/probe/hello.txt")
    assert status == 403
    # Reading is all the download preset grants: an unsigned write is refused.
    assert error_code(client(signed=False).put_object, Bucket="molecule-public", Key="probe/anon.txt", Body=b"x") == "AccessDenied"


def test_bucket_policy_is_the_download_preset():
    policy = json.loads(client().get_bucket_policy(Bucket="molecule-public")["Policy"])
    actions = set()
    for statement in policy["Statement"]:
        action = statement["Action"]
        actions.update([action] if isinstance(action, str) else action)
    assert "s3:GetObject" in actions and "s3:PutObject" not in actions
    assert error_code(client().get_bucket_policy, Bucket="molecule-private") in ("NoSuchBucketPolicy", "NoSuchPolicy")


def test_bucket_settings_applied():
    s3 = client()
    assert s3.get_bucket_versioning(Bucket="molecule-private").get("Status") == "Enabled"
    assert s3.get_bucket_tagging(Bucket="molecule-private")["TagSet"] == [{"Key": "purpose", "Value": "molecule"}]
    rules = s3.get_bucket_lifecycle_configuration(Bucket="molecule-lifecycle")["Rules"]
    assert [(rule["ID"], rule["Expiration"]["Days"]) for rule in rules] == [("expire-tmp", 7)]


def test_object_survived_a_recreation(host):
    before = host.file(STATE_FILE).content_string.strip()
    now = host.check_output("docker inspect -f '{{.Id}}' %s", CONTAINER)
    assert before and now != before, "the side effect did not recreate the container"
    body = client().get_object(Bucket="molecule-private", Key="kept.txt")["Body"].read()
    assert body == b"written before recreate"


def test_api_published_on_loopback_only(host):
    assert host.check_output("docker port %s", CONTAINER).splitlines() == ["8333/tcp -> 127.0.0.1:19000"]


def test_credentials_only_in_the_identities_file(host):
    identities = host.file(PROJECT_DIR + "/config/s3.json")
    assert identities.mode == 0o600 and identities.uid == 65532
    config = json.loads(identities.content_string)
    assert [identity["name"] for identity in config["identities"]] == ["root"]
    assert PASSWORD not in host.file(PROJECT_DIR + "/compose.yaml").content_string
    inspected = host.check_output("docker inspect -f '{{json .Config.Env}} {{json .Args}}' %s", CONTAINER)
    assert PASSWORD not in inspected


def http_code_from_the_data_network(host, port):
    """HTTP status of the container's port as another service on the stack's network sees it ("000": no connection)."""
    result = host.run(
        "docker run --rm --network molecule_data --entrypoint curl soulmatting-testbed/seaweedfs:latest"
        " -s -o /dev/null -m 5 -w '%%{http_code}' %s", "http://%s:%d/" % (CONTAINER, port))
    return result.stdout.strip()


def test_only_the_s3_gateway_is_reachable_on_the_stack_network(host):
    # The S3 gateway answers (and refuses the unsigned request); the filer, master and volume
    # server, which have no authentication, listen on the container's loopback only.
    assert http_code_from_the_data_network(host, 8333) == "403"
    for port in (8888, 9333, 8080):
        assert http_code_from_the_data_network(host, port) == "000", port


def test_runs_as_the_configured_user(host):
    assert host.check_output("docker inspect -f '{{.Config.User}}' %s", CONTAINER) == "65532:65532"
    data = host.file(PROJECT_DIR + "/data")
    assert data.uid == 65532 and data.mode == 0o700
    assert host.file(PROJECT_DIR + "/data/filerldb2").is_directory
