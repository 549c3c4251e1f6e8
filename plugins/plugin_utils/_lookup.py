# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helpers shared by the collection's lookup plugins.

Private to this collection (leading underscore): no compatibility promise to other collections.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type


def flat_terms(terms):
    """Names given one by one or as one list: lookup('x', 'a', 'b') and query('x', ['a', 'b']) alike."""
    for term in terms:
        if isinstance(term, (list, tuple)):
            yield from term
        else:
            yield term
