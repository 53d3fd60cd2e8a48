"""ws/exec/<exec id>/?rows=R&cols=C: a browser terminal on one exec instance.

The panel's Exec form creates the exec instance (panel/web/exec_views.py, through the
service: permission "operate", audited); this consumer starts it, once, through the
container's shim (workers/runtime/shimexec.py) and carries its streams:

- to the browser: the process's output as binary messages (a PTY's bytes with a TTY;
  stdout and stderr interleaved without one), then `{"type": "exit", "code": n}` (the
  exit code is in the database first) and a normal close; `{"type": "error", "message"}`
  and a close when it cannot start (the message is Docker's, e.g. the OCI error for a
  missing executable);
- from the browser: binary or `{"type": "stdin", "data": "..."}` messages are the
  process's stdin, `{"type": "resize", "rows", "cols"}` sets the PTY size, `{"type":
  "eof"}` closes stdin (no TTY).

Closing the page leaves the process running (as `docker exec` does when its client goes).
"""

import asyncio
import contextlib
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.exceptions import PermissionDenied

from panel.containers import execs
from panel.errors import DockyardError

from .auditing import AuditedConnect

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_REFUSED = 4409


@database_sync_to_async
def _claim(user, exec_id: str, rows: int, cols: int):
    instance = execs.visible(user, exec_id)
    spec = execs.begin(acting_user=user, instance=instance, detach=False, rows=rows, cols=cols)
    return instance, spec


class ExecTerminalConsumer(AuditedConnect, AsyncWebsocketConsumer):
    audit_route = "/ws/exec/<str:exec_id>/"

    async def connect(self):
        from workers.runtime.execs import ExecError, aopen_exec

        self.writer = None
        self.pump = None
        user = self.scope.get("user")
        exec_id = self.scope["url_route"]["kwargs"]["exec_id"]
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        rows, cols = self._size()
        try:
            instance, spec = await _claim(user, exec_id, rows, cols)
        except (DockyardError, PermissionDenied) as exc:
            code = CLOSE_NOT_FOUND if getattr(exc, "status", 0) == 404 else CLOSE_REFUSED
            await self.accept()
            await self.send(text_data=json.dumps({"type": "error", "message": str(exc)}))
            await self.close(code=code)
            return
        self.instance = instance
        self.tty = bool(spec["tty"])
        await self.accept()
        try:
            reader, self.writer, pid = await aopen_exec(execs.exec_dir(instance.container_id),
                                                        spec)
        except ExecError as exc:
            code = exc.code if exc.code < 256 else 126
            await database_sync_to_async(execs.finished)(instance.id, code, exc.message)
            await self.send(text_data=json.dumps({"type": "error", "message": exc.message,
                                                  "code": code}))
            await self.close()
            return
        await database_sync_to_async(execs.started)(instance.id, pid)
        self.pump = asyncio.create_task(self._forward(reader))

    def _size(self) -> tuple[int, int]:
        params = {}
        for part in self.scope.get("query_string", b"").decode().split("&"):
            key, _, value = part.partition("=")
            params[key] = value
        try:
            return execs.check_size(params.get("rows") or 0, params.get("cols") or 0)
        except DockyardError:
            return 0, 0

    async def _forward(self, reader) -> None:
        from workers.runtime.execs import aread_frame

        try:
            while True:
                kind, payload = await aread_frame(reader)
                if kind == b"x" or not kind:
                    code = int(payload) if kind == b"x" and payload.isdigit() else 137
                    await database_sync_to_async(execs.finished)(self.instance.id, code)
                    await self.send(text_data=json.dumps({"type": "exit", "code": code}))
                    await self.close()
                    return
                await self.send(bytes_data=payload)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("exec terminal %s failed", self.instance.id)
            with contextlib.suppress(Exception):
                await self.close()

    async def _to_shim(self, data: bytes) -> None:
        if self.writer is None or self.writer.is_closing():
            return
        self.writer.write(data)
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.drain()

    async def receive(self, text_data=None, bytes_data=None):
        from workers.runtime.execs import CLOSE_STDIN, RESIZE, STDIN, frame

        if bytes_data:
            await self._to_shim(frame(STDIN, bytes_data))
            return
        try:
            msg = json.loads(text_data or "")
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == "stdin" and isinstance(msg.get("data"), str):
            await self._to_shim(frame(STDIN, msg["data"].encode("utf-8", "replace")))
        elif kind == "resize":
            try:
                rows, cols = execs.check_size(msg.get("rows"), msg.get("cols"))
            except DockyardError:
                return
            await self._to_shim(frame(RESIZE, f"{rows} {cols}".encode()))
        elif kind == "eof":
            await self._to_shim(frame(CLOSE_STDIN))

    async def disconnect(self, code):
        if self.pump is not None and not self.pump.done():
            self.pump.cancel()
            with contextlib.suppress(BaseException):
                await self.pump
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
