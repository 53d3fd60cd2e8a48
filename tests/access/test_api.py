"""The access matrix of the Docker API: every URL pattern of panel.dockerapi.urls has a rule
for each of its methods, each principal gets what its role allows (Docker's 404 wording for
what it may not see), and a refusal's audit row says where the request came from."""


import pytest
from apicall import call as api_call

from panel.audit.models import AuditEvent

from .checks import check_row, routes
from .matrix import API, API_UNLISTED

CLIENT = ("198.51.100.7", 40123)
USER_AGENT = "Docker-Client/24.0.7 (linux)"


def call(method, path, *, user, body=b"", query=""):
    """One request as the front server hands it over from a TCP client; returns (status,
    parsed body)."""
    status, _, data = api_call(method, path, user=user, body=body, query=query, client=CLIENT,
                               headers=[(b"user-agent", USER_AGENT.encode())])
    return status, data


def test_every_api_pattern_and_method_has_a_rule():
    missing = []
    for route, view in routes("panel.dockerapi.urls"):
        if route in API_UNLISTED:
            continue
        for method in getattr(view, "handlers", {}):
            if method != "HEAD" and (route, method) not in API:
                missing.append(f"{method} {route}")
    assert not missing, f"API endpoints without an access rule: {missing}"


@pytest.mark.parametrize("key", sorted(API), ids=lambda key: f"{key[1]} /{key[0]}")
def test_api_endpoint(key, world, db):
    rule = API[key]
    path = rule.path.format(w=world)
    problems = check_row(world, rule, lambda user: call(key[1], path, user=user, body=rule.body,
                                                        query=rule.query)[0])
    assert not problems, "\n".join(problems)


def test_hidden_is_docker_s_404_and_audited_with_the_request(world, db):
    outsider = world.users["outsider"]
    status, body = call("POST", "/containers/blue-box/stop", user=outsider)
    missing_status, missing_body = call("POST", "/containers/no-such-box/stop", user=outsider)
    assert (status, body) == (404, {"message": "No such container: blue-box"})
    assert (missing_status, missing_body) == (
        404, {"message": "No such container: no-such-box"})
    rows = list(AuditEvent.objects.filter(actor=outsider, outcome="denied"))
    assert len(rows) == 1  # the missing one is not a refusal
    row = rows[0]
    assert (row.action, row.team, row.object_id) == ("object.hidden", world.blue, "blue-box")
    assert (row.source, row.address, row.user_agent) == ("api", CLIENT[0], USER_AGENT)
    assert row.params["route"] == "POST /containers/<str:ref>/stop"


def test_forbidden_names_the_permission(world, db):
    viewer = world.users["viewer"]
    status, body = call("POST", "/containers/blue-box/stop", user=viewer)
    assert status == 403 and body["message"] == "You may not operate in team blue."
    row = AuditEvent.objects.get(actor=viewer, outcome="denied")
    assert (row.action, row.team, row.params["permission"]) == (
        "permission.denied", world.blue, "operate")
    assert (row.source, row.address) == ("api", CLIENT[0])
