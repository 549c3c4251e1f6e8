# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""How a role finds a service another role provides: the endpoint contract.

Private to this collection (leading underscore): no compatibility promise to other collections.

A provider role describes its endpoint once, as `_<role>_endpoint` in its vars/main.yml, in terms
of its own variables. A consumer asks for it by the part's name; the provider's variables are
evaluated as they are for the provider's host (the collection's defaults, the provider role's
defaults and vars, the host's inventory variables and facts), so the answer does not depend on
whether the provider's play ran in this run (`--limit`, `--tags`).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import os

# The part of the stack (a key of selfhosted_groups) -> the role that provides it.
PROVIDERS = {
    'postgres': 'postgres',
    'redis': 'redis',
    'object_store': 'minio',
    'supabase': 'supabase',
    'monitoring': 'monitoring',
}
COMMON_ROLE = 'selfhosted'
REQUIRED_KEYS = ('container', 'container_port', 'network', 'published', 'address', 'port')
WILDCARDS = ('', '0.0.0.0', '::', '[::]')


class ContractError(Exception):
    """A failure phrased as one sentence for the user."""


def roles_dir():
    """The collection's roles directory (this file is plugins/plugin_utils/_contract.py)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'roles')


def provider_files(part):
    """The files whose variables define PART's endpoint, lowest precedence first, and the endpoint variable."""
    if part not in PROVIDERS:
        raise ContractError('%r is not a part of the stack that provides an endpoint; known parts: %s.'
                            % (part, ', '.join(sorted(PROVIDERS))))
    role = PROVIDERS[part]
    base = roles_dir()
    return dict(
        role=role,
        defaults=[os.path.join(base, COMMON_ROLE, 'defaults', 'main.yml'), os.path.join(base, role, 'defaults', 'main.yml')],
        vars=os.path.join(base, role, 'vars', 'main.yml'),
        variable='_%s_endpoint' % role,
    )


def provider_host(part, groups, group_names):
    """The inventory host that provides PART: the first host of its group."""
    group = group_names.get(part, part)
    hosts = groups.get(group) or []
    if not hosts:
        raise ContractError('No host provides %s: the inventory group %r (selfhosted_groups.%s) is empty or missing. '
                            'Add the host that runs it to that group.' % (part, group, part))
    return hosts[0]


def machine(host, host_vars):
    """What identifies the machine behind an inventory host, to tell two names of one machine apart from two machines."""
    if host_vars.get('ansible_connection') == 'local' or (host in ('localhost', '127.0.0.1') and 'ansible_host' not in host_vars):
        return 'local'
    return host_vars.get('ansible_host') or host


def is_loopback(address):
    if address == 'localhost':
        return True
    try:
        return ipaddress.ip_address(address.strip('[]')).is_loopback
    except ValueError:
        return False


def reach(part, endpoint, provider, consumer, provider_vars, consumer_vars):
    """Where CONSUMER reaches PROVIDER's endpoint: by container name on the shared network from the
    same inventory host, else by the published address and port."""
    missing = [key for key in REQUIRED_KEYS if key not in endpoint]
    if missing:
        raise ContractError('The endpoint of %s lacks %s.' % (part, ', '.join(missing)))
    answer = dict(endpoint, part=part, provider=provider, same_host=provider == consumer)
    if provider == consumer:
        answer.update(host=endpoint['container'], port=int(endpoint['container_port']), network=endpoint['network'])
        return answer
    if not _truthy(endpoint['published']):
        raise ContractError('%s on %s does not publish its port, so %s cannot reach it; publish it on a private address '
                            'of %s (the role\'s publish and listen address variables).' % (part, provider, consumer, provider))
    address = str(endpoint['address'])
    if address in WILDCARDS:
        address = provider_vars.get('ansible_host') or provider
    elif is_loopback(address) and machine(provider, provider_vars) != machine(consumer, consumer_vars):
        raise ContractError('%s on %s listens on %s only, which %s cannot reach; set its listen address to a private '
                            'address of %s.' % (part, provider, address, consumer, provider))
    answer.update(host=address, port=int(endpoint['port']), network=None)
    return answer


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ('1', 'true', 'yes', 'on')
    return bool(value)


def url(answer):
    """scheme://host:port of an answer; the scheme comes from the endpoint (http unless it says otherwise)."""
    host = answer['host']
    if ':' in host and not host.startswith('['):
        host = '[%s]' % host
    return '%s://%s:%d' % (answer.get('scheme') or 'http', host, answer['port'])
