"""ws/jobs/<id>/: a job's state and Docker JSON progress messages, for those who may see it."""

import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from panel.events.consumers import RESERVED_JOBS_KEY
from panel.events.routing import websocket_urlpatterns
from panel.jobs.models import Job
from panel.nodes.services import local_node

from .conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)
PROGRESS = {"status": "Downloading", "id": "9ad63333ebc9",
            "progressDetail": {"current": 1024, "total": 4096}}


def _communicator(job_id, user, session=None):
    communicator = WebsocketCommunicator(app, f"/ws/jobs/{job_id}/")
    communicator.scope["user"] = user
    if session is not None:
        communicator.scope["session"] = session
    return communicator


@pytest.fixture
def pull_job(blue):
    return Job.objects.create(kind="image.pull", target_type="image", target_id="x",
                              target_repr="busybox:latest", team=blue, node=local_node(),
                              state=Job.State.RUNNING)


def test_member_gets_the_state_then_the_progress(alice, pull_job):
    @async_to_sync
    async def run():
        communicator = _communicator(pull_job.id, alice)
        assert (await communicator.connect())[0]
        first = await communicator.receive_json_from()
        assert (first["type"], first["state"], first["kind"]) == ("job.state", "running",
                                                                  "image.pull")
        layer = get_channel_layer()
        await layer.group_send(f"job.{pull_job.id}", {"type": "job.progress",
                                                      "id": str(pull_job.id), "event": PROGRESS})
        assert (await communicator.receive_json_from())["event"] == PROGRESS
        await layer.group_send(f"job.{pull_job.id}", {"type": "job.state", "id": str(pull_job.id),
                                                      "kind": "image.pull", "state": "succeeded",
                                                      "error": "", "target_id": "x"})
        assert (await communicator.receive_json_from())["state"] == "succeeded"
        await communicator.disconnect()

    run()


def test_outsiders_and_strangers_are_closed(mallory, pull_job):
    @async_to_sync
    async def run():
        for user, job_id, code in ((mallory, pull_job.id, 4404), (mallory, uuid.uuid4(), 4404),
                                   (AnonymousUser(), pull_job.id, 4401)):
            communicator = _communicator(job_id, user, session={})
            connected, closed_with = await communicator.connect()
            assert (connected, closed_with) == (False, code)
        # the refused socket left the job's group: nothing is sent to it
        layer = get_channel_layer()
        assert not layer.groups.get(f"job.{pull_job.id}")

    run()


def test_a_reserved_job_is_followed_before_it_exists(alice, blue):
    """The pull form's page listens first, then posts the form that starts the job."""
    @async_to_sync
    async def run():
        job_id = str(uuid.uuid4())
        communicator = _communicator(job_id, alice, session={RESERVED_JOBS_KEY: [job_id]})
        assert (await communicator.connect())[0]
        assert await communicator.receive_nothing()  # no job yet, so no state
        stranger = await sync_to_async(make_user)("sam", blue)  # same team, other session
        refused = _communicator(job_id, stranger, session={})
        assert (await refused.connect()) == (False, 4404)
        await get_channel_layer().group_send(f"job.{job_id}", {
            "type": "job.progress", "id": job_id, "event": {"status": "Pulling fs layer",
                                                            "id": "abc", "progressDetail": {}}})
        assert (await communicator.receive_json_from())["event"]["status"] == "Pulling fs layer"
        await communicator.disconnect()

    run()
