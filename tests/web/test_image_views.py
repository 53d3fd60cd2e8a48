"""The images pages with Django's test client: team isolation, what each role sees, tag,
untag, remove, prune, pull and load starting their jobs, and the registry credentials page
(the password never in the page)."""

import io
import tarfile
from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from panel.containers import services as containers
from panel.events.consumers import RESERVED_JOBS_KEY
from panel.images import credentials
from panel.images.models import Image, ImageTag, RegistryCredential
from panel.jobs.models import Job
from panel.nodes.services import local_node
from panel.teams.models import Membership
from workers.runtime.images import ImageStore

from .conftest import make_user

pytestmark = pytest.mark.django_db


def _layer_tar(name: str, data: bytes) -> io.BytesIO:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        member = tarfile.TarInfo(name)
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    out.seek(0)
    return out


@pytest.fixture
def layers(state_root):
    """Two real layers in the node's store (the history's sizes come from there)."""
    store = ImageStore(str(state_root))
    return [store.add_layer_tar(_layer_tar("etc/os-release", b"ID=test\n")),
            store.add_layer_tar(_layer_tar("bin/app", b"x" * 20_000))]


def _image(hex_char, team, *tags, parent="", digests=(), layers):
    image = Image.objects.create(
        id=hex_char * 64, node=local_node(), team=team, parent=parent,
        repo_digests=list(digests),
        config={"architecture": "amd64", "os": "linux",
                "config": {"Cmd": ["/bin/app", "--serve"], "Entrypoint": ["/init"],
                           "Env": ["PATH=/bin", "MODE=prod"], "WorkingDir": "/srv",
                           "User": "app", "ExposedPorts": {"8080/tcp": {}},
                           "Volumes": {"/data": {}}, "Labels": {"tier": "web"}},
                "rootfs": {"type": "layers", "diff_ids": layers},
                "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "ADD rootfs"},
                            {"created": "2024-01-02T00:00:00Z", "created_by": "ENV MODE=prod",
                             "empty_layer": True},
                            {"created": "2024-01-03T00:00:00Z", "created_by": "COPY app /bin/"}]},
        layers=layers, size=5_000_000, created=datetime(2024, 1, 3, tzinfo=UTC))
    for ref in tags:
        repository, _, tag = ref.rpartition(":")
        ImageTag.objects.create(image=image, repository=repository, tag=tag)
    return image


@pytest.fixture
def blue_app(blue, layers):
    return _image("a", blue, "127.0.0.1:5000/app:1.0",
                  digests=["127.0.0.1:5000/app@sha256:" + "d" * 64], layers=layers)


@pytest.fixture
def red_app(red, layers):
    return _image("c", red, "red/secret:1", layers=layers)


@pytest.mark.parametrize("url", ["/images/", "/images/pull/", "/images/credentials/",
                                 "/images/" + "a" * 64 + "/"])
def test_image_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_list_shows_the_teams_images_and_who_uses_them(login, alice, blue, blue_app, red_app,
                                                       image, enqueued):
    containers.create(acting_user=alice, team=blue, name="web-1",
                      config={"Image": "127.0.0.1:5000/app:1.0"})
    content = login(alice).get("/images/").content.decode()
    row = content.split(f'data-image="{blue_app.id}"')[1].split("</tr>")[0]
    assert "127.0.0.1:5000/app:1.0" in row and blue_app.short_id in row
    assert "127.0.0.1:5000/app@sha256:" in row  # its RepoDigests
    assert ">5MB<" in row and '<td class="layers">2</td>' in row and "web-1" in row
    assert "busybox:1.29" in content  # the shared base image
    assert "red/secret" not in content and red_app.short_id not in content
    assert 'href="/images/"' in content and 'class="active"' in content


def test_dangling_filter_and_intermediate_images(login, alice, blue, blue_app, layers):
    parent = _image("e", blue, layers=layers)  # untagged, a tagged image's parent: intermediate
    _image("f", blue, "child:1", parent=parent.id, layers=layers)
    dangling = _image("9", blue, layers=layers)
    client = login(alice)
    listed = client.get("/images/").content.decode()
    assert dangling.id in listed and parent.id not in listed
    every = client.get("/images/?all=1").content.decode()
    assert parent.id in every and "intermediate" in every
    only_dangling = client.get("/images/?dangling=1").content.decode()
    assert dangling.id in only_dangling and blue_app.id not in only_dangling


def test_detail_shows_config_layers_history_and_actions(login, alice, blue_app, layers):
    content = login(alice).get(f"/images/{blue_app.id}/").content.decode()
    for text in ("/bin/app --serve", "/init", "MODE=prod", "/srv", ">app<", "8080/tcp",
                 "/data", "tier=web", "ADD rootfs", "ENV MODE=prod", "COPY app /bin/",
                 "127.0.0.1:5000/app@sha256:" + "d" * 64):
        assert text in content, text
    table = content.split('id="image-layers"')[1].split("</section>")[0]
    assert table.index(layers[0]) < table.index(layers[1])  # bottom first
    assert ">10.24kB<" in table and ">30.72kB<" in table  # the layers' tar sizes
    for action in ("/tag/", "/remove/", "/push/", "/save/"):
        assert f"/images/{blue_app.id}{action}" in content


def test_a_viewer_sees_no_actions_and_others_get_404(login, viewer, mallory, blue_app):
    content = login(viewer).get(f"/images/{blue_app.id}/").content.decode()
    assert "ADD rootfs" in content
    for action in ("/tag/", "/remove/", "/push/"):
        assert f"/images/{blue_app.id}{action}" not in content
    assert "Pull or load" not in login(viewer).get("/images/").content.decode()
    client = login(mallory)
    assert client.get(f"/images/{blue_app.id}/").status_code == 404
    assert client.post(f"/images/{blue_app.id}/remove/").status_code == 404
    assert Image.objects.filter(pk=blue_app.id).exists()


def test_a_viewer_is_refused_with_a_403(login, viewer, blue_app):
    response = login(viewer).post(f"/images/{blue_app.id}/tag/", {"target": "other:2"})
    assert response.status_code == 403
    assert "may not operate" in response.content.decode()
    assert not ImageTag.objects.filter(repository="other").exists()


def test_tag_and_untag(login, alice, blue_app, enqueued):
    client = login(alice)
    response = client.post(f"/images/{blue_app.id}/tag/", {"target": "app:stable"}, follow=True)
    assert "Tagged" in response.content.decode()
    assert ImageTag.objects.get(repository="app", tag="stable").image == blue_app
    response = client.post(f"/images/{blue_app.id}/tag/", {"target": "Bad Name"}, follow=True)
    assert "invalid reference format" in response.content.decode()
    response = client.post(f"/images/{blue_app.id}/remove/", {"tag": "app:stable"}, follow=True)
    assert "Untagged app:stable" in response.content.decode()
    assert Image.objects.filter(pk=blue_app.id).exists()  # its other tag keeps it


def test_remove_refused_then_forced(login, alice, blue, blue_app, enqueued, layers):
    containers.create(acting_user=alice, team=blue, name="user-1",
                      config={"Image": "127.0.0.1:5000/app:1.0"})
    client = login(alice)
    response = client.post(f"/images/{blue_app.id}/remove/", follow=True)
    assert response.status_code == 200 and "conflict: unable to delete" in (
        response.content.decode())
    assert Image.objects.filter(pk=blue_app.id).exists()
    dangling = _image("9", blue, layers=layers)
    response = client.post(f"/images/{dangling.id}/remove/", {"force": "on"})
    assert response.status_code == 302 and response["Location"] == "/images/"
    assert not Image.objects.filter(pk=dangling.id).exists()


def test_prune_removes_dangling_images(login, alice, blue, blue_app, enqueued, layers):
    dangling = _image("9", blue, layers=layers)
    response = login(alice).post("/images/", {"prune": "dangling"}, follow=True)
    assert "Deleted 1 image" in response.content.decode()
    assert not Image.objects.filter(pk=dangling.id).exists()
    assert Image.objects.filter(pk=blue_app.id).exists()


def _reserved(client, form="pull"):
    """The job id the pull page put in its ``form``."""
    content = client.get("/images/pull/").content.decode()
    card = content.split(f'id="{form}-card"')[1]
    return card.split('name="job_id" value="')[1].split('"')[0]


def test_pull_starts_the_reserved_job_and_its_page_follows_it(login, alice, blue, enqueued):
    client = login(alice)
    job_id = _reserved(client)
    assert job_id in client.session[RESERVED_JOBS_KEY]
    response = client.post("/images/pull/", {"reference": "127.0.0.1:5000/app:1.0",
                                             "job_id": job_id})
    assert response.status_code == 302 and response["Location"] == f"/images/jobs/{job_id}/"
    job = Job.objects.get(pk=job_id)
    assert (job.kind, job.team, job.payload["ref"]) == ("image.pull", blue,
                                                        "127.0.0.1:5000/app:1.0")
    assert job_id not in client.session[RESERVED_JOBS_KEY]  # used up
    page = client.get(f"/images/jobs/{job_id}/").content.decode()
    assert f'data-job="{job_id}"' in page and "images.js" in page
    # a job id nobody reserved is not taken: the job gets its own
    response = client.post("/images/pull/", {"reference": "busybox", "job_id": job_id})
    assert response["Location"] != f"/images/jobs/{job_id}/"


def test_pull_errors_stay_on_the_form(login, alice, viewer, enqueued):
    response = login(alice).post("/images/pull/", {"reference": "Not A Ref!"})
    assert response.status_code == 200
    assert "invalid reference format" in response.content.decode()
    response = login(viewer).post("/images/pull/", {"reference": "busybox"})
    assert response.status_code == 200 and "may not operate" in response.content.decode()
    assert not Job.objects.exists()


def test_a_job_page_is_404_to_other_teams(login, alice, mallory, enqueued):
    client = login(alice)
    client.post("/images/pull/", {"reference": "busybox"})
    job = Job.objects.get()
    assert login(mallory).get(f"/images/jobs/{job.id}/").status_code == 404


def test_finished_pull_shows_its_outcome(login, alice, blue, blue_app, enqueued):
    client = login(alice)
    client.post("/images/pull/", {"reference": "127.0.0.1:5000/app:1.0"})
    job = Job.objects.get()
    job.state = Job.State.SUCCEEDED
    job.result = {"id": blue_app.docker_id, "tags": ["127.0.0.1:5000/app:1.0"],
                  "status": "Status: Downloaded newer image for 127.0.0.1:5000/app:1.0"}
    job.save()
    outcome = client.get(f"/images/jobs/{job.id}/outcome/").content.decode()
    assert "Downloaded newer image" in outcome and f"/images/{blue_app.id}/" in outcome


def test_load_spools_the_upload_for_the_job(login, alice, blue, enqueued, state_root):
    client = login(alice)
    job_id = _reserved(client, "load")
    upload = SimpleUploadedFile("busybox.tar", b"an archive" * 1000,
                                content_type="application/x-tar")
    response = client.post("/images/load/", {"archive": upload, "job_id": job_id})
    assert response.status_code == 302 and response["Location"] == f"/images/jobs/{job_id}/"
    job = Job.objects.get(pk=job_id)
    assert job.kind == "image.load"
    with open(job.payload["path"], "rb") as spooled:
        assert spooled.read() == b"an archive" * 1000
    assert job.payload["path"].startswith(str(state_root / "spool"))


def test_load_without_a_file_is_a_form_error(login, alice, enqueued):
    response = login(alice).post("/images/load/", {})
    assert response.status_code == 200 and "This field is required" in response.content.decode()
    assert not Job.objects.exists()


def test_credentials_list_never_shows_the_password(login, alice, blue, red):
    owner = make_user("olga", blue, Membership.Role.OWNER)
    credentials.store(blue, "127.0.0.1:5000", "robot", "s3cret-pass", acting_user=owner,
                      source="panel")
    credentials.store(red, "red.example:5000", "redbot", "red-pass", acting_user=None,
                      source="panel")
    content = login(owner).get("/images/credentials/").content.decode()
    assert "127.0.0.1:5000" in content and "robot" in content
    assert "s3cret-pass" not in content
    assert RegistryCredential.objects.get(registry="127.0.0.1:5000").secret not in content
    assert "red.example" not in content
    assert "/remove/" in content
    # an operator may not manage the team's logins: no button, and a refusal when posted
    operator_page = login(alice).get("/images/credentials/").content.decode()
    assert "robot" in operator_page and "/remove/" not in operator_page
    credential = RegistryCredential.objects.get(registry="127.0.0.1:5000")
    response = login(alice).post(f"/images/credentials/{credential.pk}/remove/", follow=True)
    assert "may not manage" in response.content.decode()
    response = login(owner).post(f"/images/credentials/{credential.pk}/remove/", follow=True)
    assert "Removed the credentials of blue for 127.0.0.1:5000" in response.content.decode()
    assert not RegistryCredential.objects.filter(team=blue).exists()
    red_credential = RegistryCredential.objects.get(team=red)
    assert login(owner).post(f"/images/credentials/{red_credential.pk}/remove/").status_code \
        == 404


def test_a_refused_login_keeps_no_password_in_the_form(login, alice):
    response = login(alice).post("/images/credentials/", {
        "registry": "127.0.0.1:5000", "username": "robot", "password": "typed-secret"})
    content = response.content.decode()
    assert response.status_code == 200 and "may not manage" in content
    assert "typed-secret" not in content
    assert not RegistryCredential.objects.exists()
