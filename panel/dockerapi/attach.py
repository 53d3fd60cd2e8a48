"""POST /containers/{id}/attach: the hijacked connection that carries a container's output.

The shim publishes every chunk of output to Redis (`dockyard:output:<id>`: `1`/`2` + bytes,
then `x<code>` once the process exited and everything was published). We subscribe *before*
answering, because the docker CLI attaches first and starts the container only once the
upgrade reply arrived; so no output can be missed. Without a TTY each chunk goes out as a
Docker multiplexed frame; with a TTY, raw.

Only output is carried in this issue. The reader side (`_read_client`) already owns the
client's half of the connection, so stdin (and TTY resize through its own endpoint) can be
forwarded to the shim's attach socket later without changing the connection handling.
"""

import asyncio
import contextlib
import logging
import select
from dataclasses import dataclass
from urllib.parse import parse_qs

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from panel.containers import services
from panel.containers.models import Container
from panel.errors import DockyardError

from . import logs
from .server import ClientGone
from .shapes import RUNNING_STATES, is_tty

log = logging.getLogger("dockyard.dockerapi")

CHECK_INTERVAL = 1.0  # seconds between re-reads of the container row while attached
DRAIN_TIMEOUT = 0.2  # seconds to collect output still in flight once the row says it stopped
ENDED = (Container.State.EXITED, Container.State.DEAD)


@dataclass
class Target:
    id: str
    tty: bool
    state: str
    error: str


def _target(user_id, ref: str) -> Target:
    user = get_user_model().objects.get(pk=user_id)
    container = services.resolve(user, ref)
    return Target(container.id, is_tty(container), container.state, container.error)


def _current(container_id: str):
    return Container.objects.filter(pk=container_id).values("state", "error").first()


def _flag(params: dict, name: str) -> bool:
    value = params.get(name, [""])[-1].strip().lower()
    return value not in ("", "0", "no", "false", "none")


class Attach:
    def __init__(self, conn, ref: str, query: str, headers: dict, user_id):
        self.conn = conn
        self.ref = ref
        self.params = parse_qs(query, keep_blank_values=True)
        self.upgrade = headers.get(b"upgrade", b"").lower() == b"tcp"
        self.user_id = user_id
        self.stdout = _flag(self.params, "stdout")
        self.stderr = _flag(self.params, "stderr")
        self.stream = _flag(self.params, "stream")
        self.logs = _flag(self.params, "logs")
        self.stdin = _flag(self.params, "stdin")
        self.client_eof = asyncio.Event()

    async def run(self) -> None:
        conn = self.conn
        try:
            target = await sync_to_async(_target)(self.user_id, self.ref)
        except DockyardError as exc:
            await conn.respond_error(exc.status, exc.message)
            return
        except PermissionDenied as exc:
            await conn.respond_error(403, str(exc) or "permission denied")
            return
        if not await conn.discard_body():
            return
        self.target = target
        client = aioredis.from_url(settings.REDIS_URL)
        pubsub = client.pubsub()
        try:
            await self._subscribe(pubsub)
            # The row now, after subscribing: an exit after this point reaches us as `x`.
            row = await sync_to_async(_current)(target.id)
            await self._reply()
            reader = asyncio.create_task(self._read_client())
            try:
                if self.logs:
                    await self._write_replay()
                if self.stream and row is not None and row["state"] not in ENDED:
                    await self._pump(pubsub, row)
            finally:
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
        except (ClientGone, ConnectionError, OSError):
            pass  # the client left; nothing to tell it
        except Exception:
            log.exception("attach to %s failed", target.id)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _subscribe(self, pubsub) -> None:
        await pubsub.subscribe(f"dockyard:output:{self.target.id}")
        # Wait for Redis's confirmation: only then are we sure to see what comes next.
        while True:
            message = await pubsub.get_message(timeout=5.0)
            if message is None:
                raise ConnectionError("Redis did not confirm the subscription")
            if message["type"] == "subscribe":
                return

    async def _reply(self) -> None:
        if self.upgrade:
            head = (b"HTTP/1.1 101 UPGRADED\r\n"
                    b"Content-Type: application/vnd.docker.raw-stream\r\n"
                    b"Connection: Upgrade\r\nUpgrade: tcp\r\n")
        else:
            head = (b"HTTP/1.1 200 OK\r\n"
                    b"Content-Type: application/vnd.docker.raw-stream\r\n")
        for name, value in (("Api-Version", "1.41"), ("Ostype", "linux"),
                            ("Server", "Docker/24.0.0-dockyard (linux)")):
            head += f"{name}: {value}\r\n".encode()
        await self.conn.write(head + b"\r\n")

    def _encode(self, kind: bytes, payload: bytes) -> bytes:
        if kind == b"1" and not self.stdout or kind == b"2" and not self.stderr:
            return b""
        if self.target.tty:
            return payload
        return logs.frame(1 if kind == b"1" else 2, payload)

    async def _write_replay(self) -> None:
        options = logs.LogOptions(stdout=self.stdout, stderr=self.stderr, tty=self.target.tty)
        data = await asyncio.to_thread(logs.replay, self.target.id, options)
        await self.conn.write(data)

    async def _read_client(self) -> None:
        """The client's half of the connection: stdin, once it is supported; EOF otherwise.

        The docker CLI half-closes its side when it has no stdin to send, so EOF here does
        not mean the client left; only a failed write (or a hang-up) does.
        """
        pending, _closed = self.conn.h11.trailing_data
        if pending:
            self._stdin(bytes(pending))
        while True:
            data = await self.conn.reader.read(64 * 1024)
            if not data:
                self.client_eof.set()
                return
            self._stdin(data)

    def _stdin(self, data: bytes) -> None:
        # Forwarding to the shim's attach socket comes with `docker run -i`; dropped for now.
        pass

    def _peer_hung_up(self) -> bool:
        sock = self.conn.writer.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLHUP | select.POLLERR)
        return bool(poller.poll(0))

    async def _pump(self, pubsub, row) -> None:
        loop = asyncio.get_running_loop()
        next_check = loop.time() + CHECK_INTERVAL
        initial_error = row["error"]
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=CHECK_INTERVAL)
            if message is not None and message.get("type") == "message":
                data = message["data"]
                kind, payload = data[:1], data[1:]
                if kind == b"x":
                    return
                await self.conn.write(self._encode(kind, payload))
                if loop.time() < next_check:
                    continue
            next_check = loop.time() + CHECK_INTERVAL
            if self.client_eof.is_set() and self._peer_hung_up():
                return
            row = await sync_to_async(_current)(self.target.id)
            stopped = row is None or row["state"] in ENDED or (
                row["state"] not in RUNNING_STATES and row["error"] != initial_error)
            if stopped:
                await self._drain(pubsub)
                return

    async def _drain(self, pubsub) -> None:
        """Output published just before the row changed is already on its way: send it."""
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=DRAIN_TIMEOUT)
            if message is None:
                return
            if message.get("type") != "message":
                continue
            data = message["data"]
            if data[:1] == b"x":
                return
            await self.conn.write(self._encode(data[:1], data[1:]))
