"""The controller side of compose_project: the house policies merged in and enforced."""

from ansible_collections.soulmatting.selfhosted.plugins.action import compose_project as action

POLICIES = {"restart_policy": "unless-stopped", "log_max_size": "10m", "log_max_file": 3,
            "healthcheck_interval": "10s", "healthcheck_retries": 12}


def service(**extra):
    base = {"image": "x:1", "healthcheck": {"test": ["CMD", "true"]},
            "deploy": {"resources": {"limits": {"memory": "64M", "cpus": "0.5"}}}}
    base.update(extra)
    return base


def test_policies_fill_what_a_service_leaves_out():
    compose = {"services": {"app": service(), "own": service(restart="always", healthcheck={"test": ["CMD", "x"], "interval": "1s"})}}
    assert action.apply_policies(compose, POLICIES) == []
    app, own = compose["services"]["app"], compose["services"]["own"]
    assert app["restart"] == "unless-stopped"
    assert app["logging"] == {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}
    assert app["healthcheck"] == {"test": ["CMD", "true"], "interval": "10s", "timeout": "5s", "retries": 12, "start_period": "30s"}
    assert own["restart"] == "always" and own["healthcheck"]["interval"] == "1s"


def test_a_service_without_healthcheck_or_limits_is_refused():
    compose = {"services": {"bare": {"image": "x:1"}, "nolimit": service(deploy={})}}
    problems = action.apply_policies(compose, POLICIES)
    assert problems == ["bare has no healthcheck test", "bare has no memory and cpus limits (deploy.resources.limits)",
                        "nolimit has no memory and cpus limits (deploy.resources.limits)"]


def test_external_networks_and_container_names():
    compose = {"name": "proj", "services": {"a": {"container_name": "alpha"}, "b": {}},
               "networks": {"data": {"name": "stack_data", "external": True}, "own": {}, "edge": {"external": True}}}
    assert action.external_networks(compose) == ["stack_data", "edge"]
    assert action.container_names(compose) == {"a": "alpha", "b": "proj-b-1"}


def test_services_compose_acted_on():
    containers = {"db": "proj-db", "web": "proj-web-1"}
    actions = [{"what": "container", "id": "proj-db", "status": "Recreated"},
               {"what": "container", "id": "proj-web-1", "status": "Running"}]
    assert action.services_acted_on(actions, containers) == {"db"}


def test_plain_turns_tagged_values_into_yaml_safe_ones():
    class Tagged(str):
        pass

    assert action._plain({Tagged("k"): [Tagged("v"), True, 3, 1.5, None]}) == {"k": ["v", True, 3, 1.5, None]}
    plain = action._plain(Tagged("v"))
    assert plain == "v" and not isinstance(plain, Tagged)


def test_overrides_merge_into_services_and_unknown_ones_are_named():
    compose = {"services": {"app": service(environment={"A": "1", "B": "2"}, command=["run"])}}
    unknown = action.apply_overrides(compose, {"app": {"environment": {"B": "3"}, "command": ["other"]}, "ghost": {}})
    assert unknown == ["ghost"]
    app = compose["services"]["app"]
    assert app["environment"] == {"A": "1", "B": "3"} and app["command"] == ["other"]
    assert app["healthcheck"] == {"test": ["CMD", "true"]}


def test_a_null_override_removes_the_key():
    compose = {"services": {"app": service(command=["run"])}}
    action.apply_overrides(compose, {"app": {"command": None}})
    assert "command" not in compose["services"]["app"]
