"""--userns and the node's userns-remap in the create service: the maps in the runtime spec,
--userns host as an opt-out for site admins and the teams whose policy allows the node's
namespaces (403 for the others), and what a user namespace rules out (400, with dockerd's
words)."""

import pytest
from django.contrib.auth import get_user_model

from panel.containers import services, specs, userns
from panel.containers.policy import Forbidden
from panel.errors import InvalidParameter

MAP = [[0, 100000, 65536]]


def create(user, team, **host_config):
    return services.create(acting_user=user, team=team, config={"Image": "busybox:1.29"},
                           host_config=host_config)


@pytest.fixture
def admin(team):
    from panel.teams.models import Membership

    user = get_user_model().objects.create_superuser("root", password="x")
    Membership.objects.create(user=user, team=team, role=Membership.Role.OWNER)
    return user


@pytest.fixture
def remap(settings):
    settings.USERNS_REMAP = "default"


def test_remapped_containers_get_the_maps(remap, owner, admin, team, image, enqueued):
    fields = userns.runtime_fields(create(owner, team))
    assert fields == {"userns_mode": "", "uid_map": MAP, "gid_map": MAP}
    c = create(admin, team, UsernsMode="host")
    assert userns.runtime_fields(c) == {"userns_mode": "host", "uid_map": [], "gid_map": []}
    spec = specs.runtime_spec(c, ["/nonexistent"])
    assert (spec.userns_mode, spec.uid_map) == ("host", [])


def test_userns_host_follows_the_team_policy(remap, owner, team, image, enqueued):
    with pytest.raises(Forbidden, match="--userns host: the policy of team blue does not "
                                        "allow sharing the node's namespaces") as info:
        create(owner, team, UsernsMode="host")
    assert info.value.status == 403
    team.allow_host_namespaces = True
    team.save()
    assert userns.runtime_fields(create(owner, team, UsernsMode="host"))["uid_map"] == []


def test_without_remap_userns_host_changes_nothing(settings, owner, team, image, enqueued):
    settings.USERNS_REMAP = ""
    c = create(owner, team, UsernsMode="host")
    assert userns.runtime_fields(c)["uid_map"] == []
    assert userns.runtime_fields(create(owner, team))["uid_map"] == []


@pytest.mark.parametrize("host_config, words", [
    ({"UsernsMode": "private"}, "invalid USER mode: private"),
    ({"Privileged": True}, "privileged mode is incompatible with user namespaces"),
    ({"PidMode": "host"}, "cannot share the host PID namespace when user namespaces"),
    ({"IpcMode": "host"}, "cannot share the host IPC namespace when user namespaces"),
])
def test_what_a_user_namespace_rules_out(remap, admin, team, image, host_config, words):
    with pytest.raises(InvalidParameter, match=words):
        create(admin, team, **host_config)
