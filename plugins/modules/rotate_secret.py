#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: rotate_secret
short_description: Give a secret of the stack's store a new value
version_added: 0.2.0
description:
  - Puts a new value for one secret in the stack's secret store on the controller (see the
    P(soulmatting.selfhosted.secret#lookup) lookup) - the given O(value), or a new random one generated as the store
    generates that secret.
  - The roles then apply it on their next run, as they apply any changed secret; the rotation playbooks
    (C(playbooks/rotate_jwt.yml), C(playbooks/change_db_password.yml)) run them in the right order.
  - Refuses a secret supplied in the inventory (for example from ansible-vault), which wins over the store; change it
    there instead.
  - Runs on the controller only (an action plugin); the file is replaced atomically with mode C(0600).
author:
  - SoulMatting maintainers (@soulmatting)
extends_documentation_fragment:
  - soulmatting.selfhosted._attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports that the secret would change and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - With O(value), a second run with the same value changes nothing; without it, every run generates a new value.
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
options:
  name:
    description: The secret's name, one of those the P(soulmatting.selfhosted.secret#lookup) lookup lists.
    type: str
    required: true
  value:
    description: The new value; a new random one when left out.
    type: str
  directory:
    description: The store directory on the controller; defaults to the variable C(selfhosted_secrets_dir).
    type: path
notes:
  - The old value is not kept. Services that still hold it keep working until the roles apply the new one.
seealso:
  - plugin: soulmatting.selfhosted.secret
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: A new database password for the whole stack (the roles apply it on their next run)
  soulmatting.selfhosted.rotate_secret:
    name: postgres_password
  run_once: true
'''

RETURN = r'''
name:
  description: The secret's name.
  returned: always
  type: str
  sample: postgres_password
'''

from ansible.module_utils.basic import AnsibleModule


def main():
    # Everything happens in the action plugin on the controller; this runs only if it is called without it.
    module = AnsibleModule(argument_spec=dict(name=dict(type='str', required=True), value=dict(type='str', no_log=True),
                                              directory=dict(type='path')), supports_check_mode=True)
    module.fail_json(msg='rotate_secret runs on the controller through its action plugin.')


if __name__ == '__main__':
    main()
