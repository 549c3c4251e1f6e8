# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of soulmatting.selfhosted.rotate_secret: a new value for a secret of the store, on the controller."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.soulmatting.selfhosted.plugins.plugin_utils._secret_store import SecretStoreError, describe, replace

ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    value=dict(type='str', no_log=True),
    directory=dict(type='path'),
)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, params = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        name = params['name']
        try:
            describe(name)
        except SecretStoreError as exc:
            raise AnsibleActionFail(to_native(exc))
        # A secret supplied in the inventory wins over the store: changing the store would change nothing.
        if name in task_vars.get('hostvars', {}).get(task_vars.get('inventory_hostname'), {}):
            raise AnsibleActionFail('%s is supplied in the inventory (or as an extra variable), which wins over the secret store: '
                                    'put the new value there instead, then run the playbook again without rotating.' % name)
        directory = params['directory'] or self._templar.template(task_vars.get('selfhosted_secrets_dir'))
        if not directory:
            raise AnsibleActionFail('No secret store: set directory or selfhosted_secrets_dir.')
        result.update(name=name, changed=True)
        if self._task.check_mode:
            result['msg'] = 'A new value of %s would be put in the store.' % name
            return result
        try:
            result['changed'] = replace(directory, name, params['value'])
        except SecretStoreError as exc:
            raise AnsibleActionFail(to_native(exc))
        result['msg'] = ('%s has a new value in the store.' % name) if result['changed'] else ('%s already has that value.' % name)
        return result
