"""One request through the Docker API's ASGI app in process, as the front server hands it
over (no server, no worker): for view and access tests."""

import asyncio
import json

from asgiref.sync import async_to_sync

from panel.dockerapi.asgi import DockerApiHandler


def call(method, path, *, user=None, body=b"", query="", headers=(), client=None):
    """Returns (status, headers, body); a JSON body comes back parsed."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": query.encode(), "root_path": "",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": client, "server": ("127.0.0.1", 2375) if client else None,
        "dockyard_user_id": user.pk if user else None,
    }
    out = {"body": b""}
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        else:
            out["body"] += message.get("body", b"")

    async_to_sync(DockerApiHandler())(scope, receive, send)
    data = out["body"]
    if out["headers"].get("content-type", "").startswith("application/json") and data:
        data = json.loads(data)
    return out["status"], out["headers"], data
