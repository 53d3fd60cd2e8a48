"""The access matrix of the panel's websockets: every route has a rule; a refusal closes the
socket (4404: not found, as for what does not exist; a refusal message: not allowed) and is
audited with the browser's address and user agent."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from panel.audit.models import AuditEvent
from panel.events.routing import websocket_urlpatterns

from .checks import check_row
from .matrix import WEBSOCKETS

app = URLRouter(websocket_urlpatterns)
CLOSE_NOT_FOUND = 4404
BROWSER = ("203.0.113.9", 50000)


def connect(path, user) -> int:
    """The matrix's status of a websocket: 200 (open), 404 (closed: not found) or 403
    (closed with a refusal)."""

    async def run():
        communicator = WebsocketCommunicator(app, path,
                                             headers=[(b"user-agent", b"matrix-browser")])
        communicator.scope.update(user=user, client=BROWSER)
        connected, code = await communicator.connect()
        if not connected:
            await communicator.disconnect()  # the consumer's connect (and its audit) is over
            return 404 if code == CLOSE_NOT_FOUND else code
        status = 200
        while not await communicator.receive_nothing(timeout=0.05):
            message = await communicator.receive_output()
            if message["type"] == "websocket.close":
                status = 404 if message.get("code") == CLOSE_NOT_FOUND else status
                break
            text = message.get("text") or ""
            if '"error"' in text and "may not" in json.loads(text).get("message", ""):
                status = 403
        await communicator.disconnect()
        return status

    return async_to_sync(run)()


def test_every_websocket_route_has_a_rule():
    missing = [str(p.pattern) for p in websocket_urlpatterns if str(p.pattern) not in WEBSOCKETS]
    assert not missing, f"websocket routes without an access rule: {missing}"


@pytest.mark.parametrize("route", sorted(WEBSOCKETS))
def test_websocket(route, world, db):
    rule = WEBSOCKETS[route]
    path = rule.path.format(w=world)
    problems = check_row(world, rule, lambda user: connect(path, user))
    assert not problems, "\n".join(problems)


def test_a_refused_socket_is_audited_with_the_browser(world, db):
    outsider = world.users["outsider"]
    assert connect(f"/ws/containers/{world.container.id}/", outsider) == 404
    row = AuditEvent.objects.get(actor=outsider, outcome="denied")
    assert (row.action, row.team, row.object_id) == ("object.hidden", world.blue,
                                                     world.container.id)
    assert (row.source, row.address, row.user_agent) == ("panel", BROWSER[0], "matrix-browser")
    assert row.params["route"] == "WS /ws/containers/<str:container_id>/"
