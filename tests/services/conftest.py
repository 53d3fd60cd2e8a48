"""Fixtures for service-layer tests: a team with an owner, a viewer, and an outsider."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model

from panel.images.models import Image, ImageTag
from panel.nodes.services import local_node
from panel.teams.models import Membership, Team
from workers.runtime.images import ImageStore


@pytest.fixture
def enqueued(monkeypatch):
    """Jobs are recorded instead of being sent to Celery."""
    sent = []
    monkeypatch.setattr("panel.jobs.services._send_task", sent.append)
    return sent


@pytest.fixture
def team(db):
    return Team.objects.create(name="blue")


def _user(name, team=None, role=None):
    user = get_user_model().objects.create_user(name, password="x")
    if team:
        Membership.objects.create(user=user, team=team, role=role)
    return user


@pytest.fixture
def owner(team):
    return _user("owner", team, Membership.Role.OWNER)


@pytest.fixture
def viewer(team):
    return _user("viewer", team, Membership.Role.VIEWER)


@pytest.fixture
def outsider(db):
    other = Team.objects.create(name="red")
    return _user("outsider", other, Membership.Role.OPERATOR)


@pytest.fixture
def image(db):
    image = Image.objects.create(
        id="a" * 64,
        node=local_node(),
        config={"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}, "rootfs": {"diff_ids": []}},
        layers=[],
        created=datetime(2020, 1, 1, tzinfo=UTC),
    )
    ImageTag.objects.create(image=image, repository="busybox", tag="1.29")
    return image


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def store(tmp_path, monkeypatch, settings):
    """The node's image store in a fresh state root, for the image jobs' handlers run in
    the test (no container of these tests runs, no progress is pushed)."""
    settings.STATE_ROOT = tmp_path / "state"
    store = ImageStore(str(settings.STATE_ROOT))
    monkeypatch.setattr("workers.node.image_store", lambda: store)
    monkeypatch.setattr("panel.events.publish.job_progress", lambda job_id, event: None)

    class NoRuntime:
        def list_ids(self):
            return []

    monkeypatch.setattr("workers.node.runtime", NoRuntime)
    return store
