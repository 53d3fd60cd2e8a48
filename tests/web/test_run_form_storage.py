"""The run form's Storage section: -v, --mount, --tmpfs and --volumes-from lines into Docker's
request, per-line errors, and the services' refusals on the right field."""

import pytest

from panel.containers.models import Container
from panel.web.run_sections.storage import parse_mount

from .conftest import make_user

pytestmark = pytest.mark.django_db

SECTION_OPEN = '<details class="advanced" id="storage-settings" open>'


def test_form_shows_the_storage_section_closed(login, alice, image):
    content = login(alice).get("/containers/new/").content.decode()
    for field in ("volumes", "mounts", "tmpfs", "volumes_from"):
        assert f'id="id_{field}"' in content, field
    assert '<details class="advanced" id="storage-settings">' in content
    assert "type=tmpfs,dst=/cache,tmpfs-size=64m" in content  # an example in the placeholder


def test_every_kind_of_mount_reaches_the_request(login, alice, blue, image, enqueued):
    admin = make_user("root", blue, is_superuser=True)
    client = login(admin)
    source = client.post("/containers/new/", {"image": "busybox:1.29", "name": "db"})
    assert source.status_code == 302
    response = client.post("/containers/new/", {
        "image": "busybox:1.29", "name": "app",
        "volumes": "cass-shared:/var/lib/cassandra/data\n# a comment\n/srv:/host-srv:ro\n/cache\n"
                   "/cache2:ro\n",
        "mounts": "type=bind,src=/srv,dst=/etc/app,readonly,bind-propagation=rslave\n"
                  "type=volume,source=logs,target=/logs,volume-nocopy,volume-label=tier=web\n"
                  "type=tmpfs,dst=/tmp,tmpfs-size=64m,tmpfs-mode=1770\n",
        "tmpfs": "/run\n/scratch:rw,size=8m\n",
        "volumes_from": "db:ro",
    })
    assert response.status_code == 302, response.context["form"].errors
    spec = Container.objects.get(name="app").spec
    host_config = spec["HostConfig"]
    assert host_config["Binds"] == ["cass-shared:/var/lib/cassandra/data", "/srv:/host-srv:ro",
                                    "/cache", "/cache2:ro"]
    assert host_config["Mounts"] == [
        {"Type": "bind", "Source": "/srv", "Target": "/etc/app", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave"}},
        {"Type": "volume", "Source": "logs", "Target": "/logs",
         "VolumeOptions": {"NoCopy": True, "Labels": {"tier": "web"}}},
        {"Type": "tmpfs", "Target": "/tmp",
         "TmpfsOptions": {"SizeBytes": 64 * 1024 * 1024, "Mode": 0o1770}},
    ]
    assert host_config["Tmpfs"] == {"/run": "", "/scratch": "rw,size=8m"}
    assert host_config["VolumesFrom"] == ["db:ro"]


@pytest.mark.parametrize("data, field, words", [
    ({"volumes": "data"}, "volumes", "Line 1 (data): invalid volume specification"),
    ({"volumes": "a:/x\n\nb:/y:rx"}, "volumes", "Line 3 (b:/y:rx): invalid mode: rx"),
    ({"mounts": "type=bind,src=/srv,dst=/x,bogus=1"}, "mounts", "unexpected key 'bogus'"),
    ({"mounts": "\n\ntype=tmpfs,src=x"}, "mounts", "Line 3 (type=tmpfs,src=x): target is"),
    ({"mounts": "type=volume,dst=/x,tmpfs-size=1m"}, "mounts", "cannot mix 'tmpfs-*'"),
    ({"mounts": "type=tmpfs,dst=/x,tmpfs-size=lots"}, "mounts", "invalid value for tmpfs-size"),
    ({"mounts": "type=tmpfs,dst=/x,readonly=maybe"}, "mounts", "invalid value for readonly"),
    ({"mounts": "type=tmpfs,dst=/x,shared"}, "mounts", "must be a key=value pair"),
])
def test_line_errors_create_nothing(login, alice, image, enqueued, data, field, words):
    response = login(alice).post("/containers/new/", {"image": "busybox:1.29", **data})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert words in " ".join(errors[field]), errors
    assert SECTION_OPEN in response.content.decode()
    assert not Container.objects.exists() and enqueued == []


@pytest.mark.parametrize("data, field", [
    ({"volumes": "data:relative"}, "volumes"),
    ({"mounts": "type=bind,src=relative,dst=/x"}, "mounts"),
    ({"tmpfs": "relative"}, "tmpfs"),
    ({"volumes_from": "no-such-container"}, "volumes_from"),
])
def test_the_services_errors_land_on_their_field(login, alice, image, enqueued, data, field):
    response = login(alice).post("/containers/new/", {"image": "busybox:1.29", **data})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == [field], errors
    assert not Container.objects.exists() and enqueued == []


@pytest.mark.parametrize("data, field", [
    ({"volumes": "/etc:/host-etc:ro"}, "volumes"),
    ({"mounts": "type=bind,src=/etc,dst=/host-etc"}, "mounts"),
])
def test_host_bind_mounts_are_refused_to_non_admins(login, alice, image, enqueued, data, field):
    response = login(alice).post("/containers/new/", {"image": "busybox:1.29", **data})
    assert response.status_code == 200
    message = " ".join(response.context["form"].errors[field])
    assert "/etc" in message and "policy of team blue" in message
    assert not Container.objects.exists() and enqueued == []


def test_volumes_and_tmpfs_are_not_host_binds(login, alice, image, enqueued):
    response = login(alice).post("/containers/new/", {
        "image": "busybox:1.29", "name": "plain", "volumes": "/data:ro\nnamed:/named",
        "mounts": "type=volume,dst=/v\ntype=tmpfs,dst=/t", "tmpfs": "/run"})
    assert response.status_code == 302, response.context["form"].errors
    assert Container.objects.filter(name="plain").exists()


def test_parse_mount_and_sizes():
    assert parse_mount("dst=/data") == {"Type": "volume", "Target": "/data"}
    assert parse_mount('type=bind,"src=/a,b",dst=/c,ro=false') == {
        "Type": "bind", "Source": "/a,b", "Target": "/c", "ReadOnly": False}
    assert parse_mount("type=tmpfs,dst=/t,tmpfs-size=1.5g") == {
        "Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 3 << 29}}
