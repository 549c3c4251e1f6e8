"""Make the collection importable as ansible_collections.soulmatting.selfhosted in tests."""

import os
import sys

_REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
_COLLECTIONS_ROOT = os.path.join(_REPO_ROOT, ".cache", "collections")

if os.path.isdir(_COLLECTIONS_ROOT) and _COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, _COLLECTIONS_ROOT)
