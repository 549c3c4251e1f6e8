"""Where a consumer reaches a provider: by container name from the same host, by address from another."""

import os

import pytest
import yaml

from ansible_collections.soulmatting.selfhosted.plugins.plugin_utils import _contract as contract

ENDPOINT = {"container": "soulmatting-postgres", "container_port": 5432, "network": "soulmatting_data",
            "published": True, "address": "10.0.0.5", "port": 5432, "scheme": "postgresql"}


def test_same_inventory_host_uses_the_container_on_the_shared_network():
    answer = contract.reach("postgres", ENDPOINT, "db1", "db1", {}, {})
    assert (answer["host"], answer["port"], answer["network"], answer["same_host"]) == ("soulmatting-postgres", 5432, "soulmatting_data", True)
    assert contract.url(answer) == "postgresql://soulmatting-postgres:5432"


def test_another_host_uses_the_published_address_and_port():
    answer = contract.reach("postgres", dict(ENDPOINT, port="15432"), "db1", "app1", {}, {})
    assert (answer["host"], answer["port"], answer["network"], answer["same_host"]) == ("10.0.0.5", 15432, None, False)


def test_an_unpublished_port_is_an_error_for_another_host():
    with pytest.raises(contract.ContractError, match="does not publish its port"):
        contract.reach("redis", dict(ENDPOINT, published=False), "db1", "app1", {}, {})
    assert contract.reach("redis", dict(ENDPOINT, published="False"), "db1", "db1", {}, {})["same_host"]


def test_loopback_is_reachable_only_from_the_same_machine():
    loopback = dict(ENDPOINT, address="127.0.0.1")
    with pytest.raises(contract.ContractError, match="listens on 127.0.0.1 only"):
        contract.reach("postgres", loopback, "db1", "app1", {"ansible_host": "10.0.0.5"}, {"ansible_host": "10.0.0.6"})
    local = {"ansible_connection": "local"}
    assert contract.reach("postgres", loopback, "db1", "app1", local, local)["host"] == "127.0.0.1"


def test_a_wildcard_address_means_the_provider_host():
    answer = contract.reach("postgres", dict(ENDPOINT, address="0.0.0.0"), "db1", "app1", {"ansible_host": "192.0.2.7"}, {})
    assert answer["host"] == "192.0.2.7"


def test_ipv6_hosts_are_bracketed_in_urls():
    answer = contract.reach("object_store", dict(ENDPOINT, address="fd00::5", scheme="http"), "s1", "app1", {}, {})
    assert contract.url(answer) == "http://[fd00::5]:5432"


def test_missing_group_names_the_group_and_the_variable():
    with pytest.raises(contract.ContractError, match=r"'databases' \(selfhosted_groups.postgres\) is empty or missing"):
        contract.provider_host("postgres", {"all": ["app1"]}, {"postgres": "databases"})
    assert contract.provider_host("postgres", {"postgres": ["db1", "db2"]}, {}) == "db1"


def test_unknown_part_is_refused():
    with pytest.raises(contract.ContractError, match="known parts"):
        contract.provider_files("postgress")


@pytest.mark.parametrize("part", sorted(contract.PROVIDERS))
def test_every_provider_role_describes_its_endpoint(part):
    files = contract.provider_files(part)
    with open(files["vars"]) as handle:
        endpoint = yaml.safe_load(handle)[files["variable"]]
    assert set(contract.REQUIRED_KEYS) <= set(endpoint)
    assert endpoint["secrets"], "an endpoint names the secrets a consumer needs"
    assert all(os.path.isfile(path) for path in files["defaults"])
