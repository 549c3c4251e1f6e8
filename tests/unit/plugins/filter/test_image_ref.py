"""The image_ref filter points pinned images at a private registry."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.soulmatting.selfhosted.plugins.filter.image_ref import image_ref


@pytest.mark.parametrize("image, registry, expected", [
    ("supabase/postgres:17.6.1.136", "", "supabase/postgres:17.6.1.136"),
    ("supabase/postgres:17.6.1.136", "127.0.0.1:5000", "127.0.0.1:5000/supabase/postgres:17.6.1.136"),
    ("redis:7.4.6-alpine", "mirror.internal", "mirror.internal/library/redis:7.4.6-alpine"),
    ("cgr.dev/chainguard/minio:latest", "mirror.internal:5000/cache/", "mirror.internal:5000/cache/chainguard/minio:latest"),
    ("localhost/testbed/pg:15", "reg:5000", "reg:5000/testbed/pg:15"),
    ("ghcr.io/org/img@sha256:abc", "reg", "reg/org/img@sha256:abc"),
])
def test_image_ref(image, registry, expected):
    assert image_ref(image, registry) == expected


def test_empty_image_is_an_error():
    with pytest.raises(AnsibleFilterError, match="empty"):
        image_ref("  ", "reg")
