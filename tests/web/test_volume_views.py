"""The volumes page with Django's test client: team isolation, create, remove, prune, and the
Mounts card of the container page."""

import pytest

from panel.containers import services as containers
from panel.containers.models import Container
from panel.volumes import services as volumes
from panel.volumes.models import Volume

from .conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def blue_data(alice, blue, enqueued):
    return volumes.create(acting_user=alice, name="blue-data", team=blue,
                          labels={"example": "cassandra"})


@pytest.fixture
def red_data(mallory, red, enqueued):
    return volumes.create(acting_user=mallory, name="red-data", team=red)


@pytest.mark.parametrize("url", ["/volumes/", "/volumes/blue-data/"])
def test_volume_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_list_shows_only_the_teams_volumes(login, alice, blue_data, red_data):
    content = login(alice).get("/volumes/").content.decode()
    assert 'data-volume="blue-data"' in content
    assert "example=cassandra" in content
    assert volumes.mountpoint(blue_data) in content
    assert "red-data" not in content
    assert 'href="/volumes/"' in content and 'class="active"' in content  # the nav link


def test_another_teams_volume_is_404(login, alice, red_data):
    client = login(alice)
    assert client.get("/volumes/red-data/").status_code == 404
    assert client.post("/volumes/red-data/remove/").status_code == 404
    assert client.get("/volumes/no-such-volume/").status_code == 404
    assert Volume.objects.filter(name="red-data").exists()


def test_detail_page(login, alice, blue_data):
    content = login(alice).get("/volumes/blue-data/").content.decode()
    assert "<h1" in content and "blue-data" in content
    assert "example=cassandra" in content and "Not used by any container" in content


def test_create_from_the_form(login, alice, blue, enqueued):
    response = login(alice).post("/volumes/", {
        "name": "cass-shared", "driver": "local", "labels": "example=cassandra\nflag\n",
        "options": "type=tmpfs\ndevice=tmpfs\no=size=64m\n"})
    assert response.status_code == 302 and response["Location"] == "/volumes/"
    volume = Volume.objects.get(name="cass-shared")
    assert (volume.team, volume.driver) == (blue, "local")
    assert volume.labels == {"example": "cassandra", "flag": ""}
    assert volume.options == {"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}


def test_create_without_a_name_is_anonymous(login, alice, enqueued):
    assert login(alice).post("/volumes/", {"name": "", "driver": "local"}).status_code == 302
    assert len(Volume.objects.get().name) == 64


@pytest.mark.parametrize("data, field, words", [
    ({"name": "bad name!"}, "name", "invalid characters"),
    ({"name": "ok", "labels": "\nk=v\n=v"}, "labels", "Line 3"),
    ({"name": "ok", "options": "type"}, "options", "key=value"),
    ({"name": "ok", "options": "type=nfs\ndevice=srv:/x"}, "options", "not supported"),
])
def test_form_errors_create_nothing(login, alice, enqueued, data, field, words):
    response = login(alice).post("/volumes/", {"driver": "local", **data})
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors[field])
    assert not Volume.objects.exists()


def test_another_teams_name_is_the_services_conflict_on_the_form(login, alice, red_data):
    response = login(alice).post("/volumes/", {"name": "red-data", "driver": "local"})
    assert response.status_code == 200
    assert "already exists" in " ".join(response.context["form"].errors["name"])
    assert Volume.objects.get(name="red-data").team.name == "red"


def test_an_existing_name_of_ones_own_is_that_volume(login, alice, blue_data):
    response = login(alice).post("/volumes/", {"name": "blue-data", "driver": "local"},
                                 follow=True)
    assert "Volume blue-data already exists" in response.content.decode()
    assert Volume.objects.filter(name="blue-data").count() == 1


def test_host_directory_volume_is_refused_to_non_admins(login, alice, enqueued):
    response = login(alice).post("/volumes/", {
        "name": "host-dir", "driver": "local", "options": "type=none\no=bind\ndevice=/etc"})
    assert response.status_code == 200
    message = " ".join(response.context["form"].errors["options"])
    assert "/etc" in message and "the policy of team blue does not allow" in message
    assert not Volume.objects.exists()


def test_remove_and_prune(login, alice, blue, blue_data, enqueued):
    client = login(alice)
    response = client.post("/volumes/blue-data/remove/", follow=True)
    assert "Volume blue-data removed" in response.content.decode()
    assert not Volume.objects.filter(name="blue-data").exists()
    volumes.create(acting_user=alice, name="left-over", team=blue)
    response = client.post("/volumes/", {"prune": "1"}, follow=True)
    assert "Removed 1 unused volume: left-over" in response.content.decode()
    assert not Volume.objects.exists()
    response = client.post("/volumes/", {"prune": "1"}, follow=True)
    assert "No unused volumes to remove" in response.content.decode()


def test_a_viewer_sees_but_cannot_remove(login, blue, blue_data):
    viewer = make_user("vic", blue, role="viewer")
    client = login(viewer)
    content = client.get("/volumes/").content.decode()
    assert 'data-volume="blue-data"' in content and "/volumes/blue-data/remove/" not in content
    response = client.post("/volumes/blue-data/remove/")
    assert response.status_code == 403 and "may not operate" in response.content.decode()
    assert Volume.objects.filter(name="blue-data").exists()


@pytest.fixture
def user_of_blue_data(alice, blue, image, blue_data):
    return containers.create(acting_user=alice, team=blue, name="db",
                             config={"Image": "busybox:1.29"},
                             host_config={"Binds": ["blue-data:/data"],
                                          "Tmpfs": {"/scratch": "size=8m"}})


def test_in_use_volume_shows_the_conflict_and_stays(login, alice, user_of_blue_data):
    client = login(alice)
    content = client.get("/volumes/").content.decode()
    assert f'href="/containers/{user_of_blue_data.id}/">db</a>' in content
    response = client.post("/volumes/blue-data/remove/", follow=True)
    content = response.content.decode()
    assert "message-error" in content and "in use" in content
    assert Volume.objects.filter(name="blue-data").exists()


def test_container_page_lists_its_mounts(login, alice, image, user_of_blue_data):
    content = login(alice).get(f"/containers/{user_of_blue_data.id}/").content.decode()
    assert 'id="mounts"' in content
    assert 'href="/volumes/blue-data/"' in content and "/data" in content
    assert 'data-type="tmpfs"' in content and "/scratch" in content
    plain = Container.objects.create(id="e" * 64, name="plain", team=user_of_blue_data.team,
                                     node=image.node, image=image, image_ref="busybox:1.29",
                                     spec={"Config": {}})
    assert 'id="mounts"' not in login(alice).get(f"/containers/{plain.id}/").content.decode()


def test_container_page_shows_a_host_bind(login, blue, image, enqueued, tmp_path):
    admin = make_user("root", blue, is_superuser=True)
    container = containers.create(acting_user=admin, team=blue, name="binder",
                                  config={"Image": "busybox:1.29"},
                                  host_config={"Binds": [f"{tmp_path}:/conf:ro"]})
    content = login(admin).get(f"/containers/{container.id}/").content.decode()
    row = content[content.index('data-type="bind"'):]
    row = row[:row.index("</tr>")]
    assert str(tmp_path) in row and "/conf" in row
    assert "<strong>ro</strong>" in row and "rprivate" in row
