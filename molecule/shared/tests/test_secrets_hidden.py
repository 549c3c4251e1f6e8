"""No secret value appears in anything Ansible printed at -vvv during the scenario.

Every Ansible run of the scenario from prepare to side_effect logs at -vvv to one file
(.config/molecule/config.yml). The secrets are every value in the scenario's secret store (generated
by the roles) and every value the scenario supplies in its inventory under a secret's name; a
rotation's old and new values are both supplied, so both are looked for.
"""

import json
import os
import re

import pytest

EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
LOG = os.path.join(EPHEMERAL, "ansible-vvv.log")
STORE = os.path.join(EPHEMERAL, "secrets")
# Inventory variables whose values are secrets (supplied ones, and a rotation's second value).
SECRET_NAME = re.compile(r"(password|passphrase|secret|token|_key)$|_key_|rotated")
SHORTEST = 12


def _strings(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def store_values():
    values = {}
    if not os.path.isdir(STORE):
        return values
    for name in os.listdir(STORE):
        path = os.path.join(STORE, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        with open(path) as handle:
            text = handle.read().strip()
        try:
            data = json.loads(text)
        except ValueError:
            data = text
        for index, value in enumerate(_strings(data)):
            values["store:%s:%d" % (name, index)] = value
    return values


def supplied_values(host):
    variables = host.ansible.get_variables()
    return dict(("inventory:%s" % name, value) for name, value in variables.items()
                if isinstance(value, str) and SECRET_NAME.search(name) and "{{" not in value)


def leaks(log_text, secrets):
    """Names of the secrets whose value occurs in the log (values shorter than SHORTEST are not looked for)."""
    return sorted(name for name, value in secrets.items() if len(value) >= SHORTEST and value in log_text)


def test_the_scan_finds_a_planted_value():
    # The scan must be able to fail: a value in the text is found, a value not in it is not.
    assert leaks("x PGPASSWORD=abcdefghijklmnop y", {"planted": "abcdefghijklmnop"}) == ["planted"]
    assert leaks("nothing here", {"planted": "abcdefghijklmnop"}) == []


def test_no_secret_in_the_vvv_output(host):
    if not os.path.isfile(LOG):
        pytest.fail("no -vvv log at %s: the scenario's runs were not logged" % LOG)
    with open(LOG, errors="replace") as handle:
        text = handle.read()
    assert len(text) > 10000, "the -vvv log is suspiciously short"
    secrets = store_values()
    secrets.update(supplied_values(host))
    assert secrets, "no secret to look for: the scan would prove nothing"
    found = leaks(text, secrets)
    # Where each leak is, with the value itself blanked out of the report.
    where = ["%s: %s" % (name, line.replace(secrets[name], "<SECRET>")[:300])
             for name in found for line in text.splitlines() if secrets[name] in line][:20]
    assert found == [], "\n".join(where)
