# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action of soulmatting.selfhosted.compose_project: the skeleton every role stands on.

On the controller: validates the arguments, merges the stack's service policies into the Compose
file and checks that every service has a healthcheck and resource limits. On the host, in as few
module calls as a run needs: files and networks (one call), Compose up and wait (one call to
community.docker.docker_compose_v2), restarts (only when a mounted file changed), and the
commands of `exec` (one call).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase

from ansible_collections.soulmatting.selfhosted.plugins.module_utils._project_files import ProjectError, argument_spec, env_file

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core
    yaml = None

MODULE = 'soulmatting.selfhosted.compose_project'
COMPOSE_MODULE = 'community.docker.docker_compose_v2'
HEADER = (
    '# Managed by Ansible (soulmatting.selfhosted.compose_project): changes made here are overwritten.\n'
    '# Services without their own restart policy, logging or healthcheck timing get the stack\'s policies.\n'
)

# Option: (variable it defaults to, fallback).
POLICY_DEFAULTS = {
    'wait_timeout': ('selfhosted_wait_timeout', 180),
    'restart_policy': ('selfhosted_restart_policy', 'unless-stopped'),
    'log_max_size': ('selfhosted_log_max_size', '10m'),
    'log_max_file': ('selfhosted_log_max_file', 3),
    'healthcheck_interval': ('selfhosted_healthcheck_interval', '10s'),
    'healthcheck_retries': ('selfhosted_healthcheck_retries', 12),
    'start': ('selfhosted_start', True),
}


if yaml is not None:
    class _IndentedDumper(yaml.SafeDumper):
        """Indents list items under their key, as people write Compose files."""

        def increase_indent(self, flow=False, indentless=False):
            return super(_IndentedDumper, self).increase_indent(flow, False)

    def _represent_str(dumper, data):
        style = '|' if '\n' in data else None
        return dumper.represent_scalar('tag:yaml.org,2002:str', data, style=style)

    _IndentedDumper.add_representer(str, _represent_str)


def _plain(value):
    """The value with plain Python types only (no tagged or lazy containers), for YAML."""
    if isinstance(value, dict):
        return dict((str(to_text(k)), _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if value is None:
        return None
    return str(to_text(value))


def merge(base, change):
    """BASE with CHANGE merged in: dicts key by key, anything else replaced."""
    if not isinstance(base, dict) or not isinstance(change, dict):
        return change
    merged = dict(base)
    for key, value in change.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge(base.get(key), value)
    return merged


def apply_overrides(compose, overrides):
    """Merges each service's changes in; returns the names of services the Compose file does not have."""
    services = compose.get('services') or {}
    unknown = sorted(name for name in overrides if name not in services)
    for name, change in overrides.items():
        if name in services:
            services[name] = merge(services[name], change)
    return unknown


def apply_policies(compose, policies):
    """Adds the policies to each service that lacks them; returns the services that break the house rules."""
    problems = []
    for name, service in (compose.get('services') or {}).items():
        if not isinstance(service, dict):
            problems.append('%s is not a mapping' % name)
            continue
        service.setdefault('restart', policies['restart_policy'])
        service.setdefault('logging', {'driver': 'json-file', 'options': {
            'max-size': str(policies['log_max_size']), 'max-file': str(policies['log_max_file'])}})
        healthcheck = service.get('healthcheck') or {}
        if not healthcheck.get('test'):
            problems.append('%s has no healthcheck test' % name)
        else:
            healthcheck.setdefault('interval', policies['healthcheck_interval'])
            healthcheck.setdefault('timeout', '5s')
            healthcheck.setdefault('retries', policies['healthcheck_retries'])
            healthcheck.setdefault('start_period', '30s')
            service['healthcheck'] = healthcheck
        limits = ((service.get('deploy') or {}).get('resources') or {}).get('limits') or {}
        if not limits.get('memory') or not limits.get('cpus'):
            problems.append('%s has no memory and cpus limits (deploy.resources.limits)' % name)
    return problems


def external_networks(compose):
    """The networks the project joins but does not own: they must exist before Compose starts it."""
    names = []
    for key, network in (compose.get('networks') or {}).items():
        if isinstance(network, dict) and network.get('external'):
            names.append(network.get('name') or key)
    return names


def container_names(compose):
    """Service name to container name, as Compose names them."""
    project = compose.get('name', '')
    return dict((name, (service or {}).get('container_name') or '%s-%s-1' % (project, name))
                for name, service in (compose.get('services') or {}).items())


def services_acted_on(actions, containers):
    """Services whose containers Compose created, recreated or started in this run."""
    by_container = dict((container, service) for service, container in containers.items())
    touched = set()
    for action in actions or []:
        name = action.get('id')
        if action.get('what') == 'service' and name in containers:
            touched.add(name)
        elif name in by_container and action.get('status') not in (None, 'Running', 'Healthy', 'Waiting'):
            touched.add(by_container[name])
    return touched


class ActionModule(ActionBase):

    TRANSFERS_FILES = False

    def _policy(self, params, option, task_vars):
        if params.get(option) is not None:
            return params[option]
        variable, fallback = POLICY_DEFAULTS[option]
        value = task_vars.get(variable)
        return fallback if value is None else self._templar.template(value)

    def _module(self, name, args, task_vars):
        result = self._execute_module(module_name=name, module_args=args, task_vars=task_vars)
        result.pop('invocation', None)
        if result.get('failed'):
            raise AnsibleActionFail(result.get('msg', '%s failed' % name), result=result)
        return result

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        if yaml is None:
            raise AnsibleActionFail('soulmatting.selfhosted.compose_project needs PyYAML on the controller.')

        dummy, params = self.validate_argument_spec(argument_spec=argument_spec())
        policies = _plain(dict((option, self._policy(params, option, task_vars)) for option in POLICY_DEFAULTS))
        policies['start'] = boolean(policies['start'], strict=False)

        try:
            compose = yaml.safe_load(to_text(params['compose']))
        except yaml.YAMLError as exc:
            raise AnsibleActionFail('The Compose file is not valid YAML: %s' % to_native(exc))
        if not isinstance(compose, dict) or not isinstance(compose.get('services'), dict):
            raise AnsibleActionFail('The Compose file must be a mapping with a services mapping.')
        compose = _plain(compose)
        unknown = apply_overrides(compose, _plain(params['service_overrides'] or {}))
        if unknown:
            raise AnsibleActionFail('service_overrides names services the Compose file does not have: %s.' % ', '.join(unknown))
        problems = apply_policies(compose, policies)
        if problems:
            raise AnsibleActionFail('Every service needs a healthcheck and resource limits: %s.' % '; '.join(problems))
        compose_text = HEADER + yaml.dump(compose, Dumper=_IndentedDumper, sort_keys=False, default_flow_style=False,
                                          allow_unicode=True, width=4096)
        containers = container_names(compose)
        networks = [dict(name=name, internal=False) for name in external_networks(compose)]
        known = set(network['name'] for network in networks)
        networks.extend(network for network in params['networks'] if network['name'] not in known)

        secret_files = list(params['secret_files'])
        for path, variables in sorted((params['secret_env'] or {}).items()):
            try:
                content = env_file(_plain(variables or {}))
            except ProjectError as exc:
                raise AnsibleActionFail('secret_env %s: %s' % (path, to_native(exc)))
            secret_files.append(dict(path=path, content=content, mode='0600', owner=None, group=None, restart=[]))

        commands = []
        for item in params['exec']:
            if item['service'] not in containers:
                raise AnsibleActionFail('exec names a service the Compose file does not have: %s.' % item['service'])
            commands.append(dict(item, container=item['container'] or containers[item['service']]))
        unknown = set(service for item in params['files'] + secret_files for service in item['restart']) - set(containers)
        if unknown:
            raise AnsibleActionFail('restart names services the Compose file does not have: %s.' % ', '.join(sorted(unknown)))

        module_args = dict(project_dir=params['project_dir'], compose=compose_text, directories=params['directories'],
                           files=params['files'], secret_files=secret_files, networks=networks,
                           refuse_if=params['refuse_if'], exec=commands if policies['start'] else [], start=policies['start'])
        prepared = self._module(MODULE, dict(module_args, phase='prepare'), task_vars)
        result.update(files=prepared['files'], networks=prepared['networks'], exec=prepared['exec'], actions=[], restarted=[])
        if prepared.get('diff'):
            result['diff'] = prepared['diff']
        files_changed = bool(prepared['files'] or prepared['networks'])
        changed = files_changed or any(item['changed'] for item in prepared['exec'])
        if not policies['start']:
            result['changed'] = files_changed
            return result
        if prepared['converged']:
            # Every service already runs healthy with these files and images: Compose has nothing to do.
            result['changed'] = changed
            return result

        # Compose reads the files on disk: in check mode, with files about to change, its own
        # prediction would describe the old project, so the project is reported as changing.
        if self._task.check_mode and files_changed:
            result['msg'] = 'The project would be (re)started with the changed files.'
            result['changed'] = True
            return result

        up_args = dict(project_src=params['project_dir'], state='present', pull=params['pull'], remove_orphans=True,
                       wait=True, wait_timeout=policies['wait_timeout'])
        up = self._module(COMPOSE_MODULE, up_args, task_vars)
        result.update(actions=up.get('actions', []), containers=up.get('containers', []))
        changed = changed or up.get('changed', False)

        # Services that read a file only at start and were not (re)created just now.
        to_restart = set()
        for item in params['files'] + secret_files:
            if item['path'] in prepared['pending']:
                to_restart.update(item['restart'])
        to_restart -= services_acted_on(up.get('actions'), containers)
        if to_restart:
            restart_args = dict(project_src=params['project_dir'], state='restarted', services=sorted(to_restart))
            self._module(COMPOSE_MODULE, restart_args, task_vars)
            if not self._task.check_mode:
                self._module(COMPOSE_MODULE, up_args, task_vars)
            result['restarted'] = sorted(to_restart)
            changed = True

        finished = self._module(MODULE, dict(module_args, phase='finish'), task_vars)
        result['exec'] = finished['exec']
        changed = changed or any(item['changed'] for item in finished['exec'])

        result['changed'] = changed
        return result
