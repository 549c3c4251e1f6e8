# Copyright: SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The image_ref filter: point a pinned image reference at another registry."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: image_ref
short_description: Point a pinned image reference at another registry
version_added: 0.1.0
description:
  - Returns the image reference unchanged when O(registry) is empty.
  - Otherwise replaces the reference's registry with O(registry), keeping the repository path and
    the tag or digest, so that a private registry or mirror can serve the images the roles pin.
  - Docker Hub official images (C(postgres:15)) get the C(library/) prefix a mirror stores them under.
options:
  _input:
    description: An image reference such as C(supabase/postgres:17.6.1.136) or C(ghcr.io/org/img:1).
    type: string
    required: true
  registry:
    description: Registry host (and optional path prefix), such as C(registry.example.internal:5000/mirror).
    type: string
    default: ''
"""

EXAMPLES = r"""
- name: Use a private registry for the pinned image
  ansible.builtin.debug:
    msg: "{{ 'supabase/postgres:17.6.1.136' | soulmatting.selfhosted.image_ref('127.0.0.1:5000') }}"
  # -> 127.0.0.1:5000/supabase/postgres:17.6.1.136
"""

RETURN = r"""
_value:
  description: The image reference, rewritten to O(registry) when one is given.
  type: string
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text


def _split_registry(image):
    """Return (registry, path) where registry is '' for Docker Hub references."""
    first, sep, rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "", image


def image_ref(image, registry=""):
    """Rewrite IMAGE to live under REGISTRY (no change when REGISTRY is empty)."""
    image = to_text(image).strip()
    if not image:
        raise AnsibleFilterError("image_ref: the image reference is empty")
    registry = to_text(registry or "").strip().rstrip("/")
    if not registry:
        return image
    source_registry, path = _split_registry(image)
    if not source_registry and "/" not in path:
        path = "library/" + path
    return "%s/%s" % (registry, path)


class FilterModule:
    """Image reference filters."""

    def filters(self):
        return {"image_ref": image_ref}
