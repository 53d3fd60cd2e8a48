"""Fixtures of the panel's view tests: two teams, their members, an image, and a logged-in client."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model

from panel.images.models import Image, ImageTag
from panel.nodes.services import local_node
from panel.teams.models import Membership, Team


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def state_root(settings, tmp_path):
    settings.STATE_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def enqueued(monkeypatch):
    """Jobs are recorded instead of being sent to Celery."""
    sent = []
    monkeypatch.setattr("panel.jobs.services._send_task", sent.append)
    return sent


def make_user(name, team=None, role=Membership.Role.OPERATOR, **extra):
    user = get_user_model().objects.create_user(name, password="pw-" + name, **extra)
    if team:
        Membership.objects.create(user=user, team=team, role=role)
    return user


@pytest.fixture
def blue(db):
    return Team.objects.create(name="blue")


@pytest.fixture
def red(db):
    return Team.objects.create(name="red")


@pytest.fixture
def alice(blue):
    return make_user("alice", blue)


@pytest.fixture
def viewer(blue):
    return make_user("vera", blue, Membership.Role.VIEWER)


@pytest.fixture
def mallory(red):
    return make_user("mallory", red)


@pytest.fixture
def image(db):
    image = Image.objects.create(
        id="b" * 64,
        node=local_node(),
        config={"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}, "rootfs": {"diff_ids": []}},
        layers=[],
        size=1_234_567,
        created=datetime(2020, 1, 1, tzinfo=UTC),
    )
    ImageTag.objects.create(image=image, repository="busybox", tag="1.29")
    return image


@pytest.fixture
def login(client):
    def login_as(user):
        client.force_login(user)
        return client

    return login_as
