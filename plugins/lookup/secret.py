# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
name: secret
short_description: Read a secret of the stack from the controller-side store, generating it once
version_added: 0.2.0
description:
  - Every secret of the SoulMatting stack has one name, listed below. Its value lives in one file of that name in the
    store directory on the controller (O(directory), by default C(selfhosted_secrets_dir)), so every play, role and host
    reads the same value.
  - A secret that is not in the store yet is generated (random letters and digits of the length its consumers need),
    written with mode C(0600) in a directory of mode C(0700), and kept. Concurrent forks generate it only once.
  - The store directory gets a C(.gitignore) that ignores everything in it; the collection build never packs it.
  - "To supply a secret yourself (for example from ansible-vault), set the variable of the same name in the inventory:
    the roles use the variable instead of the store. With O(host), the variable as set for that inventory host wins
    over the store, which is how a role on one host reads a secret that belongs to a service on another."
  - "The names: C(postgres_password), C(redis_password), C(minio_root_password), C(supabase_jwt_secret),
    C(supabase_dashboard_password), C(supabase_secret_key_base), C(supabase_realtime_db_enc_key) (16 characters),
    C(supabase_vault_enc_key), C(supabase_pg_meta_crypto_key), C(supabase_storage_s3_access_key),
    C(supabase_storage_s3_secret_key), C(supabase_s3_protocol_access_key), C(supabase_s3_protocol_secret_key),
    C(supabase_logflare_public_token), C(supabase_logflare_private_token), C(traefik_dashboard_password),
    C(monitoring_grafana_admin_password), C(backup_cipher_passphrase)."
options:
  _terms:
    description: Names of the secrets.
    type: list
    elements: str
    required: true
  directory:
    description:
      - The store directory on the controller.
      - Defaults to the variable C(selfhosted_secrets_dir).
    type: path
  host:
    description:
      - An inventory host that owns the secrets. When the variable named like a secret is set for that host (in the
        inventory, or as an extra variable), its value is returned instead of the store's.
    type: str
notes:
  - Lookups run on the controller even in check mode, so a secret missing from the store is written there by a check
    run too; the hosts are not touched. The check run then compares the hosts against the values a real run will use.
  - Use the values only in tasks and templates whose output is hidden (C(no_log), C(diff=false)).
seealso:
  - plugin: soulmatting.selfhosted.endpoint
    plugin_type: lookup
'''

EXAMPLES = r'''
- name: Connect to the stack's database from a role on another host
  ansible.builtin.command:
    argv: [psql, -h, "{{ db.host }}", -p, "{{ db.port }}", -U, postgres, -c, select 1]
  environment:
    PGPASSWORD: "{{ lookup('soulmatting.selfhosted.secret', db.secrets.password, host=db.provider) }}"
  vars:
    db: "{{ lookup('soulmatting.selfhosted.endpoint', 'postgres') }}"
  changed_when: false
  no_log: true
'''

RETURN = r'''
_raw:
  description: The value of each secret named in the terms.
  type: list
  elements: str
'''

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.soulmatting.selfhosted.plugins.plugin_utils._lookup import flat_terms
from ansible_collections.soulmatting.selfhosted.plugins.plugin_utils._secret_store import SecretStoreError, describe, get


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        directory = self.get_option('directory')
        if not directory:
            directory = self._templar.template(variables.get('selfhosted_secrets_dir'))
        host = self.get_option('host')
        owner_vars = None
        if host:
            try:
                owner_vars = variables['hostvars'][host]
            except KeyError:
                raise AnsibleLookupError('secret: host %r is not in the inventory.' % host)
        values = []
        for name in flat_terms(terms):
            try:
                describe(name)
                if owner_vars is not None and name in owner_vars:
                    values.append(owner_vars[name])
                else:
                    values.append(get(directory, name))
            except SecretStoreError as exc:
                raise AnsibleLookupError('secret: %s' % to_native(exc))
        return values
