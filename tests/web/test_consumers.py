"""The panel's websockets, with Channels' communicator (in-memory layer; Redis for output)."""

import asyncio
import json
import socket
from urllib.parse import urlsplit

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from panel.containers import services
from panel.events.consumers import _dedupe
from panel.events.routing import websocket_urlpatterns

from .conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


def _communicator(path, user):
    communicator = WebsocketCommunicator(app, path)
    communicator.scope["user"] = user
    return communicator


@pytest.fixture
def box(alice, blue, image):
    return services.create(acting_user=alice, team=blue, name="box",
                           config={"Image": "busybox:1.29"})


def _redis_up(settings) -> bool:
    url = urlsplit(settings.REDIS_URL)
    try:
        with socket.create_connection((url.hostname, url.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


def test_team_socket_needs_a_login():
    @async_to_sync
    async def run():
        communicator = _communicator("/ws/team/", AnonymousUser())
        connected, code = await communicator.connect()
        assert not connected and code == 4401

    run()


def test_team_socket_forwards_its_teams_messages(alice, blue, red):
    @async_to_sync
    async def run():
        layer = get_channel_layer()
        communicator = _communicator("/ws/team/", alice)
        connected, _ = await communicator.connect()
        assert connected
        message = {"type": "container.state", "id": "c1", "name": "n", "state": "running",
                   "exit_code": None, "error": ""}
        await layer.group_send(f"team.{red.id}", {**message, "id": "not-mine"})
        await layer.group_send(f"team.{blue.id}", message)
        await layer.group_send(f"team.{blue.id}", {"type": "job.state", "id": "j", "kind": "k",
                                                   "state": "running", "error": "", "target_id": "c1"})
        await layer.group_send(f"team.{blue.id}", {"type": "container.removed", "id": "c1"})
        assert await communicator.receive_json_from() == message
        assert (await communicator.receive_json_from())["type"] == "job.state"
        assert await communicator.receive_json_from() == {"type": "container.removed", "id": "c1"}
        assert await communicator.receive_nothing()
        await communicator.disconnect()

    run()


def test_superuser_joins_every_team(blue, red):
    @async_to_sync
    async def run():
        root = await sync_to_async(make_user)("root", is_superuser=True)
        communicator = _communicator("/ws/team/", root)
        assert (await communicator.connect())[0]
        await get_channel_layer().group_send(f"team.{red.id}", {"type": "container.removed", "id": "r"})
        assert (await communicator.receive_json_from())["id"] == "r"
        await communicator.disconnect()

    run()


def test_container_socket_is_closed_for_outsiders(mallory, box):
    @async_to_sync
    async def run():
        communicator = _communicator(f"/ws/containers/{box.id}/", mallory)
        connected, code = await communicator.connect()
        assert not connected and code == 4404

    run()


def test_container_socket_sends_the_log_after_the_offset_then_live_output(
        alice, box, state_root, settings):
    @async_to_sync
    async def run():
        if not _redis_up(settings):
            pytest.skip(f"needs Redis at {settings.REDIS_URL}")
        import redis.asyncio as aioredis

        log_dir = state_root / "containers" / box.id
        log_dir.mkdir(parents=True)
        first = json.dumps({"log": "seen\n", "stream": "stdout", "time": "t"}) + "\n"
        second = json.dumps({"log": "missed\n", "stream": "stderr", "time": "t"}) + "\n"
        (log_dir / "container.log").write_text(first + second)
        communicator = _communicator(f"/ws/containers/{box.id}/?offset={len(first)}", alice)
        assert (await communicator.connect())[0]
        assert await communicator.receive_json_from() == {"type": "output", "stream": "stderr",
                                                          "data": "missed\n"}
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            channel = f"dockyard:output:{box.id}"
            for _ in range(50):  # until the consumer's subscription is in place
                if (await client.pubsub_numsub(channel))[0][1]:
                    break
                await asyncio.sleep(0.05)
            await client.publish(channel, b"1hello \xc3")
            await client.publish(channel, b"1\xa9t\xc3\xa9\n")
            await client.publish(channel, b"x0")
        finally:
            await client.aclose()
        received = [await communicator.receive_json_from(timeout=2) for _ in range(3)]
        assert received == [
            {"type": "output", "stream": "stdout", "data": "hello "},
            {"type": "output", "stream": "stdout", "data": "\u00e9t\u00e9\n"},
            {"type": "output.exit", "code": 0},
        ]
        await get_channel_layer().group_send(f"container.{box.id}", {"type": "container.removed",
                                                                     "id": box.id})
        assert (await communicator.receive_json_from())["type"] == "container.removed"
        await communicator.disconnect()

    run()


def test_dedupe_drops_only_what_the_catch_up_sent():
    assert _dedupe("b\n", "a\nb\n") == ("", "")
    assert _dedupe("a\n", "a\nb\n") == ("", "b\n")
    assert _dedupe("b\nc\n", "a\nb\n") == ("c\n", "")
    assert _dedupe("new\n", "a\n") == ("new\n", "")
    assert _dedupe("x", "") == ("x", "")
