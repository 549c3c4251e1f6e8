# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: endpoint
short_description: Where a role reaches a service of the stack that another role provides
version_added: 0.2.0
description:
  - Returns how the current host reaches a part of the stack (V(postgres), V(redis), V(object_store), V(supabase), the
    API gateway) - from the same
    inventory host by container name on the shared Docker network, from another host by the address and port the
    provider publishes - with the service users and the names of the secrets to use
    (read their values with the P(soulmatting.selfhosted.secret#lookup) lookup).
  - The provider is the first host of the part's inventory group (C(selfhosted_groups)). Its variables are evaluated as
    they are for that host - the collection's defaults, the provider role's defaults and vars, the host's inventory
    variables and facts - so the answer is the same whether or not the provider's play ran in this run
    (C(--limit), C(--tags)).
  - Fails with a sentence naming the group or variable to fix when the provider is missing from the inventory, does not
    publish its port to another host, or publishes it on a loopback address another machine cannot reach.
options:
  _terms:
    description: The parts of the stack, such as V(postgres).
    type: list
    elements: str
    required: true
notes:
  - "Every answer has: C(part), C(provider) (inventory host), C(same_host), C(host) and C(port) (what to connect to),
    C(network) (the Docker network to join, from the same host; null otherwise), C(url) (C(scheme://host:port)), and
    C(secrets) (names of the secrets, by use). The rest is the provider's own description: C(container),
    C(container_port), C(published), C(address), C(port) and, by part, C(database) and C(users) (postgres),
    C(region), C(access_key) and C(engine) (object_store), C(gateway), C(public_url) and C(storage_bucket) (supabase)."
  - A provider whose listen address depends on its facts (such as its private address) needs them; a run that did not
    reach the provider can gather them with M(ansible.builtin.setup), C(delegate_to) the provider and
    C(delegate_facts=true).
seealso:
  - plugin: soulmatting.selfhosted.secret
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Show where this host reaches PostgreSQL
  ansible.builtin.debug:
    msg: "{{ db.host }}:{{ db.port }} as {{ db.users.admin }}, password in secret {{ db.secrets.password }}"
  vars:
    db: "{{ lookup('soulmatting.selfhosted.endpoint', 'postgres') }}"
'''

RETURN = r'''
_raw:
  description: One dict per term, as described in the notes.
  type: list
  elements: dict
'''

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase
from ansible.template import Templar

from ansible_collections.soulmatting.selfhosted.plugins.plugin_utils._lookup import flat_terms
from ansible_collections.soulmatting.selfhosted.plugins.plugin_utils._contract import (
    ContractError,
    provider_files,
    provider_host,
    reach,
    url,
)

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19 templates every string
    def trust_as_template(value):
        return value


def _trusted(value):
    """Role files are trusted templates, as Ansible trusts them when it loads a role."""
    if isinstance(value, dict):
        return dict((key, _trusted(item)) for key, item in value.items())
    if isinstance(value, list):
        return [_trusted(item) for item in value]
    if isinstance(value, str):
        return trust_as_template(value)
    return value


class LookupModule(LookupBase):

    def _load(self, path):
        return _trusted(self._loader.load_from_file(path) or {})

    def _endpoint(self, part, variables):
        templar = self._templar
        groups = variables.get('groups') or {}
        group_names = templar.template(variables.get('selfhosted_groups')) or {}
        files = provider_files(part)
        provider = provider_host(part, groups, group_names)
        consumer = variables.get('inventory_hostname')
        hostvars = variables['hostvars']
        provider_raw = dict(hostvars.raw_get(provider))
        context = {}
        for path in files['defaults']:
            context.update(self._load(path))
        context.update(provider_raw)
        role_vars = self._load(files['vars'])
        context.update(role_vars)
        # Magic variables as the provider's play would see them.
        context.update(groups=groups, hostvars=hostvars, inventory_hostname=provider,
                       playbook_dir=variables.get('playbook_dir'))
        if files['variable'] not in role_vars:
            raise ContractError('The %s role does not describe its endpoint (%s).' % (files['role'], files['variable']))
        try:
            endpoint = Templar(loader=self._loader, variables=context).template(role_vars[files['variable']])
        except Exception as exc:  # whatever the provider's variables raise while templating
            raise ContractError('cannot evaluate the %s endpoint as %s sees it: %s' % (part, provider, to_native(exc)))
        consumer_raw = dict(hostvars.raw_get(consumer)) if consumer else {}
        answer = reach(part, dict(endpoint), provider, consumer, provider_raw, consumer_raw)
        answer['url'] = url(answer)
        return answer

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        answers = []
        for part in flat_terms(terms):
            try:
                answers.append(self._endpoint(part, variables or {}))
            except ContractError as exc:
                raise AnsibleLookupError('endpoint: %s' % to_native(exc))
        return answers
