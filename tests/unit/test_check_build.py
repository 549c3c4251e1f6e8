"""The build check finds what must not ship: it has to be able to fail."""

import importlib.util
import io
import os
import tarfile

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "check_build.py")
spec = importlib.util.spec_from_file_location("check_build", SCRIPT)
check_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_build)


def tarball(tmp_path, files):
    path = tmp_path / "c.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, content in files.items():
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return str(path)


CLEAN = dict((name + ("/x" if "." not in name else ""), "ok") for name in check_build.EXPECTED_TOP)


def test_a_clean_collection_passes(tmp_path):
    assert check_build.inspect(tarball(tmp_path, CLEAN), ["s3cr3t-value-0001"]) == []


def test_a_store_a_value_a_cache_and_a_stray_entry_are_each_found(tmp_path):
    files = dict(CLEAN)
    files["inventories/local/.secrets/redis_password"] = "whatever"
    files["roles/x/templates/app.conf"] = "password=s3cr3t-value-0001"
    files["plugins/__pycache__/m.pyc"] = "cache"
    files["notes.txt"] = "stray"
    problems = check_build.inspect(tarball(tmp_path, files), ["s3cr3t-value-0001"])
    text = "\n".join(problems)
    assert "extra ['notes.txt']" in text
    assert "inventories/local/.secrets/redis_password: a dot-directory" in text
    assert "roles/x/templates/app.conf: holds a generated secret value" in text
    assert "plugins/__pycache__/m.pyc: a dot-directory, secret store or cache" in text
