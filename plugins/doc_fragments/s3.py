# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Connection options of the collection's S3 modules (argument spec: module_utils/_s3.py s3_argument_spec()).
    DOCUMENTATION = r'''
options:
  endpoint_url:
    description:
      - URL of the S3 API, for example V(http://127.0.0.1:9000) for MinIO or V(https://s3.example.org).
      - Requests use path-style addressing, which every S3-compatible server understands.
      - If not set, the environment variables E(AWS_ENDPOINT_URL_S3) or E(AWS_ENDPOINT_URL) are used; without any, the AWS endpoint of O(region).
    type: str
    aliases: [endpoint, s3_url]
  access_key:
    description:
      - S3 access key ID.
      - If not set, the environment variable E(AWS_ACCESS_KEY_ID) is used, then E(MINIO_ROOT_USER).
    type: str
    aliases: [aws_access_key_id]
  secret_key:
    description:
      - S3 secret access key.
      - If not set, the environment variable E(AWS_SECRET_ACCESS_KEY) is used, then E(MINIO_ROOT_PASSWORD).
    type: str
    aliases: [aws_secret_access_key]
  region:
    description:
      - Region used to sign requests; must match the region the server is configured with (MinIO's default is V(us-east-1)).
    type: str
    default: us-east-1
  validate_certs:
    description:
      - Whether to verify the server's TLS certificate for V(https://) endpoints.
      - Set O(ca_path) instead of turning this off when the server uses a private CA.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificate(s) to trust for the endpoint's TLS certificate.
    type: path
requirements:
  - boto3
  - botocore
notes:
  - On Debian and Ubuntu the requirements are packaged as C(python3-boto3).
'''
