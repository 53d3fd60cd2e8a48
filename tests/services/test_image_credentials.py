"""Registry credentials: sealed at rest and in jobs, per team, never in an audit row; docker
login through a job against a real registry with basic auth."""

import json

import pytest
from django.core.exceptions import PermissionDenied

from panel.audit.models import AuditEvent
from panel.images import credentials
from panel.images import services as images
from panel.images.models import RegistryCredential
from panel.jobs.models import Job


def _everything_stored() -> str:
    rows = [*RegistryCredential.objects.values(), *Job.objects.values("payload", "result"),
            *AuditEvent.objects.values("before", "after", "object_repr")]
    return json.dumps(rows, default=str)


def test_seal_and_normalize():
    token = credentials.seal({"password": "hunter2"})
    assert "hunter2" not in token and credentials.unseal(token) == {"password": "hunter2"}
    with pytest.raises(ValueError, match="log in again"):
        credentials.unseal(token[:-4] + "AAAA")
    for address in ("https://index.docker.io/v1/", "docker.io", "registry-1.docker.io", ""):
        assert credentials.normalize_registry(address) == "docker.io"
    assert credentials.normalize_registry("http://LocalHost:5000/v2/") == "localhost:5000"


def test_store_replace_remove(owner, viewer, team):
    credentials.store(team, "localhost:5000", "alice", "s3cret", acting_user=owner, source="api")
    credentials.store(team, "http://localhost:5000", "alice", "n3w", acting_user=owner,
                      source="api")
    assert credentials.for_registry(team, "localhost:5000") == ("alice", "n3w")
    assert RegistryCredential.objects.count() == 1
    with pytest.raises(PermissionDenied):
        credentials.store(team, "localhost:5000", "v", "x", acting_user=viewer, source="api")
    with pytest.raises(PermissionDenied):
        credentials.remove(team, "localhost:5000", acting_user=viewer, source="api")
    credentials.remove(team, "localhost:5000", acting_user=owner, source="api")
    assert credentials.for_registry(team, "localhost:5000") is None
    assert [e.action for e in AuditEvent.objects.order_by("id")] == [
        "registry.login", "registry.login", "permission.denied", "permission.denied",
        "registry.logout"]
    stored = _everything_stored()
    assert "s3cret" not in stored and "n3w" not in stored


def test_pull_seals_the_request_or_the_teams_credentials(owner, team):
    job = images.pull(owner, "localhost:5000/app:1", team=team,
                      auth={"username": "bob", "password": "from-header"})
    assert credentials.unseal(job.payload["auth"])["password"] == "from-header"
    assert images.pull(owner, "localhost:5000/app:1", team=team).payload["auth"] == ""
    credentials.store(team, "localhost:5000", "alice", "stored-pw", acting_user=owner,
                      source="api")
    job = images.pull(owner, "localhost:5000/app:1", team=team, auth={"serveraddress": "x"})
    assert credentials.unseal(job.payload["auth"])["username"] == "alice"
    assert images.pull(owner, "busybox", team=team).payload["auth"] == ""  # another registry
    stored = _everything_stored()
    assert "from-header" not in stored and "stored-pw" not in stored


@pytest.fixture
def run_jobs_inline(monkeypatch, transactional_db, settings):
    """Jobs run in this process as soon as they are sent (on commit)."""
    from workers import tasks

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    monkeypatch.setattr("panel.jobs.services._send_task", lambda job: tasks.run_job(str(job.id)))


def test_login_checks_with_the_registry_then_stores(run_jobs_inline, basic_registry):
    from django.contrib.auth import get_user_model

    from panel.teams.models import Membership, Team

    team = Team.objects.create(name="green")
    user = get_user_model().objects.create_user("gina", password="x")
    Membership.objects.create(user=user, team=team, role=Membership.Role.ADMIN)
    with pytest.raises(images.Unauthorized) as refused:
        images.login(user, registry=basic_registry.host, username=basic_registry.username,
                     password="wrong-password", team=team)
    assert refused.value.status == 401 and "unauthorized" in refused.value.message.lower()
    assert credentials.for_registry(team, basic_registry.host) is None

    images.login(user, registry=f"http://{basic_registry.host}/", team=team,
                 username=basic_registry.username, password=basic_registry.password)
    assert credentials.for_registry(team, basic_registry.host) == (
        basic_registry.username, basic_registry.password)
    job = Job.objects.filter(kind="registry.login", state="succeeded").get()
    assert job.payload["registry"] == basic_registry.host
    stored = _everything_stored()
    assert basic_registry.password not in stored and "wrong-password" not in stored
