"""Each role's argument_specs must describe exactly its defaults, with the same default values."""

import glob
import os

import pytest
import yaml

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ROLES = sorted(os.path.basename(os.path.dirname(os.path.dirname(p)))
               for p in glob.glob(os.path.join(REPO_ROOT, "roles", "*", "meta", "argument_specs.yml")))
PYTHON_TYPES = {"str": str, "int": int, "bool": bool, "list": list, "dict": dict, "path": str, "float": (float, int)}


def load(role, *parts):
    with open(os.path.join(REPO_ROOT, "roles", role, *parts)) as handle:
        return yaml.safe_load(handle) or {}


def test_every_role_has_specs():
    assert set(ROLES) == {os.path.basename(p) for p in glob.glob(os.path.join(REPO_ROOT, "roles", "*"))}


@pytest.mark.parametrize("role", ROLES)
def test_specs_list_the_same_variables_as_defaults(role):
    defaults = load(role, "defaults", "main.yml")
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_match_role_defaults(role):
    defaults = load(role, "defaults", "main.yml")
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    mismatched = {name: (defaults[name], spec.get("default"))
                  for name, spec in options.items()
                  if name in defaults and spec.get("default") != defaults[name]}
    assert not mismatched


@pytest.mark.parametrize("role", ROLES)
def test_literal_defaults_have_the_declared_type(role):
    defaults = load(role, "defaults", "main.yml")
    options = load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    wrong = {}
    for name, spec in options.items():
        value = defaults.get(name)
        if isinstance(value, str) and "{{" in value:
            continue  # templated: checked when the role validates its arguments
        expected = PYTHON_TYPES[spec.get("type", "str")]
        if value is not None and not isinstance(value, expected):
            wrong[name] = (spec.get("type"), type(value).__name__)
    assert not wrong


@pytest.mark.parametrize("role", ROLES)
def test_variables_carry_the_role_prefix(role):
    defaults = load(role, "defaults", "main.yml")
    assert [name for name in defaults if not name.startswith(role + "_")] == []
