"""The two endpoints the front server serves itself (attach, exec start: they hijack the
connection), through the real server on a loopback port: the same 404 and 403 as the rest of
the API, audited with the client's address, user agent and route."""

import asyncio
import http.client
import json

import pytest
from asgiref.sync import async_to_sync

from panel.audit.models import AuditEvent
from panel.dockerapi.asgi import DockerApiHandler
from panel.dockerapi.server import ApiServer
from panel.teams import tokens

USER_AGENT = "Docker-Client/24.0.7 (linux)"


def _post(port, path, key):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=b"{}", headers={
            "Authorization": f"Bearer {key}", "User-Agent": USER_AGENT,
            "Content-Type": "application/json", "Connection": "Upgrade", "Upgrade": "tcp"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def post(path, key):
    async def run():
        server = ApiServer(DockerApiHandler(), tcp="127.0.0.1:0")
        await server.start()
        port = server._servers[0].sockets[0].getsockname()[1]
        try:
            return await asyncio.to_thread(_post, port, path, key)
        finally:
            await server.close()

    return async_to_sync(run)()


@pytest.mark.parametrize("principal, path, status, message, action, route", [
    ("outsider", "/containers/blue-box/attach?stream=1&stdin=1", 404,
     "No such container: blue-box", "object.hidden", "POST /containers/<str:ref>/attach"),
    ("viewer", "/containers/blue-box/attach?stream=1&stdin=1", 403,
     "You may not operate in team blue.", "permission.denied",
     "POST /containers/<str:ref>/attach"),
    ("outsider", "/exec/{exec_id}/start", 404, "No such exec instance: {exec_id}",
     "object.hidden", "POST /exec/<str:exec_id>/start"),
    ("viewer", "/exec/{exec_id}/start", 403, "You may not operate in team blue.",
     "permission.denied", "POST /exec/<str:exec_id>/start"),
])
def test_hijacked_refusals(world, db, principal, path, status, message, action, route):
    user = world.users[principal]
    team = world.red if principal == "outsider" else world.blue
    _token, key = tokens.issue(user, "matrix", team=team)
    answer = post(path.format(exec_id=world.exec.id), key)
    assert answer == (status, {"message": message.format(exec_id=world.exec.id)})
    row = AuditEvent.objects.get(actor=user, outcome="denied")
    assert (row.action, row.team) == (action, world.blue)
    assert (row.source, row.address, row.user_agent) == ("api", "127.0.0.1", USER_AGENT)
    assert row.params["route"] == route
