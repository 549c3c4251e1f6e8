#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
module: compose_project
short_description: Render and converge a Docker Compose project in one task, secrets hidden
version_added: 0.2.0
description:
  - The skeleton every role of the collection stands on. In one task it keeps a Compose project's directories,
    configuration files and secret files on the host as given, creates the external Docker networks the project joins,
    brings the project up with M(community.docker.docker_compose_v2) and waits until every service is healthy,
    restarts the services whose mounted configuration changed, and runs commands inside services (for example to
    prepare a database on every run).
  - The Compose file is given as text (usually from a template lookup). Every service gets the stack's service
    policies unless it sets them itself - restart policy, log rotation, healthcheck timing - and must declare a
    healthcheck test and memory and CPU limits; a service without them fails the task before anything changes.
  - Secret files are written with mode C(0600) unless told otherwise, their content never appears in the task's
    output or its diff, and the values are masked everywhere in the output.
  - Files are replaced atomically. Services reading a bind-mounted file should mount its directory, not the file, so
    that a running container sees the new version.
  - Runs partly on the controller (an action plugin) and partly on the host.
author:
  - SoulMatting maintainers (@soulmatting)
extends_documentation_fragment:
  - soulmatting.selfhosted._attributes
attributes:
  check_mode:
    support: full
    details:
      - Directories, files and networks are compared with the host and reported without changes.
      - When no file changes, Compose itself predicts what it would do (C(docker compose up --dry-run)); when a file
        would change, the project is reported as changed without asking Compose, which would read the old files.
      - Commands in O(exec) run only when their O(exec[].check_mode) is set, with E(SOULMATTING_CHECK_MODE=1).
  diff_mode:
    support: full
    details:
      - Shows the diff of every directory, configuration file and the Compose file; a secret file shows only that
        it changed.
  idempotent:
    support: full
    details:
      - Commands in O(exec) report a change only when a line of their output starts with O(exec[].changed_marker).
  action:
    support: full
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
options:
  project_dir:
    description:
      - Directory of the project on the host. C(compose.yaml) is written there; relative paths of the other items
        are relative to it.
    type: path
    required: true
  compose:
    description:
      - The Compose file, as YAML text. It should set C(name) (the project name).
      - Each service must set C(healthcheck.test) and C(deploy.resources.limits.memory) and C(.cpus).
      - O(restart_policy), O(log_max_size), O(log_max_file) and the healthcheck timing options are added to each
        service that does not set them.
      - Networks declared C(external) with a C(name) are created when missing.
    type: str
    required: true
  service_overrides:
    description:
      - Changes to the Compose file's services, by service name, merged into them (dicts merged key by key, a null
        value removing the key, anything else replaced) before the policies are added - for special cases such as
        another command or an extra variable.
      - Naming a service the Compose file does not have is an error.
    type: dict
    default: {}
  directories:
    description: Directories to create, or whose mode and owner to keep.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Path, relative to O(project_dir) or absolute.
        type: path
        required: true
      mode:
        description: Octal mode.
        type: raw
        default: '0750'
      owner:
        description: User name or ID; left alone when not given (new directories belong to the task's user).
        type: raw
      group:
        description: Group name or ID; left alone when not given.
        type: raw
  files:
    description: Configuration files to keep exactly as given. They must not hold secrets (they show in diffs).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Path, relative to O(project_dir) or absolute; its directory must exist or be in O(directories).
        type: path
        required: true
      content:
        description: The whole content.
        type: str
        required: true
      mode:
        description: Octal mode.
        type: raw
        default: '0644'
      owner:
        description: User name or ID.
        type: raw
      group:
        description: Group name or ID.
        type: raw
      restart:
        description:
          - Services to restart when this file changes, for services that read it only at start. A service that
            Compose recreates in the same run is not restarted again.
        type: list
        elements: str
        default: []
  secret_files:
    description:
      - Files that hold secrets, such as a C(env_file) of the Compose file. Their content is never shown, in a
        diff or anywhere else.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Path, relative to O(project_dir) or absolute.
        type: path
        required: true
      content:
        description: The whole content.
        type: str
        required: true
      mode:
        description: Octal mode.
        type: raw
        default: '0600'
      owner:
        description: User name or ID.
        type: raw
      group:
        description: Group name or ID.
        type: raw
      restart:
        description: Services to restart when this file changes (see O(files[].restart)).
        type: list
        elements: str
        default: []
  secret_env:
    description:
      - Env files for the Compose file's C(env_file) entries, by path (relative to O(project_dir) or absolute), each a
        dict of variables. They are written as secret files (mode C(0600), owned by the task's user), one
        C(NAME='value') line per variable, the values taken literally; a value holding a single quote or a line
        break is refused.
      - A changed env file makes Compose recreate the services that read it.
    type: dict
    default: {}
  networks:
    description:
      - More external networks to create when missing, besides those the Compose file declares.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Network name.
        type: str
        required: true
      internal:
        description: Create it as an internal network (no route out of the host).
        type: bool
        default: false
  exec:
    description:
      - Commands to run inside running services after the project is up and healthy, on every run (they must be
        idempotent).
      - Each gets E(SOULMATTING_CHANGED_FILES), the space-separated paths (as given) of the files this run changed.
    type: list
    elements: dict
    default: []
    suboptions:
      service:
        description: Service to run in.
        type: str
        required: true
      argv:
        description: The command and its arguments.
        type: list
        elements: str
        required: true
      user:
        description: User to run as inside the container.
        type: str
      env:
        description:
          - Environment of the command. The values are treated as secrets and are masked in the output; they never
            appear on a command line.
        type: dict
        default: {}
      check_mode:
        description:
          - The command supports check mode - it reports what it would change without changing it when
            E(SOULMATTING_CHECK_MODE=1). Otherwise it is skipped in check mode.
        type: bool
        default: false
      changed_marker:
        description: Output lines starting with this mean the command changed something.
        type: str
        default: 'CHANGED:'
      container:
        description: Container to run in; by default the service's container as the Compose file names it.
        type: str
  refuse_if:
    description:
      - Paths that, when they exist on the host, stop the task before anything is written - for example another
        version's data directory that must never be started.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Path, relative to O(project_dir) or absolute.
        type: path
        required: true
      unless_content:
        description: A file whose content (stripped) equals this is accepted.
        type: str
      msg:
        description: The error to show; C({content}) stands for the file's content (stripped).
        type: str
        required: true
  start:
    description:
      - Bring the project up. With V(false) only the directories and files are kept as given (to review or
        validate a project before it first starts); no network is created, nothing is started and O(exec) does
        not run.
      - Defaults to the variable C(selfhosted_start), else V(true).
    type: bool
  phase:
    description:
      - Which half of the work a call on the host does; set by the action plugin, which runs the module before
        and, when Compose had work to do, after M(community.docker.docker_compose_v2). Leave it alone.
    type: str
    choices: [prepare, finish]
    default: prepare
  pull:
    description: When to pull images, as in M(community.docker.docker_compose_v2).
    type: str
    choices: [always, missing, never, policy]
    default: missing
  wait_timeout:
    description:
      - Seconds to wait for the services to become healthy.
      - Defaults to the variable C(selfhosted_wait_timeout), else 180.
    type: int
  restart_policy:
    description:
      - Restart policy of services that set none.
      - Defaults to the variable C(selfhosted_restart_policy), else V(unless-stopped).
    type: str
    choices: ['no', always, unless-stopped, on-failure]
  log_max_size:
    description:
      - Size at which a service's log is rotated (C(json-file) driver), for services that configure no logging.
      - Defaults to the variable C(selfhosted_log_max_size), else V(10m).
    type: str
  log_max_file:
    description:
      - Rotated log files kept.
      - Defaults to the variable C(selfhosted_log_max_file), else 3.
    type: int
  healthcheck_interval:
    description:
      - Healthcheck interval of services that set none.
      - Defaults to the variable C(selfhosted_healthcheck_interval), else V(10s).
    type: str
  healthcheck_retries:
    description:
      - Failed healthchecks before a service is unhealthy, for services that set none.
      - Defaults to the variable C(selfhosted_healthcheck_retries), else 12.
    type: int
requirements:
  - Docker Engine with the Compose v2 plugin, and the Python library docker, on the host (as for M(community.docker.docker_compose_v2)).
  - PyYAML on the controller.
notes:
  - The project's containers, images and the actions Compose took are returned as M(community.docker.docker_compose_v2)
    returns them.
seealso:
  - module: community.docker.docker_compose_v2
'''

EXAMPLES = r'''
- name: Converge the Redis project of a role
  soulmatting.selfhosted.compose_project:
    project_dir: /opt/soulmatting/redis
    compose: "{{ lookup('ansible.builtin.template', 'compose.yaml.j2') }}"
    directories:
      - {path: data, mode: "0700", owner: 999, group: 999}
      - {path: config, mode: "0750", group: 999}
    secret_files:
      - path: config/redis.conf
        content: "{{ lookup('ansible.builtin.template', 'redis.conf.j2') }}"
        owner: 999
        restart: [redis]

- name: Run a database check inside the running service on every run
  soulmatting.selfhosted.compose_project:
    project_dir: /opt/soulmatting/postgres
    compose: "{{ lookup('ansible.builtin.template', 'compose.yaml.j2') }}"
    exec:
      - service: db
        user: postgres
        argv: [/bin/sh, /etc/soulmatting/ensure-roles.sh]
        env:
          SM_NEW_PASSWORD: "{{ postgres_password }}"
        check_mode: true
'''

RETURN = r'''
files:
  description: Paths (as given) of the directories and files that changed, with what changed.
  returned: always
  type: dict
  sample: {compose.yaml: [content], data: [created]}
networks:
  description: Networks that were created.
  returned: always
  type: list
  elements: str
  sample: [soulmatting_data]
actions:
  description: What Compose did to the project's containers, as M(community.docker.docker_compose_v2) returns it.
  returned: always
  type: list
  elements: dict
restarted:
  description: Services restarted because a file they read changed.
  returned: always
  type: list
  elements: str
exec:
  description: The commands run inside services, whether each changed something, and its output lines.
  returned: always
  type: list
  elements: dict
  sample: [{service: db, changed: false, stdout_lines: []}]
containers:
  description: The project's containers, as M(community.docker.docker_compose_v2) returns them.
  returned: when the project was brought up
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.soulmatting.selfhosted.plugins.module_utils._project_files import (
    CHANGED_FILES_ENV,
    CHECK_MODE_ENV,
    COMPOSE_FILE,
    ProjectError,
    argument_spec,
    check_refusals,
    digest,
    ensure_directory,
    ensure_file,
    ensure_network,
    pending_files,
    project_running,
    read_state,
    record_state,
    resolve,
    run_in_container,
)


def converge_files(module, result):
    """Directories, files and networks; returns the digest of every file's content, by path as given."""
    params = module.params
    project_dir = params['project_dir']
    diffs = []
    digests = {}
    compose = dict(path=COMPOSE_FILE, content=params['compose'], mode='0640', owner=None, group=None)
    for item in params['directories']:
        changes = ensure_directory(resolve(project_dir, item['path']), item['mode'], item['owner'], item['group'], module.check_mode)
        if changes:
            result['files'][item['path']] = changes
    for secret, items in ((False, [compose] + params['files']), (True, params['secret_files'])):
        for item in items:
            changes, diff = ensure_file(resolve(project_dir, item['path']), item['content'], item['mode'],
                                        item['owner'], item['group'], secret, module.check_mode)
            digests[item['path']] = digest(item['content'])
            if changes:
                result['files'][item['path']] = changes
            if diff:
                diffs.append(diff)
    # Check mode on a host whose engine is still to be installed: every network would be created.
    no_engine = module.check_mode and module.get_bin_path('docker') is None
    for network in params['networks'] if params['start'] is not False else []:
        if no_engine or ensure_network(module.run_command, network['name'], network['internal'], module.check_mode):
            result['networks'].append(network['name'])
    if module._diff and diffs:
        result['diff'] = diffs
    return digests


def run_commands(module, result, pending):
    for item in module.params['exec']:
        if module.check_mode and not item['check_mode']:
            result['exec'].append(dict(service=item['service'], skipped=True, changed=False, stdout_lines=[]))
            continue
        env = dict(item['env'])
        env[CHANGED_FILES_ENV] = ' '.join(pending)
        if module.check_mode:
            env[CHECK_MODE_ENV] = '1'
        changed, lines = run_in_container(module.run_command, item['container'] or item['service'], item['argv'],
                                          item['user'], env, item['changed_marker'])
        result['exec'].append(dict(service=item['service'], changed=changed, stdout_lines=lines))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    project_dir = params['project_dir']
    result = dict(changed=False, files={}, networks=[], exec=[], actions=[], restarted=[], converged=False, pending=[])
    try:
        check_refusals(project_dir, params['refuse_if'])
        digests = converge_files(module, result)
        state = read_state(project_dir)
        pending = pending_files(state, digests)
        result['pending'] = pending
        if params['phase'] == 'finish':
            # Compose brought the project up with these files: remember them.
            if not module.check_mode:
                record_state(module.run_command, project_dir, digests)
            run_commands(module, result, pending)
        elif (params['start'] is not False and not result['files'] and not result['networks'] and not pending
              and project_running(module.run_command, state)):
            result['converged'] = True
            run_commands(module, result, pending)
    except (ProjectError, OSError) as exc:
        module.fail_json(msg=to_native(exc), **result)
    result['changed'] = bool(result['files'] or result['networks'] or any(item['changed'] for item in result['exec']))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
