"""The secret store: generated once, kept, readable by the owner only, safe against concurrent forks."""

import multiprocessing
import os
import stat
import string

import pytest

from ansible_collections.soulmatting.selfhosted.plugins.plugin_utils import _secret_store as store


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_generated_once_and_kept(tmp_path):
    directory = tmp_path / "secrets"
    first = store.get(str(directory), "postgres_password")
    assert store.get(str(directory), "postgres_password") == first
    assert len(first) == 40 and set(first) <= set(string.ascii_letters + string.digits)
    assert mode(directory) == 0o700 and mode(directory / "postgres_password") == 0o600
    assert (directory / ".gitignore").read_text().splitlines()[-1] == "*"


def test_each_secret_has_the_length_its_consumer_needs(tmp_path):
    assert len(store.get(str(tmp_path), "supabase_realtime_db_enc_key")) == 16
    assert len(store.get(str(tmp_path), "supabase_secret_key_base")) >= 64
    assert len(store.get(str(tmp_path), "supabase_jwt_secret")) >= 32
    assert set(store.get(str(tmp_path), "supabase_s3_protocol_access_key")) <= set("0123456789abcdef")


def test_unknown_name_fails_naming_the_known_ones(tmp_path):
    with pytest.raises(store.SecretStoreError, match="postgres_pasword.*postgres_password"):
        store.get(str(tmp_path), "postgres_pasword")
    assert not os.listdir(tmp_path)


def test_reads_a_store_written_by_the_password_lookup(tmp_path):
    # Stores of collection 0.1.0 came from ansible.builtin.password, which may append a salt.
    (tmp_path / "redis_password").write_text("kept-value-from-0.1.0 salt=abcdefgh\n")
    assert store.get(str(tmp_path), "redis_password") == "kept-value-from-0.1.0"


def test_an_empty_file_is_an_error_not_a_new_secret(tmp_path):
    (tmp_path / "minio_root_password").write_text("\n")
    with pytest.raises(store.SecretStoreError, match="empty"):
        store.get(str(tmp_path), "minio_root_password")


def _read(directory):
    return store.get(directory, "supabase_jwt_secret")


def test_concurrent_callers_agree(tmp_path):
    with multiprocessing.Pool(8) as pool:
        values = pool.map(_read, [str(tmp_path)] * 32)
    assert len(set(values)) == 1
    assert sorted(p for p in os.listdir(tmp_path) if not p.startswith(".")) == ["supabase_jwt_secret"]


def test_replace_puts_a_new_value_in_place(tmp_path):
    first = store.get(str(tmp_path), "postgres_password")
    assert store.replace(str(tmp_path), "postgres_password") is True
    second = store.get(str(tmp_path), "postgres_password")
    assert second != first and len(second) == 40 and mode(tmp_path / "postgres_password") == 0o600
    assert store.replace(str(tmp_path), "postgres_password", "a-given-value-of-the-vault-0001") is True
    assert store.get(str(tmp_path), "postgres_password") == "a-given-value-of-the-vault-0001"
    assert store.replace(str(tmp_path), "postgres_password", "a-given-value-of-the-vault-0001") is False


@pytest.mark.parametrize("value", ["", "two\nlines"])
def test_replace_refuses_unusable_values(tmp_path, value):
    with pytest.raises(store.SecretStoreError, match="empty or spans lines"):
        store.replace(str(tmp_path), "postgres_password", value)
