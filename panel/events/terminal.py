"""ws/terminal/<kind>/<id>/: a browser terminal (static/terminal.js, xterm.js) on a PTY.

The target is a parameter: `kind` names a `TerminalTarget` class in `TARGETS` (today
"container": a container created with a TTY and open stdin; an exec instance registers its
own class with `register("exec", ExecTarget)`). A target says who may read and who may
type, where its output is published, and how input and resizes reach it.

Protocol (one websocket):
- server -> browser: binary frames are terminal output (raw bytes, for xterm.write);
  text frames are JSON events: `{"type": "hello", "readonly": bool, "running": bool}` first,
  `{"type": "exit", "code": n}` when the process exited (the target may start again, and
  its output then flows again), `{"type": "error", "message": ...}`.
- browser -> server: binary frames are input bytes; text frames are JSON
  `{"type": "input", "data": "..."}` or `{"type": "resize", "rows": n, "cols": n}`.
Viewers (no "operate" permission) get the output only; their input and resizes are dropped.
"""

import asyncio
import contextlib
import json
import logging

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from panel.errors import DockyardError

from .auditing import AuditedConnect

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_NO_TERMINAL = 4409
REPLAY_BYTES = 32 * 1024  # the tail of the log shown when the terminal opens
MAX_INPUT = 64 * 1024


class NoTerminal(Exception):
    pass


class TerminalTarget:
    """What a terminal is attached to. Subclasses implement the class method `load` (sync,
    may use the database) and the async methods below."""

    kind = ""

    def __init__(self, target_id: str, readonly: bool):
        self.id = target_id
        self.readonly = readonly

    @classmethod
    def load(cls, user, target_id: str) -> "TerminalTarget":
        """The target as `user` may use it; NotFound if they may not see it, NoTerminal if it
        has no terminal."""
        raise NotImplementedError

    @property
    def output_channel(self) -> str:
        """The Redis pubsub channel with `1`/`2` + bytes and `x<code>` messages."""
        raise NotImplementedError

    def replay(self) -> bytes:
        """Recent output to show first (sync, called in a thread)."""
        return b""

    def running(self) -> bool:
        return True

    def start_session(self, user) -> None:
        """Called (sync) before the first input of a writable session: checks, audit."""

    async def open_input(self):
        """(reader, writer) to the process's PTY; raises DockyardError if it does not run."""
        raise NotImplementedError

    async def resize(self, rows: int, cols: int) -> None:
        raise NotImplementedError


class ContainerTarget(TerminalTarget):
    kind = "container"

    def __init__(self, container, readonly: bool):
        super().__init__(container.id, readonly)
        self.container = container

    @classmethod
    def load(cls, user, target_id):
        from panel.containers import console
        from panel.containers.models import Container
        from panel.containers.services import visible_containers
        from panel.teams.services import hidden

        container = visible_containers(user).select_related("team").filter(pk=target_id).first()
        if container is None:
            raise hidden(user, f"No such container: {target_id}", obj_type="container",
                         ref=target_id, elsewhere=Container.objects.filter(pk=target_id))
        tty, open_stdin = console.tty_and_stdin(container)
        if not (tty and open_stdin):
            raise NoTerminal("this container has no terminal (it was created without -t -i)")
        return cls(container, readonly=not console.may_write(user, container))

    @property
    def output_channel(self):
        return f"dockyard:output:{self.id}"

    def replay(self):
        from panel.web import logs

        chunks, _offset, _truncated = logs.read_tail(self.id, REPLAY_BYTES)
        return "".join(chunk.text for chunk in chunks).encode()

    def running(self):
        from panel.containers.models import Container

        state = Container.objects.filter(pk=self.id).values_list("state", flat=True).first()
        return state == Container.State.RUNNING

    def start_session(self, user):
        from panel.containers import console

        console.open_session(acting_user=user, container=self.container, stdin=True,
                             source="panel")

    async def open_input(self):
        from panel.containers import console

        return await console.open_stdin(self.id, once=False)

    async def resize(self, rows, cols):
        from panel.containers import console

        await console.resize(self.id, rows, cols)


TARGETS: dict[str, type[TerminalTarget]] = {"container": ContainerTarget}


def register(kind: str, cls: type[TerminalTarget]) -> None:
    TARGETS[kind] = cls


class TerminalConsumer(AuditedConnect, AsyncWebsocketConsumer):
    audit_route = "/ws/terminal/<str:kind>/<str:target_id>/"

    async def connect(self):
        self.target = None
        self.redis = self.pubsub = self.reader = self.writer = None
        self.session_started = False
        self.said_not_running = False
        user = self.scope.get("user")
        kwargs = self.scope["url_route"]["kwargs"]
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        cls = TARGETS.get(kwargs["kind"])
        if cls is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        try:
            self.target = await database_sync_to_async(cls.load)(user, kwargs["target_id"])
        except (LookupError, DockyardError):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        except NoTerminal as exc:
            await self.accept()
            await self._event(type="error", message=str(exc))
            await self.close(code=CLOSE_NO_TERMINAL)
            self.target = None
            return
        await self.accept()
        running = await database_sync_to_async(self.target.running)()
        await self._event(type="hello", readonly=self.target.readonly, running=running)
        # The log's tail first, then the live output (a line written in between may be lost
        # from the view, never repeated).
        replay = await asyncio.to_thread(self.target.replay)
        if replay:
            await self.send(bytes_data=replay)
        try:
            self.redis = aioredis.Redis.from_url(settings.REDIS_URL)
            self.pubsub = self.redis.pubsub()
            await self.pubsub.subscribe(self.target.output_channel)
        except Exception as exc:
            log.warning("terminal output of %s unavailable: %s", self.target.id, exc)
            await self._event(type="error", message=f"live output unavailable: {exc}")
            return
        self.reader = asyncio.create_task(self._forward())

    async def _event(self, **event):
        await self.send(text_data=json.dumps(event))

    async def _forward(self):
        try:
            async for message in self.pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = message["data"]
                kind, body = data[:1], data[1:]
                if kind == b"x":
                    text = body.decode(errors="replace").strip()
                    code = int(text) if text.lstrip("-").isdigit() else None
                    await self._close_input()
                    self.said_not_running = False
                    await self._event(type="exit", code=code)
                    continue
                await self.send(bytes_data=body)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("terminal output of %s stopped", self.target.id, exc_info=True)

    async def receive(self, text_data=None, bytes_data=None):
        if self.target is None or self.target.readonly:
            return  # viewers read only
        if bytes_data is not None:
            await self._input(bytes_data)
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        if message.get("type") in ("input", "stdin") and isinstance(message.get("data"), str):
            await self._input(message["data"].encode())
        elif message.get("type") == "resize":
            await self._resize(message.get("rows"), message.get("cols"))

    async def _session(self) -> bool:
        if self.session_started:
            return True
        try:
            await database_sync_to_async(self.target.start_session)(self.scope["user"])
        except Exception as exc:  # PermissionDenied: the role changed since the connect
            self.target.readonly = True
            await self._event(type="error", message=str(exc) or "permission denied")
            return False
        self.session_started = True
        return True

    async def _input(self, data: bytes):
        if not data or len(data) > MAX_INPUT or not await self._session():
            return
        if self.writer is None:
            try:
                _reader, self.writer = await self.target.open_input()
            except DockyardError as exc:
                if not self.said_not_running:
                    self.said_not_running = True
                    await self._event(type="error", message=exc.message)
                return
            self.said_not_running = False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            await self._close_input()

    async def _resize(self, rows, cols):
        if not isinstance(rows, int) or not isinstance(cols, int):
            return
        if not (0 < rows <= 10_000 and 0 < cols <= 10_000):
            return
        with contextlib.suppress(DockyardError):  # not running (yet): the next resize counts
            await self.target.resize(rows, cols)

    async def _close_input(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def disconnect(self, code):
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        await self._close_input()
        if self.pubsub is not None:
            with contextlib.suppress(Exception):
                await self.pubsub.unsubscribe()
                await self.pubsub.aclose()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
