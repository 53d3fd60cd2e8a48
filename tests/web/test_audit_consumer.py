"""ws/audit/: the audit page's live tail, with Channels' communicator (in-memory layer).

Rows are made with `record()`; what `panel.events.publish.audit_event` hands to its sender
after the commit is replayed on the test's own layer (the sender's loop is another one)."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from panel.audit.models import AuditEvent
from panel.audit.services import record
from panel.events import publish
from panel.events.routing import websocket_urlpatterns
from panel.teams.models import Membership

from .conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def published(monkeypatch):
    """What publish sent, replayed on the test's layer by `deliver()`."""
    sent = []
    monkeypatch.setattr(publish._sender, "send", lambda groups, message: sent.append(
        (groups, message)))

    async def deliver():
        layer = get_channel_layer()
        while sent:
            groups, message = sent.pop(0)
            for group in groups:
                await layer.group_send(group, message)

    return deliver


@pytest.fixture
def auditor(blue):
    return make_user("audrey", blue, Membership.Role.AUDITOR)


def _communicator(path, user):
    communicator = WebsocketCommunicator(app, path)
    communicator.scope["user"] = user
    return communicator


@sync_to_async
def _record(action, actor, team, **extra):
    return record(action, actor=actor, team=team, obj_type="container", obj_id="x" * 64,
                  obj_repr=f"{action}-box", source="panel", **extra)


def test_needs_a_login():
    @async_to_sync
    async def run():
        connected, code = await _communicator("/ws/audit/", AnonymousUser()).connect()
        assert not connected and code == 4401

    run()


def test_refused_to_a_user_who_may_not_audit_and_audited(blue):
    operator = make_user("otto", blue, Membership.Role.OPERATOR)

    @async_to_sync
    async def run():
        connected, code = await _communicator("/ws/audit/", operator).connect()
        assert not connected and code == 4404

    run()
    refusal = AuditEvent.objects.get(actor_name="otto", action="permission.denied")
    assert refusal.outcome == "denied" and refusal.params == {"route": "WS /ws/audit/"}


def test_an_auditor_gets_new_rows_of_its_team_only(auditor, alice, mallory, blue, red,
                                                    published):
    @async_to_sync
    async def run():
        communicator = _communicator("/ws/audit/", auditor)
        assert (await communicator.connect())[0]
        assert await communicator.receive_nothing()  # no rows yet: nothing to catch up
        ours = await _record("container.stop", alice, blue, params={"t": 3})
        await _record("container.start", mallory, red)  # published after ours
        await published()
        row = await communicator.receive_json_from()
        assert row["type"] == "audit.row" and row["id"] == ours.id
        assert (row["action"], row["team_name"], row["seq"], row["digest"]) == (
            "container.stop", "blue", ours.seq, ours.digest)
        assert row["params"] == {"t": 3}
        assert f'id="e-{ours.id}"' in row["html"] and "container.stop-box" in row["html"]
        assert await communicator.receive_nothing()  # red's row never comes
        await communicator.disconnect()

    run()


def test_the_page_filters_apply_to_the_tail(auditor, alice, blue, published):
    @async_to_sync
    async def run():
        communicator = _communicator("/ws/audit/?outcome=denied&q=priv&page=3", auditor)
        assert (await communicator.connect())[0]
        await _record("container.start", alice, blue)
        await _record("policy.denied", alice, blue, outcome="denied", params={"other": 1})
        denied = await _record("policy.denied", alice, blue, outcome="denied",
                               params={"privileged": True})
        await published()
        assert (await communicator.receive_json_from())["id"] == denied.id
        assert await communicator.receive_nothing()
        await communicator.disconnect()

    run()


def test_rows_after_the_newest_shown_come_first(auditor, alice, blue):
    shown = record("container.start", actor=alice, team=blue, obj_type="container", obj_id="1")
    missed = [record("container.stop", actor=alice, team=blue, obj_type="container",
                     obj_id=str(n)) for n in range(2)]

    @async_to_sync
    async def run():
        communicator = _communicator(f"/ws/audit/?after={shown.id}", auditor)
        assert (await communicator.connect())[0]
        received = [(await communicator.receive_json_from())["id"] for _ in missed]
        assert received == [event.id for event in missed]  # oldest first: the page prepends
        assert await communicator.receive_nothing()
        await communicator.disconnect()

    run()


def test_a_site_admin_gets_every_row(alice, red, published):
    root = make_user("root", is_superuser=True)

    @async_to_sync
    async def run():
        communicator = _communicator(f"/ws/audit/?after={2**40}", root)
        assert (await communicator.connect())[0]
        teamless = await _record("auth.login_failed", None, None, outcome="failed")
        reds = await _record("container.start", alice, red)
        await published()
        received = {(await communicator.receive_json_from())["id"] for _ in range(2)}
        assert received == {teamless.id, reds.id}
        await communicator.disconnect()

    run()


def test_invalid_filters_close_the_socket(auditor):
    @async_to_sync
    async def run():
        connected, code = await _communicator("/ws/audit/?since=nope", auditor).connect()
        assert not connected and code == 4400

    run()
