"""HostConfig security fields: validation with Docker's words, the runtime spec's fields, and
the team policy that keeps more than Docker's default privileges to site admins unless the
team allows them (403; tests/services/test_team_policy.py has each policy field)."""

import json

import pytest
from django.contrib.auth import get_user_model

from panel.containers import services
from panel.containers.policy import Forbidden
from panel.containers.security import runtime_fields
from panel.errors import InvalidParameter


def create(user, team, **host_config):
    return services.create(acting_user=user, team=team, config={"Image": "busybox:1.29"},
                           host_config=host_config)


@pytest.fixture
def admin(team):
    from panel.teams.models import Membership

    user = get_user_model().objects.create_superuser("root", password="x")
    Membership.objects.create(user=user, team=team, role=Membership.Role.OWNER)
    return user


@pytest.mark.parametrize("host_config, words", [
    ({"Privileged": True}, "--privileged"),
    ({"CapAdd": ["NET_ADMIN"]}, "--cap-add CAP_NET_ADMIN"),
    ({"CapAdd": ["all"]}, "--cap-add ALL"),
    ({"Devices": [{"PathOnHost": "/dev/loop0", "PathInContainer": "/dev/loop0",
                   "CgroupPermissions": "rwm"}]}, "--device /dev/loop0"),
    ({"SecurityOpt": ["seccomp=unconfined"]}, "--security-opt seccomp=unconfined"),
    ({"SecurityOpt": ['seccomp={"defaultAction": "SCMP_ACT_ALLOW"}']}, "custom profile"),
])
def test_more_than_the_default_is_refused_to_members(owner, team, image, host_config, words):
    with pytest.raises(Forbidden, match="the policy of team blue does not allow") as info:
        create(owner, team, **host_config)
    assert words in info.value.message and info.value.status == 403


def test_admin_may_and_members_may_restrict(owner, admin, team, image):
    c = create(admin, team, Privileged=True, CapAdd=["SYS_ADMIN"])
    assert runtime_fields(c)["privileged"] is True
    c = create(owner, team, CapAdd=["chown"], CapDrop=["net_raw"], ReadonlyRootfs=True,
               SecurityOpt=["no-new-privileges"], Sysctls={"net.ipv4.ip_forward": "1"},
               ShmSize=1 << 20)
    assert runtime_fields(c) == {
        "privileged": False, "cap_add": ["CAP_CHOWN"], "cap_drop": ["CAP_NET_RAW"],
        "no_new_privileges": True, "seccomp_profile": "", "readonly_rootfs": True,
        "sysctls": {"net.ipv4.ip_forward": "1"}, "devices": [], "shm_size": 1 << 20}
    assert c.host_config["CapDrop"] == ["net_raw"]  # inspect shows the request as given


def test_admin_devices_and_custom_profile(admin, team, image):
    profile = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []})
    c = create(admin, team, Devices=[{"PathOnHost": "/dev/zero", "PathInContainer": "",
                                      "CgroupPermissions": ""}],
               SecurityOpt=[f"seccomp={profile}"])
    fields = runtime_fields(c)
    assert fields["devices"] == [{"path_on_host": "/dev/zero", "path_in_container": "/dev/zero",
                                  "permissions": "rwm"}]
    assert fields["seccomp_profile"] == profile


@pytest.mark.parametrize("host_config, message", [
    ({"CapAdd": ["CAP_NOPE"]}, 'invalid CapAdd: unknown capability: "CAP_NOPE"'),
    ({"CapDrop": ["bogus"]}, 'invalid CapDrop: unknown capability: "CAP_BOGUS"'),
    ({"SecurityOpt": ["nonsense"]}, 'invalid --security-opt 1: "nonsense"'),
    ({"SecurityOpt": ["foo=bar"]}, 'invalid --security-opt 2: "foo=bar"'),
    ({"SecurityOpt": ["no-new-privileges=maybe"]}, "invalid --security-opt 2"),
    ({"SecurityOpt": ["seccomp={not json"]}, "Decoding seccomp profile failed"),
    ({"Sysctls": {"kernel.hostname": "x"}}, "is not in a separate kernel namespace"),
    ({"Sysctls": {"vm.swappiness": "1"}}, "is not in a separate kernel namespace"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"Devices": [{"PathOnHost": "dev/x"}]}, "is not an absolute path"),
    ({"Devices": [{"PathOnHost": "/dev/x", "CgroupPermissions": "rwx"}]}, "invalid device mode"),
])
def test_bad_values_are_400(admin, team, image, host_config, message):
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(")):
        create(admin, team, **host_config)


def test_net_sysctls_refused_with_host_network():
    from panel.containers.security import sysctls

    with pytest.raises(InvalidParameter, match="not allowed in host network namespace"):
        sysctls({"NetworkMode": "host", "Sysctls": {"net.core.somaxconn": "1024"}})
