"""The build pages with Django's test client: who sees the form, a typed Dockerfile, an
uploaded context and a git URL starting the reserved `image.build` job, form errors (never a
500), the build's page for each outcome, and Cancel."""

import io
import os
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from panel.events.consumers import RESERVED_JOBS_KEY
from panel.images import spool
from panel.jobs.models import Job

pytestmark = pytest.mark.django_db

DOCKERFILE = "FROM busybox:1.29\nRUN echo hi > /hi\n"


def _reserved(client) -> str:
    content = client.get("/images/build/").content.decode()
    return content.split('name="job_id" value="')[1].split('"')[0]


def _spooled() -> list[str]:
    return sorted(os.listdir(spool.spool_dir()))


def _context_tar(compression="gz") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=f"w:{compression}") as archive:
        for name, data in (("Dockerfile.web", DOCKERFILE.encode()), ("app.txt", b"app\n")):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return out.getvalue()


def _build(client, **fields):
    data = {"source": "dockerfile", "dockerfile_text": DOCKERFILE, "dockerfile": "Dockerfile",
            **fields}
    return client.post("/images/build/", data)


@pytest.mark.parametrize("url", ["/images/build/",
                                 "/images/builds/00000000-0000-0000-0000-000000000001/"])
def test_build_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_operators_get_the_form_and_viewers_a_notice(login, alice, viewer):
    content = login(alice).get("/images/build/").content.decode()
    assert "data-build-form" in content and "build.js" in content
    for name in ("context", "dockerfile_text", "remote", "tags", "dockerfile", "build_args",
                 "target", "no_cache", "pull", "labels"):
        assert f'name="{name}"' in content, name
    assert 'href="/images/build/"' in login(alice).get("/images/").content.decode()
    content = login(viewer).get("/images/build/").content.decode()
    assert "You may not build images" in content and "data-build-form" not in content
    assert "build-cancel" not in content
    assert 'href="/images/build/"' not in login(viewer).get("/images/").content.decode()


def test_a_typed_dockerfile_starts_the_reserved_build(login, alice, blue, enqueued):
    client = login(alice)
    job_id = _reserved(client)
    response = _build(client, job_id=job_id, tags="web:1.0, web:latest",
                      build_args="VERSION=1.2\n\nGREETING=a=b", labels="tier=web",
                      target="final", no_cache="on", pull="on")
    assert response.status_code == 302 and response["Location"] == f"/images/builds/{job_id}/"
    job = Job.objects.get(pk=job_id)
    payload = job.payload
    assert (job.kind, job.team) == ("image.build", blue)
    assert payload["tags"] == ["web:1.0", "web:latest"]
    assert payload["build_args"] == {"VERSION": "1.2", "GREETING": "a=b"}
    assert payload["labels"] == {"tier": "web"}
    assert (payload["target"], payload["no_cache"], payload["pull"]) == ("final", True, True)
    assert payload["dockerfile"] == "Dockerfile" and payload["remote"] == ""
    with tarfile.open(payload["context_path"]) as archive:  # the Dockerfile is the context
        assert archive.getnames() == ["Dockerfile"]
        assert archive.extractfile("Dockerfile").read().decode() == DOCKERFILE
    assert job_id not in client.session[RESERVED_JOBS_KEY]  # used up
    page = client.get(f"/images/builds/{job_id}/").content.decode()
    assert f'data-job="{job_id}"' in page and 'data-state="queued"' in page
    assert "Build web:1.0, web:latest" in page and 'id="build-cancel"' in page


def test_an_uploaded_context_is_spooled_for_the_job(login, alice, enqueued):
    upload = SimpleUploadedFile("ctx.tar.gz", _context_tar(), content_type="application/gzip")
    response = login(alice).post("/images/build/", {
        "source": "upload", "context": upload, "dockerfile": "Dockerfile.web", "tags": "app"})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.payload["dockerfile"] == "Dockerfile.web" and job.payload["tags"] == ["app:latest"]
    with tarfile.open(job.payload["context_path"]) as archive:
        assert sorted(archive.getnames()) == ["Dockerfile.web", "app.txt"]


def test_a_git_url_is_built_remotely(login, alice, enqueued):
    response = login(alice).post("/images/build/", {
        "source": "git", "remote": "github.com/example/app#main:docker", "dockerfile": ""})
    assert response.status_code == 302
    job = Job.objects.get()
    assert job.payload["remote"] == "https://github.com/example/app#main:docker"
    assert job.payload["context_path"] == "" and job.payload["dockerfile"] == "Dockerfile"
    assert _spooled() == []


@pytest.mark.parametrize(("fields", "error"), [
    ({"dockerfile_text": "  "}, "Write the Dockerfile to build."),
    ({"source": "upload"}, "Choose the context archive to upload."),
    ({"source": "git"}, "Give the repository&#x27;s URL."),
    ({"source": "git", "remote": "file:///etc"}, "unsupported remote context"),
    ({"source": "git", "remote": "git@github.com:x/y.git"}, "unsupported remote context"),
    ({"tags": "Bad Tag!"}, "invalid reference format"),
    ({"tags": "app@sha256:" + "a" * 64}, "refusing to create a tag with a digest"),
    ({"build_args": "NOVALUE"}, "Build arguments must be KEY=VALUE lines"),
    ({"labels": "=x"}, "Labels must be KEY=VALUE lines"),
    ({"source": "elsewhere"}, "Select a valid choice"),
])
def test_bad_input_is_a_form_error(login, alice, enqueued, fields, error):
    response = _build(login(alice), **fields)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Job.objects.exists() and _spooled() == []


def test_an_upload_that_is_no_tar_is_refused_and_not_kept(login, alice, enqueued):
    upload = SimpleUploadedFile("Dockerfile", DOCKERFILE.encode())
    response = login(alice).post("/images/build/", {"source": "upload", "context": upload})
    assert response.status_code == 200
    assert "Not a tar archive" in response.content.decode()
    assert not Job.objects.exists() and _spooled() == []


def test_a_viewer_posting_is_refused_and_nothing_is_spooled(login, viewer, enqueued):
    response = _build(login(viewer))
    assert response.status_code == 403
    assert "You may not operate in team blue" in response.content.decode()
    assert not Job.objects.exists() and _spooled() == []


def _finished(client, state, **fields) -> Job:
    _build(client, tags="web:1.0")
    job = Job.objects.get()
    Job.objects.filter(pk=job.pk).update(state=state, **fields)
    return Job.objects.get(pk=job.pk)


def test_a_built_image_is_linked(login, alice, enqueued, image):
    client = login(alice)
    job = _finished(client, Job.State.SUCCEEDED,
                    result={"id": image.docker_id, "tags": ["web:1.0"]})
    page = client.get(f"/images/builds/{job.id}/").content.decode()
    assert 'data-state="succeeded"' in page and f"/images/{image.id}/" in page
    assert image.id[:12] in page and "web:1.0" in page
    assert 'id="build-cancel"' not in page  # no Cancel for a finished build
    assert "Recent builds" in client.get("/images/build/").content.decode()


def test_a_failed_run_shows_its_command_and_exit_code(login, alice, enqueued):
    client = login(alice)
    job = _finished(client, Job.State.FAILED, result={"status": 400, "code": 3},
                    error="The command '/bin/sh -c echo no && exit 3' returned a non-zero code: 3")
    outcome = client.get(f"/images/builds/{job.id}/").content.decode()
    assert 'data-state="failed"' in outcome and "data-failed-step" in outcome
    assert '<strong class="exit-code">3</strong>' in outcome
    assert "<code class=\"failed-command\">/bin/sh -c echo no &amp;&amp; exit 3</code>" in outcome


def test_other_failures_and_cancellation_say_what_happened(login, alice, enqueued):
    client = login(alice)
    job = _finished(client, Job.State.FAILED, error="pull access denied for nope",
                    result={"status": 404})
    assert "pull access denied for nope" in client.get(
        f"/images/builds/{job.id}/").content.decode()
    Job.objects.filter(pk=job.pk).update(cancel_requested=True, error="cancelled")
    page = client.get(f"/images/builds/{job.id}/").content.decode()
    assert "Build cancelled." in page and "data-cancelled" in page
    assert 'id="build-state">cancelled</span>' in page


def test_cancel_asks_the_worker_to_stop_the_build(login, alice, viewer, enqueued):
    client = login(alice)
    _build(client)
    job = Job.objects.get()
    page = login(viewer).get(f"/images/builds/{job.id}/").content.decode()
    assert f'data-job="{job.id}"' in page and 'id="build-cancel"' not in page  # read-only
    response = login(viewer).post(f"/images/builds/{job.id}/cancel/")
    assert response.status_code == 403 and "may not operate" in response.content.decode()
    assert not Job.objects.get(pk=job.pk).cancel_requested
    response = login(alice).post(f"/images/builds/{job.id}/cancel/")
    assert response.status_code == 302 and response["Location"] == f"/images/builds/{job.id}/"
    assert Job.objects.get(pk=job.pk).cancel_requested
    assert login(alice).get(f"/images/builds/{job.id}/cancel/").status_code == 405


def test_builds_of_other_teams_and_other_jobs_are_404(login, alice, mallory, enqueued):
    client = login(alice)
    _build(client)
    build = Job.objects.get()
    client.post("/images/pull/", {"reference": "busybox"})
    pull = Job.objects.get(kind="image.pull")
    assert login(mallory).get(f"/images/builds/{build.id}/").status_code == 404
    assert login(mallory).post(f"/images/builds/{build.id}/cancel/").status_code == 404
    assert login(alice).get(f"/images/builds/{pull.id}/").status_code == 404
