# -*- coding: utf-8 -*-
# Copyright (c) SoulMatting maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Files, directories, networks and in-container commands of a Compose project, on the host.

Private to this collection (leading underscore): no compatibility promise to other collections.
The compose_project action plugin calls its module with these; each function reports what it
changed (or would change in check mode) and never returns the content of a secret file.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import grp
import hashlib
import json
import os
import pwd
import stat
import tempfile

# What a diff shows of a secret file: that it changed, never what it holds.
SECRET_BEFORE = '(secret content hidden)\n'
SECRET_AFTER = '(secret content hidden, changed)\n'
COMPOSE_FILE = 'compose.yaml'
# What the project's files held when Compose last brought it up successfully: {path: sha256}.
# Root-only; it holds digests of the secret files, never their content.
STATE_FILE = '.soulmatting-state.json'
# Every command the module runs inside a container gets the paths of the files this run changed.
CHANGED_FILES_ENV = 'SOULMATTING_CHANGED_FILES'
CHECK_MODE_ENV = 'SOULMATTING_CHECK_MODE'


def _file_spec(secret):
    return dict(
        path=dict(type='path', required=True),
        content=dict(type='str', required=True, no_log=secret),
        mode=dict(type='raw', default='0600' if secret else '0644'),
        owner=dict(type='raw'),
        group=dict(type='raw'),
        restart=dict(type='list', elements='str', default=[]),
    )


def argument_spec():
    """The options of soulmatting.selfhosted.compose_project (documented in the module)."""
    return dict(
        project_dir=dict(type='path', required=True),
        compose=dict(type='str', required=True),
        directories=dict(type='list', elements='dict', default=[], options=dict(
            path=dict(type='path', required=True),
            mode=dict(type='raw', default='0750'),
            owner=dict(type='raw'),
            group=dict(type='raw'),
        )),
        files=dict(type='list', elements='dict', default=[], options=_file_spec(secret=False)),
        secret_files=dict(type='list', elements='dict', default=[], no_log=False, options=_file_spec(secret=True)),
        secret_env=dict(type='dict', default={}, no_log=True),
        service_overrides=dict(type='dict', default={}),
        networks=dict(type='list', elements='dict', default=[], options=dict(
            name=dict(type='str', required=True),
            internal=dict(type='bool', default=False),
        )),
        exec=dict(type='list', elements='dict', default=[], options=dict(
            service=dict(type='str', required=True),
            argv=dict(type='list', elements='str', required=True),
            user=dict(type='str'),
            env=dict(type='dict', default={}, no_log=True),
            check_mode=dict(type='bool', default=False),
            changed_marker=dict(type='str', default='CHANGED:'),
            container=dict(type='str'),
        )),
        pull=dict(type='str', choices=['always', 'missing', 'never', 'policy'], default='missing'),
        wait_timeout=dict(type='int'),
        restart_policy=dict(type='str', choices=['no', 'always', 'unless-stopped', 'on-failure']),
        log_max_size=dict(type='str'),
        log_max_file=dict(type='int'),
        healthcheck_interval=dict(type='str'),
        healthcheck_retries=dict(type='int'),
        refuse_if=dict(type='list', elements='dict', default=[], options=dict(
            path=dict(type='path', required=True),
            unless_content=dict(type='str'),
            msg=dict(type='str', required=True),
        )),
        start=dict(type='bool'),
        phase=dict(type='str', choices=['prepare', 'finish'], default='prepare'),
    )


class ProjectError(Exception):
    """A failure phrased as one sentence for the user."""


def resolve(project_dir, path):
    """An item's path: relative paths live under the project directory."""
    return os.path.normpath(path if os.path.isabs(path) else os.path.join(project_dir, path))


def _uid(owner):
    if owner is None:
        return None
    if isinstance(owner, int) or str(owner).isdigit():
        return int(owner)
    try:
        return pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise ProjectError('The user %s does not exist on the host.' % owner)


def _gid(group):
    if group is None:
        return None
    if isinstance(group, int) or str(group).isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise ProjectError('The group %s does not exist on the host.' % group)


def _mode(mode):
    if isinstance(mode, int):
        return mode
    try:
        return int(str(mode), 8)
    except ValueError:
        raise ProjectError('%r is not an octal file mode such as "0640".' % (mode,))


def _attribute_changes(st, mode, uid, gid):
    changes = []
    if stat.S_IMODE(st.st_mode) != mode:
        changes.append('mode %04o -> %04o' % (stat.S_IMODE(st.st_mode), mode))
    if uid is not None and st.st_uid != uid:
        changes.append('owner %d -> %d' % (st.st_uid, uid))
    if gid is not None and st.st_gid != gid:
        changes.append('group %d -> %d' % (st.st_gid, gid))
    return changes


def _apply_attributes(path, mode, uid, gid):
    os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    os.chmod(path, mode)


def ensure_directory(path, mode, owner=None, group=None, check_mode=False):
    """Creates PATH (and missing parents, 0755) or fixes its mode and owner. Returns what changed."""
    mode, uid, gid = _mode(mode), _uid(owner), _gid(group)
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise ProjectError('%s exists and is not a directory.' % path)
    if st is None:
        if not check_mode:
            parent = os.path.dirname(path)
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o755)
            os.mkdir(path, 0o700)
            _apply_attributes(path, mode, uid, gid)
        return ['created']
    changes = _attribute_changes(st, mode, uid, gid)
    if changes and not check_mode:
        _apply_attributes(path, mode, uid, gid)
    return changes


def _read_bytes(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def ensure_file(path, content, mode, owner=None, group=None, secret=False, check_mode=False):
    """Writes CONTENT to PATH atomically when it differs; fixes mode and owner.

    Returns (changes, diff): changes lists what changed; diff is None or a before/after dict in
    which a secret file's content is never shown. The new content never exists under a wider
    mode than the one asked for.
    """
    mode, uid, gid = _mode(mode), _uid(owner), _gid(group)
    data = content.encode('utf-8')
    try:
        st = os.lstat(path)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ProjectError('%s exists and is not a regular file.' % path)
    before = _read_bytes(path) if st is not None else None
    changes = []
    if st is None:
        changes.append('created')
    elif before != data:
        changes.append('content')
    changes.extend(_attribute_changes(st, mode, uid, gid) if st is not None else [])
    diff = None
    if 'created' in changes or 'content' in changes:
        if secret:
            diff = dict(before='' if before is None else SECRET_BEFORE, after=SECRET_AFTER)
        else:
            diff = dict(before='' if before is None else before.decode('utf-8', 'replace'), after=content)
        diff.update(before_header=path, after_header=path)
    if not changes or check_mode:
        return changes, diff
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise ProjectError('The directory of %s does not exist; list it in directories.' % path)
    if 'created' in changes or 'content' in changes:
        fd, tmp_path = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
        try:
            os.fchmod(fd, mode & 0o700)
            with os.fdopen(fd, 'wb') as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            _apply_attributes(tmp_path, mode, uid, gid)
            os.rename(tmp_path, path)
        finally:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
    else:
        _apply_attributes(path, mode, uid, gid)
    return changes, diff


def ensure_network(run_command, name, internal=False, check_mode=False):
    """Creates the Docker network NAME when it is missing. Returns True when it (would have) changed."""
    rc, dummy, dummy = run_command(['docker', 'network', 'inspect', '--format', '{{.Name}}', name])
    if rc == 0:
        return False
    if check_mode:
        return True
    argv = ['docker', 'network', 'create', '--label', 'org.soulmatting.managed=true']
    if internal:
        argv.append('--internal')
    rc, dummy, err = run_command(argv + [name])
    if rc != 0:
        # Another project may have created it meanwhile.
        rc2, dummy, dummy = run_command(['docker', 'network', 'inspect', '--format', '{{.Name}}', name])
        if rc2 != 0:
            raise ProjectError('Cannot create the Docker network %s: %s' % (name, err.strip()))
    return True


def run_in_container(run_command, container, argv, user=None, env=None, marker='CHANGED:'):
    """Runs ARGV in the running CONTAINER with `docker exec`.

    The environment reaches the command through the docker client's own environment (`-e NAME`
    without a value), so no value appears on a command line that other users of the host can read.
    Returns (changed, lines): changed when a line of its output starts with MARKER.
    """
    env = env or {}
    command = ['docker', 'exec']
    if user:
        command.extend(['--user', str(user)])
    for name in sorted(env):
        command.extend(['--env', name])
    command.append(container)
    command.extend(argv)
    rc, out, err = run_command(command, environ_update=dict((k, str(v)) for k, v in env.items()))
    lines = out.splitlines()
    if rc != 0:
        raise ProjectError('The command %s in %s failed (exit %d): %s' % (' '.join(argv), container, rc, (err.strip() or out.strip())[-2000:]))
    return any(line.startswith(marker) for line in lines), [line for line in lines if line.strip()]


def check_refusals(project_dir, refusals):
    """Fails, before anything is written, when a path the role refuses to work over exists.

    With unless_content, a file whose stripped content equals it is fine. The message may name the
    content found as {content}.
    """
    for item in refusals:
        path = resolve(project_dir, item['path'])
        if not os.path.lexists(path):
            continue
        content = ''
        if os.path.isfile(path):
            content = (_read_bytes(path) or b'').decode('utf-8', 'replace').strip()
            if item['unless_content'] is not None and content == item['unless_content']:
                continue
        raise ProjectError(item['msg'].replace('{content}', content))


def digest(content):
    return hashlib.sha256(content.encode('utf-8')).hexdigest()


def read_state(project_dir):
    """What the project last ran with: {'files': {path: sha256}, 'project': name, 'services': {service: image}}."""
    data = _read_bytes(os.path.join(project_dir, STATE_FILE))
    try:
        state = json.loads(data.decode('utf-8')) if data else {}
    except ValueError:
        state = {}
    return state if isinstance(state, dict) and isinstance(state.get('files'), dict) else {}


def record_state(run_command, project_dir, digests):
    """Remembers the files, and the project and images Compose resolved from them, after a successful up."""
    rc, out, err = run_command(['docker', 'compose', '--project-directory', project_dir, 'config', '--format', 'json'])
    if rc != 0:
        raise ProjectError('Compose cannot read the project in %s: %s' % (project_dir, err.strip()))
    config = json.loads(out)
    services = dict((name, service.get('image', '')) for name, service in (config.get('services') or {}).items())
    state = dict(files=digests, project=config.get('name', ''), services=services)
    ensure_file(os.path.join(project_dir, STATE_FILE), json.dumps(state, indent=1, sort_keys=True) + '\n', '0600', secret=True)


def pending_files(state, digests):
    """Paths whose content differs from what the project last ran with (changed now, or in a run that failed later)."""
    recorded = state.get('files') or {}
    return sorted(path for path, value in digests.items() if recorded.get(path) != value)


def _inspect_lines(run_command, argv):
    rc, out, dummy = run_command(argv)
    return None if rc != 0 else [line for line in out.splitlines() if line.strip()]


CONTAINER_FORMAT = ('{{index .Config.Labels "com.docker.compose.service"}}|{{.State.Status}}|'
                    '{{if .State.Health}}{{.State.Health.Status}}{{end}}|{{.Image}}|{{.Config.Image}}')


def project_running(run_command, state):
    """Whether every service the project last ran with runs healthy, on the image its reference names now,
    with no container too many or missing. Read-only, and cheap: three docker CLI calls.

    Only meaningful when no file changed since (the caller checks): the state then describes the project.
    """
    services = state.get('services') or {}
    if not services or not state.get('project'):
        return False
    ids = _inspect_lines(run_command, ['docker', 'ps', '--all', '--quiet', '--filter',
                                       'label=com.docker.compose.project=%s' % state['project']])
    if not ids:
        return False
    rows = _inspect_lines(run_command, ['docker', 'inspect', '--format', CONTAINER_FORMAT] + ids)
    if rows is None or len(rows) != len(services):
        return False
    refs = sorted(set(services.values()))
    image_ids = _inspect_lines(run_command, ['docker', 'image', 'inspect', '--format', '{{.Id}}'] + refs)
    if image_ids is None or len(image_ids) != len(refs):
        return False
    current = dict(zip(refs, image_ids))
    seen = set()
    for row in rows:
        service, status, health, image_id, image_ref = (row.split('|') + [''] * 5)[:5]
        if service not in services or service in seen or status != 'running' or health not in ('healthy', ''):
            return False
        if image_ref != services[service] or current.get(image_ref) != image_id:
            return False
        seen.add(service)
    return seen == set(services)


def env_file(variables):
    """The content of a Compose env_file holding VARIABLES, each value single-quoted (taken literally)."""
    lines = []
    for name in sorted(variables):
        value = '' if variables[name] is None else str(variables[name])
        if "'" in value or '\n' in value:
            raise ProjectError('The value of %s holds a quote or a line break, which an env file cannot carry literally.' % name)
        lines.append("%s='%s'" % (name, value))
    return '# Managed by Ansible (soulmatting.selfhosted.compose_project): secret, never shown.\n' + '\n'.join(lines) + '\n'
