"""builds.build and builds.cancel: permission, validation with Docker's words, the audit
row, the job's payload (registry logins sealed), and cancellation of a queued build."""

import pytest
from django.core.exceptions import PermissionDenied

from panel.audit.models import AuditEvent
from panel.errors import InvalidParameter, NotFound
from panel.images import builds, credentials, spool
from panel.jobs.models import Job
from workers.tasks import run_job


@pytest.fixture
def context(db):
    path = spool.spool_path(".tar")
    with open(path, "wb") as f:
        f.write(b"\0" * 1024)
    yield path
    spool.discard(path)


def test_build_enqueues_a_job_with_the_options(owner, team, context, enqueued):
    job = builds.build(owner, context_path=context, tags=["app", "reg.example:5000/x/app:1"],
                       dockerfile="sub/Dockerfile.dev", build_args={"V": "1", "UNSET": None},
                       target="final", no_cache=True, pull=True, labels={"a": "b"},
                       registry_auth={"https://index.docker.io/v1/": {"username": "u",
                                                                      "password": "secret"}},
                       source="api")
    assert job.kind == "image.build" and job.team == team and job.target_repr == "app:latest"
    payload = job.payload
    assert payload["tags"] == ["app:latest", "reg.example:5000/x/app:1"]
    assert payload["build_args"] == {"V": "1"}
    assert (payload["dockerfile"], payload["target"], payload["no_cache"], payload["pull"]) == \
        ("sub/Dockerfile.dev", "final", True, True)
    assert "secret" not in str(payload)
    assert credentials.unseal(payload["auth"]) == {
        "docker.io": {"username": "u", "password": "secret", "identitytoken": ""}}
    audit = AuditEvent.objects.get(action="image.build")
    assert audit.after["build_args"] == ["V"] and "secret" not in str(audit.after)


def test_build_refuses_bad_requests(owner, viewer, context, enqueued):
    with pytest.raises(InvalidParameter, match="either a context or a remote"):
        builds.build(owner)
    with pytest.raises(InvalidParameter):
        builds.build(owner, context_path=context, tags=["UPPER/case"])
    with pytest.raises(InvalidParameter, match="unsupported remote context"):
        builds.build(owner, remote="file:///etc")
    with pytest.raises(InvalidParameter, match="unsupported remote context"):
        builds.build(owner, remote="git@github.com:x/y.git")
    with pytest.raises(InvalidParameter, match="invalid git reference"):
        builds.build(owner, remote="https://example.com/x.git#--upload-pack=evil")
    with pytest.raises(ValueError, match="not a spool file"):
        builds.build(owner, context_path="/etc/passwd")
    with pytest.raises(PermissionDenied):
        builds.build(viewer, context_path=context)
    assert not Job.objects.exists()


def test_remote_forms(owner, enqueued):
    job = builds.build(owner, remote="github.com/docker/app#v1:sub")
    assert job.payload["remote"] == "https://github.com/docker/app#v1:sub"
    assert builds.build(owner, remote="git://127.0.0.1/x.git").payload["context_path"] == ""


def test_cancel_of_a_queued_build_fails_it_before_it_runs(owner, outsider, viewer, context,
                                                           enqueued):
    job = builds.build(owner, context_path=context)
    with pytest.raises(NotFound):
        builds.cancel(outsider, job.id)
    with pytest.raises(PermissionDenied):
        builds.cancel(viewer, job.id)
    with pytest.raises(NotFound):
        builds.cancel(owner, "not-a-uuid")
    builds.cancel(owner, job.id)
    assert AuditEvent.objects.filter(action="image.build.cancel").count() == 1
    run_job(str(job.id))
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and job.error == "cancelled"
    builds.cancel(owner, job.id)  # over: nothing to do, no error
    assert AuditEvent.objects.filter(action="image.build.cancel").count() == 1
