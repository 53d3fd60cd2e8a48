"""Team policy and quotas through the Docker API in process: the same 403 and the same message
as the service layer gives the panel, and the refusal in the audit log (interface api)."""

import json

import pytest
from apicall import call
from django.contrib.auth import get_user_model

from panel.audit.models import AuditEvent
from panel.containers import services
from panel.containers.policy import Forbidden
from panel.teams.models import Membership, Team

from .test_views import create
from .test_views import image as image  # noqa: F401 - the fixture
from .test_views import in_memory_channel_layer as in_memory_channel_layer  # noqa: F401

MiB = 1024 ** 2


@pytest.fixture
def team(db):
    return Team.objects.create(name="blue")


@pytest.fixture
def operator(team):
    user = get_user_model().objects.create_user("op", password="x")
    Membership.objects.create(user=user, team=team, role=Membership.Role.OPERATOR)
    return user


def service_message(user, team, host_config) -> str:
    with pytest.raises(Forbidden) as info:
        services.create(acting_user=user, team=team, config={"Image": "busybox:1.29"},
                        host_config=dict(host_config))
    return info.value.message


@pytest.mark.parametrize("host_config", [
    {"Privileged": True},
    {"NetworkMode": "host"},
    {"Binds": ["/etc:/host-etc:ro"]},
    {"PortBindings": {"80/tcp": [{"HostPort": "80"}]}},
])
def test_policy_refusal_is_the_services(operator, team, image, host_config):  # noqa: F811
    status, _headers, body = create(operator, {"Image": "busybox:1.29",
                                               "HostConfig": host_config})
    assert status == 403
    assert body == {"message": service_message(operator, team, host_config)}
    assert "the policy of team blue" in body["message"]
    row = AuditEvent.objects.get(action="policy.denied", source="api")
    assert (row.actor, row.team, row.outcome) == (operator, team, "denied")
    assert row.params["route"] == "POST /containers/create"


def test_quota_refusals_at_create_and_update(operator, team, image):  # noqa: F811
    team.max_memory = 256 * MiB
    team.save()
    status, _h, body = create(operator, {"Image": "busybox:1.29"})
    assert status == 403 and body == {"message": service_message(operator, team, {})}
    assert body["message"].startswith("team blue has a memory quota")
    status, _h, body = create(operator, {"Image": "busybox:1.29",
                                         "HostConfig": {"Memory": 128 * MiB}}, name="box")
    assert status == 201, body
    status, _h, body = call("POST", "/containers/box/update", user=operator,
                            body=json.dumps({"Memory": 512 * MiB,
                                             "MemorySwap": 1024 * MiB}).encode())
    assert status == 403
    assert body == {"message": "memory quota of team blue exceeded: 128 MiB used, 384 MiB "
                               "more asked, quota 256 MiB"}
    rows = AuditEvent.objects.filter(action="quota.exceeded").order_by("seq")
    assert [r.params["route"] for r in rows] == ["POST /containers/create",
                                                 "POST /containers/<str:ref>/update"]
