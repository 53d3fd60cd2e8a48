"""docker pull and push through the services and the worker's handlers, against a loopback
docker-registry: the image registered with its tag and RepoDigest, Docker's last status
line, throttled progress, credentials from the team's store."""

import uuid

import pytest
from registry import file_layer

from panel.images import credentials
from panel.images import services as images
from panel.images.models import Image
from workers.image_tasks import IMAGE_HANDLERS
from workers.runtime.images import ImageStore
from workers.runtime.registry import AuthError


@pytest.fixture
def store(tmp_path, monkeypatch):
    store = ImageStore(str(tmp_path / "state"))
    monkeypatch.setattr("workers.node.image_store", lambda: store)
    return store


@pytest.fixture
def progress(monkeypatch):
    events = []
    monkeypatch.setattr("panel.events.publish.job_progress",
                        lambda job_id, event: events.append(event))
    return events


def run(job):
    return IMAGE_HANDLERS[job.kind](job)


def test_pull_registers_tag_and_digest_then_is_up_to_date(owner, team, registry, store,
                                                          progress):
    name = f"{registry.host}/svc/app-{uuid.uuid4().hex[:8]}"
    layers = [file_layer("etc/motd", b"hello\n"), file_layer("srv/data", b"x" * 300_000)]
    built = registry.push_image(f"{name}:1.0".split("/", 1)[1], layers,
                                {"config": {"Cmd": ["sh"]}})
    result = run(images.pull(owner, f"{name}:1.0", team=team))
    image = Image.objects.get(pk=built["config_digest"][7:])
    assert result["status"] == f"Status: Downloaded newer image for {name}:1.0"
    assert result["id"] == image.docker_id and result["tags"] == [f"{name}:1.0"]
    assert image.team == team and image.layers == built["diff_ids"]
    assert image.repo_digests == [f"{name}@{result['digest']}"]
    assert progress[0]["status"].startswith("Pulling from")
    assert progress[-1] == {"status": result["status"]}
    assert images.resolve(owner, f"{name}@{result['digest']}") == image

    progress.clear()
    again = run(images.pull(owner, f"{name}:1.0", team=team))
    assert again["status"] == f"Status: Image is up to date for {name}:1.0"
    by_digest = run(images.pull(owner, f"{name}@{result['digest']}", team=team))
    assert by_digest["tags"] == [] and by_digest["id"] == image.docker_id
    assert Image.objects.count() == 1


def test_push_records_the_repo_digest(owner, team, registry, store, progress):
    name = f"{registry.host}/svc/src-{uuid.uuid4().hex[:8]}"
    registry.push_image(name.split("/", 1)[1] + ":1", [file_layer("a", b"a\n")])
    run(images.pull(owner, f"{name}:1", team=team))
    target = f"{registry.host}/svc/dst-{uuid.uuid4().hex[:8]}"
    image = images.tag(owner, f"{name}:1", target, "v2")
    result = run(images.push(owner, f"{target}:v2"))
    assert result["tag"] == "v2" and result["digest"].startswith("sha256:")
    image.refresh_from_db()
    assert f"{target}@{result['digest']}" in image.repo_digests
    assert registry.skopeo_inspect(target.split("/", 1)[1] + ":v2")["Digest"] == result["digest"]
    with pytest.raises(Exception, match="An image does not exist locally with the tag"):
        images.push(owner, f"{target}:nope")


def test_pull_uses_the_teams_stored_login(owner, team, basic_registry, store, progress):
    reg = basic_registry
    name = f"{reg.host}/svc/private-{uuid.uuid4().hex[:8]}"
    reg.push_image(name.split("/", 1)[1] + ":1", [file_layer("p", b"p\n")])
    with pytest.raises(AuthError):
        run(images.pull(owner, f"{name}:1", team=team))
    credentials.store(team, reg.host, reg.username, reg.password, acting_user=owner,
                      source="api")
    assert run(images.pull(owner, f"{name}:1", team=team))["tags"] == [f"{name}:1"]


def test_progress_is_throttled_per_layer(progress):
    from workers.image_tasks import _Progress

    forward = _Progress("job")
    for layer in ("aaa", "bbb"):
        for current in range(1, 101):
            forward({"status": "Downloading", "id": layer,
                     "progressDetail": {"current": current, "total": 100}})
    forward({"status": "Download complete", "id": "aaa"})
    by_layer = [e["id"] for e in progress if e["status"] == "Downloading"]
    # The first and the complete count of each layer get out; the rest within 0.1 s do not
    # (a few more if this busy machine stalls the loop).
    assert 2 <= by_layer.count("aaa") <= 10 and 2 <= by_layer.count("bbb") <= 10
    assert progress[-1] == {"status": "Download complete", "id": "aaa"}
