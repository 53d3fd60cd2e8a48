"""The run form's Security section without a browser: parsing and the request it makes."""

import pytest

from panel.containers.models import Container
from panel.web.run_sections.security import parse_device


@pytest.mark.parametrize("line, want", [
    ("/dev/x", ("/dev/x", "/dev/x", "rwm")),
    ("/dev/x:r", ("/dev/x", "/dev/x", "r")),
    ("/dev/x:/dev/y", ("/dev/x", "/dev/y", "rwm")),
    ("/dev/x:/dev/y:rw", ("/dev/x", "/dev/y", "rw")),
])
def test_device_syntax_of_the_cli(line, want):
    d = parse_device(line)
    assert (d["PathOnHost"], d["PathInContainer"], d["CgroupPermissions"]) == want


def test_security_fields_make_dockers_request(login, alice, image, enqueued):
    response = login(alice).post("/containers/new/", {
        "image": "busybox:1.29", "name": "hardened", "cap_drop": "net_raw, mknod",
        "cap_add": "chown", "read_only": "on", "no_new_privileges": "on"})
    assert response.status_code == 302
    host_config = Container.objects.get(name="hardened").spec["HostConfig"]
    assert host_config == {"CapAdd": ["chown"], "CapDrop": ["net_raw", "mknod"],
                           "ReadonlyRootfs": True, "SecurityOpt": ["no-new-privileges"]}


@pytest.mark.parametrize("data, field, message", [
    ({"cap_add": "NOPE"}, "cap_add", 'unknown capability: "CAP_NOPE"'),
    ({"devices": "dev/x"}, "devices", "not an absolute path"),
    ({"devices": "/dev/x:/dev/y:rwx"}, "devices", "invalid device mode"),
    ({"privileged": "on"}, "privileged", "the policy of team blue does not allow"),
    ({"cap_add": "sys_admin"}, "cap_add", "--cap-add CAP_SYS_ADMIN"),
    ({"devices": "/dev/loop0"}, "devices", "--device /dev/loop0"),
    ({"seccomp_unconfined": "on"}, "seccomp_unconfined", "seccomp=unconfined"),
])
def test_errors_land_on_their_field(login, alice, image, enqueued, data, field, message):
    response = login(alice).post("/containers/new/", {"image": "busybox:1.29", **data})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors.get(field, [])), errors
    assert '<details class="advanced" id="security-settings" open>' in response.content.decode()
    assert not Container.objects.exists()
