"""The host side of compose_project: files, directories, refusals, the record of the last good run."""

import json
import os
import stat

import pytest

from ansible_collections.soulmatting.selfhosted.plugins.module_utils import _project_files as pf

ME = (os.getuid(), os.getgid())


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_file_created_then_unchanged_then_changed(tmp_path):
    path = str(tmp_path / "app.conf")
    changes, diff = pf.ensure_file(path, "a = 1\n", "0640")
    assert changes == ["created"] and diff["after"] == "a = 1\n" and mode(path) == 0o640
    assert pf.ensure_file(path, "a = 1\n", "0640") == ([], None)
    changes, diff = pf.ensure_file(path, "a = 2\n", "0600")
    assert changes == ["content", "mode 0640 -> 0600"]
    assert (diff["before"], diff["after"]) == ("a = 1\n", "a = 2\n")
    assert open(path).read() == "a = 2\n" and mode(path) == 0o600


def test_check_mode_reports_and_writes_nothing(tmp_path):
    path = str(tmp_path / "app.conf")
    assert pf.ensure_file(path, "x\n", "0644", check_mode=True)[0] == ["created"]
    assert not os.path.exists(path)
    assert pf.ensure_directory(str(tmp_path / "data"), "0700", check_mode=True) == ["created"]
    assert not os.path.exists(tmp_path / "data")


def test_a_secret_file_never_shows_its_content(tmp_path):
    path = str(tmp_path / "secrets.env")
    dummy, diff = pf.ensure_file(path, "PASSWORD=first-secret\n", "0600", secret=True)
    dummy, diff = pf.ensure_file(path, "PASSWORD=second-secret\n", "0600", secret=True)
    text = json.dumps(diff)
    assert "first-secret" not in text and "second-secret" not in text
    assert diff["before"] != diff["after"]


def test_only_the_attributes_are_fixed_when_the_content_matches(tmp_path):
    path = tmp_path / "app.conf"
    path.write_text("same\n")
    os.chmod(path, 0o666)
    inode = os.stat(path).st_ino
    assert pf.ensure_file(str(path), "same\n", "0644", ME[0], ME[1]) == (["mode 0666 -> 0644"], None)
    assert os.stat(path).st_ino == inode and mode(path) == 0o644


def test_a_directory_where_a_file_belongs_is_an_error(tmp_path):
    (tmp_path / "compose.yaml").mkdir()
    with pytest.raises(pf.ProjectError, match="not a regular file"):
        pf.ensure_file(str(tmp_path / "compose.yaml"), "x", "0644")


def test_refusals(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "PG_VERSION").write_text("14\n")
    refusal = {"path": "data/PG_VERSION", "unless_content": "15", "msg": "holds PostgreSQL {content}"}
    with pytest.raises(pf.ProjectError, match="holds PostgreSQL 14"):
        pf.check_refusals(str(tmp_path), [refusal])
    pf.check_refusals(str(tmp_path), [dict(refusal, unless_content="14")])
    pf.check_refusals(str(tmp_path), [{"path": "data/other", "unless_content": None, "msg": "never"}])


def test_pending_files_are_those_not_run_yet():
    state = {"files": {"compose.yaml": "a", "redis.conf": "b"}}
    assert pf.pending_files(state, {"compose.yaml": "a", "redis.conf": "c", "new.conf": "d"}) == ["new.conf", "redis.conf"]
    assert pf.pending_files({}, {"compose.yaml": "a"}) == ["compose.yaml"]


class FakeDocker:
    """Answers the docker CLI calls project_running makes, from a description of the containers."""

    def __init__(self, rows, images):
        self.rows, self.images, self.calls = rows, images, []

    def __call__(self, argv, environ_update=None):
        self.calls.append(argv)
        if argv[:2] == ["docker", "ps"]:
            return 0, "".join("id%d\n" % n for n in range(len(self.rows))), ""
        if argv[:2] == ["docker", "inspect"]:
            return 0, "".join(row + "\n" for row in self.rows), ""
        if argv[:3] == ["docker", "image", "inspect"]:
            return 0, "".join(self.images[ref] + "\n" for ref in argv[5:]), ""
        raise AssertionError(argv)


STATE = {"files": {}, "project": "p", "services": {"db": "pg:15", "cache": "redis:7"}}
IMAGES = {"pg:15": "sha256:aaa", "redis:7": "sha256:bbb"}
HEALTHY = ["db|running|healthy|sha256:aaa|pg:15", "cache|running|healthy|sha256:bbb|redis:7"]


def test_a_project_running_as_recorded():
    docker = FakeDocker(HEALTHY, IMAGES)
    assert pf.project_running(docker, STATE) is True
    assert len(docker.calls) == 3


@pytest.mark.parametrize("rows", [
    HEALTHY[:1],                                                   # a container missing
    HEALTHY + ["old|running|healthy|sha256:ccc|x:1"],              # an orphan
    ["db|running|starting|sha256:aaa|pg:15", HEALTHY[1]],          # not healthy yet
    ["db|exited||sha256:aaa|pg:15", HEALTHY[1]],                   # stopped
    ["db|running|healthy|sha256:old|pg:15", HEALTHY[1]],           # the tag now names another image
    [HEALTHY[0], HEALTHY[0]],                                      # one service twice
])
def test_anything_else_needs_compose(rows):
    assert pf.project_running(FakeDocker(rows, IMAGES), STATE) is False


def test_no_record_means_compose_decides():
    assert pf.project_running(FakeDocker(HEALTHY, IMAGES), {}) is False


def test_commands_get_their_environment_off_the_command_line():
    seen = {}

    def run(argv, environ_update=None):
        seen.update(argv=argv, env=environ_update)
        return 0, "CHANGED: did one thing\nnothing else\n", ""

    changed, lines = pf.run_in_container(run, "c1", ["/bin/sh", "x.sh"], user="postgres", env={"SM_PASSWORD": "secret-value"})
    assert changed and lines == ["CHANGED: did one thing", "nothing else"]
    assert "secret-value" not in " ".join(seen["argv"])
    assert seen["argv"][:6] == ["docker", "exec", "--user", "postgres", "--env", "SM_PASSWORD"]
    assert seen["env"] == {"SM_PASSWORD": "secret-value"}


def test_a_failing_command_says_where():
    with pytest.raises(pf.ProjectError, match=r"x\.sh in c1 failed \(exit 3\): boom"):
        pf.run_in_container(lambda argv, environ_update=None: (3, "", "boom"), "c1", ["x.sh"])


def test_env_files_take_values_literally():
    content = pf.env_file({"B": "x$y z", "A": '{"k": "v"}', "EMPTY": None})
    assert content.splitlines()[1:] == ["A='{\"k\": \"v\"}'", "B='x$y z'", "EMPTY=''"]
    with pytest.raises(pf.ProjectError, match="B holds a quote"):
        pf.env_file({"B": "it's"})
