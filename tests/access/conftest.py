"""The access matrix's world: team blue owning one object of each kind, its five roles, an
outsider (an operator of team red) and a site admin.

No worker runs: a job is marked failed as it is made (`finished_at_once`), so the requests
that follow or wait for one return at once; the matrix tests who may ask, not the work.
"""

import io
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import override_settings

from panel.containers import services as containers
from panel.containers.models import Container, ExecInstance
from panel.images import credentials
from panel.images.models import Image, ImageTag, RegistryCredential
from panel.jobs.models import Job
from panel.networks import services as networks
from panel.networks.models import Network
from panel.nodes.services import local_node
from panel.teams.models import Membership, Team
from panel.volumes.models import Volume

PRINCIPALS = ("owner", "admin", "operator", "viewer", "auditor", "outsider", "site_admin")
BLUE_ROLES = ("owner", "admin", "operator", "viewer", "auditor")


@dataclass
class World:
    blue: Team
    red: Team
    users: dict
    container: Container  # blue-box: on blue-net, with a terminal
    spare: Container  # blue-spare: on the default bridge (to connect to blue-net)
    image: Image  # blue/app:1
    volume: Volume
    network: Network  # blue-net (blue-box is on it)
    empty_network: Network  # blue-lan (nothing on it: removable)
    job: Job  # an image pull of blue
    build: Job
    exec: ExecInstance
    credential: RegistryCredential
    membership: Membership  # the viewer's, for the member pages

    @property
    def blue_objects(self) -> dict:
        return {"container": self.container, "image": self.image, "volume": self.volume,
                "network": self.network, "job": self.job, "build": self.build,
                "exec": self.exec, "credential": self.credential}


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def state_root(settings, tmp_path):
    from workers import node

    settings.STATE_ROOT = tmp_path
    node.image_store.cache_clear()
    yield tmp_path
    node.image_store.cache_clear()


@pytest.fixture(autouse=True)
def finished_at_once(monkeypatch):
    """Every job fails as it is made (nothing is sent to a worker), so a request that waits
    for its job (pull, login, volume create...) answers at once."""
    from panel.dockerapi import images as api_images
    from panel.jobs import services as jobs

    made = jobs.enqueue

    def enqueue(*args, **kwargs):
        job = made(*args, **kwargs)
        Job.objects.filter(pk=job.pk).update(state=Job.State.FAILED, result={"status": 500},
                                             error="not run: the access matrix has no worker")
        job.refresh_from_db()
        return job

    monkeypatch.setattr(jobs, "enqueue", enqueue)
    monkeypatch.setattr(jobs, "_send_task", lambda job: None)
    monkeypatch.setattr(api_images, "ROW_CHECK_SECONDS", 0.01, raising=False)


def _user(name, **extra):
    user = get_user_model().objects.create_user(name, **extra)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return user


def context_tar() -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        dockerfile = b"FROM busybox:1.29\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    return data.getvalue()


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Made once per module, in a transaction rolled back after it; each test's own
    transaction (the `db` fixture, a savepoint) keeps the tests apart."""
    state = tmp_path_factory.mktemp("access-state")
    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with django_db_blocker.unblock(), override_settings(STATE_ROOT=state, CHANNEL_LAYERS=layers):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield _make_world()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _make_world() -> World:
    blue, red = Team.objects.create(name="blue"), Team.objects.create(name="red")
    users = {"site_admin": _user("root", is_superuser=True, is_staff=True)}
    memberships = {}
    for role in BLUE_ROLES:
        users[role] = _user(f"blue-{role}")
        memberships[role] = Membership.objects.create(user=users[role], team=blue, role=role)
    users["outsider"] = _user("red-operator")
    Membership.objects.create(user=users["outsider"], team=red, role=Membership.Role.OPERATOR)
    owner = users["owner"]
    node = local_node()
    config = {"config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]}, "rootfs": {"diff_ids": []}}
    busybox = Image.objects.create(id="b" * 64, node=node, config=config, layers=[], size=1,
                                   created=datetime(2020, 1, 1, tzinfo=UTC))
    ImageTag.objects.create(image=busybox, repository="busybox", tag="1.29")
    image = Image.objects.create(id="a" * 64, team=blue, node=node, config=config, layers=[],
                                 size=1, created=datetime(2020, 1, 1, tzinfo=UTC))
    ImageTag.objects.create(image=image, repository="blue/app", tag="1")
    network = networks.create(acting_user=owner, name="blue-net", team=blue,
                              ipam={"Config": [{"Subnet": "10.0.42.0/24"}]})
    empty_network = networks.create(acting_user=owner, name="blue-lan", team=blue,
                                    ipam={"Config": [{"Subnet": "10.0.43.0/24"}]})
    container = containers.create(
        acting_user=owner, name="blue-box", team=blue,
        config={"Image": "blue/app:1", "Tty": True, "OpenStdin": True},
        host_config={"NetworkMode": "blue-net"})
    spare = containers.create(acting_user=owner, name="blue-spare", team=blue,
                              config={"Image": "blue/app:1"})
    volume = Volume.objects.create(name="blue-vol", team=blue, node=node)
    job = Job.objects.create(kind="image.pull", target_type="image", target_repr="blue/app:1",
                             team=blue, node=node, actor=owner, state=Job.State.SUCCEEDED)
    build = Job.objects.create(kind="image.build", target_type="image",
                               target_repr="blue/app:2", team=blue, node=node, actor=owner,
                               state=Job.State.RUNNING)
    instance = ExecInstance.objects.create(id="e" * 64, container=container,
                                           config={"Cmd": ["sh"]}, created_by=owner)
    credential = RegistryCredential.objects.create(
        team=blue, registry="127.0.0.1:5000", username="robot",
        secret=credentials.seal({"password": "s3cret"}))
    return World(blue=blue, red=red, users=users, container=container, spare=spare,
                 image=image, volume=volume, network=network, empty_network=empty_network,
                 job=job, build=build, exec=instance, credential=credential,
                 membership=memberships["viewer"])
