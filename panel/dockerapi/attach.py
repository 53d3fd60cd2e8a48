"""POST /containers/{id}/attach: the hijacked connection that carries a container's streams.

Output: the shim publishes every chunk to Redis (`dockyard:output:<id>`: `1`/`2` + bytes,
then `x<code>` once the process exited and everything was published). We subscribe *before*
answering, because the docker CLI attaches first and starts the container only once the
upgrade reply arrived; so no output can be missed. Without a TTY each chunk goes out as a
Docker multiplexed frame; with a TTY, raw.

Input (`stdin=1`, for a container created with OpenStdin): what the client sends goes to
the container's stdin through its shim (panel.containers.console). Bytes that arrive before
the container runs (the CLI may send its piped input before its start request) are kept
and delivered once it runs. As in Docker:
- with a TTY, the detach keys (`detachKeys`, default ctrl-p,ctrl-q) end the attach and
  leave the container running; so does the client's EOF;
- without a TTY, the client's EOF closes the container's stdin if it was created with
  StdinOnce (`docker run -i`), and ends the attach otherwise.

Attaching to a container that does not run (created or exited) with `stream=1` waits for
its next start and carries that run's output (`docker start -a` attaches, then starts);
the client's hang-up ends the wait. A paused or restarting container is a 409, as in Docker.
(`docker attach` refuses a stopped container itself, from its inspect.)
"""

import asyncio
import contextlib
import fcntl
import logging
import select
import socket
import struct
import termios
from dataclasses import dataclass
from urllib.parse import parse_qs

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.exceptions import PermissionDenied

from panel.containers import console, services
from panel.containers.models import Container
from panel.errors import Conflict, DockyardError, InvalidParameter

from . import logs
from .server import ClientGone
from .shapes import RUNNING_STATES

log = logging.getLogger("dockyard.dockerapi")

CHECK_INTERVAL = 1.0  # seconds between re-reads of the container row while attached
DRAIN_TIMEOUT = 0.2  # seconds to collect output still in flight once the row says it stopped
START_POLL = 1.0  # seconds between looks for the shim while stdin waits for a start
ENDED = (Container.State.EXITED, Container.State.DEAD)
DEFAULT_DETACH_KEYS = "ctrl-p,ctrl-q"

_CTRL = {f"ctrl-{chr(c)}": c - 96 for c in range(ord("a"), ord("z") + 1)}
_CTRL.update({"ctrl-@": 0, "ctrl-[": 27, "ctrl-\\": 28, "ctrl-]": 29, "ctrl-^": 30,
              "ctrl-_": 31})


def parse_detach_keys(spec: str) -> bytes:
    """Docker's detach-keys syntax (moby/term ToBytes): comma-separated single characters
    or ctrl-<a-z @ [ \\ ] ^ _>."""
    out = bytearray()
    for key in spec.split(","):
        if len(key) == 1:
            out += key.encode("latin-1", "replace")
        elif key in _CTRL:
            out.append(_CTRL[key])
        else:
            raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    if not out:
        raise InvalidParameter(f"Invalid detach keys ({spec}) provided")
    return bytes(out)


class DetachScanner:
    """Finds the detach sequence in a byte stream; holds back a partial match."""

    def __init__(self, keys: bytes):
        self.keys = keys
        self.held = 0  # how many bytes of `keys` are matched (and held back)

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """(bytes to forward, detached?)"""
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.held]:
                self.held += 1
                if self.held == len(self.keys):
                    self.held = 0
                    return bytes(out), True
                continue
            if self.held:
                out += self.keys[:self.held]
                self.held = 0
                if byte == self.keys[0]:
                    self.held = 1
                    continue
            out.append(byte)
        return bytes(out), False


@dataclass
class Target:
    id: str
    tty: bool
    open_stdin: bool
    stdin_once: bool
    state: str
    error: str


def _target(caller, ref: str, stdin: bool) -> Target:
    user = caller.load_user()
    container = services.resolve(user, ref)
    if container.state == Container.State.PAUSED:
        raise Conflict(f"container {ref} is paused, unpause the container before attach")
    if container.state == Container.State.RESTARTING:
        raise Conflict(f"container {ref} is restarting, wait until the container is running")
    tty, open_stdin = console.tty_and_stdin(container)
    console.open_session(acting_user=user, container=container, stdin=stdin and open_stdin,
                         source="api")
    return Target(container.id, tty, open_stdin, console.stdin_once(container),
                  container.state, container.error)


def _current(container_id: str):
    return Container.objects.filter(pk=container_id).values(
        "state", "error", "started_at", "finished_at").first()


def _flag(params: dict, name: str) -> bool:
    value = params.get(name, [""])[-1].strip().lower()
    return value not in ("", "0", "no", "false", "none")


class StdinLink:
    """Bytes for the container's stdin, kept until its shim can take them.

    `None` in the queue is the client's EOF: the connection to the shim is closed, which
    (in `stdin-once` mode, no TTY) closes the container's stdin."""

    def __init__(self, container_id: str, once: bool):
        self.container_id = container_id
        self.once = once
        self.queue: asyncio.Queue = asyncio.Queue()
        self.writer = None
        self.task = asyncio.create_task(self._run())

    def feed(self, data: bytes) -> None:
        if data:
            self.queue.put_nowait(data)

    def eof(self) -> None:
        self.queue.put_nowait(None)

    async def _connect(self) -> None:
        layer = get_channel_layer()
        channel = group = None
        try:
            while self.writer is None:
                try:
                    _reader, self.writer = await console.open_stdin(self.container_id,
                                                                    once=self.once)
                    return
                except console.NotRunning:
                    pass
                # Not running yet: wake up on the container's next state change.
                if channel is None and layer is not None:
                    channel = await layer.new_channel()
                    group = f"container.{self.container_id}"
                    await layer.group_add(group, channel)
                if channel is None:
                    await asyncio.sleep(START_POLL)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(layer.receive(channel), START_POLL)
        finally:
            if channel is not None:
                with contextlib.suppress(Exception):
                    await layer.group_discard(group, channel)

    async def _run(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if self.writer is None:
                    await self._connect()
                if item is None:
                    self.writer.close()
                    return
                try:
                    self.writer.write(item)
                    await self.writer.drain()
                except (ConnectionError, OSError):
                    self.writer.close()
                    self.writer = None  # the shim is gone: its container exited
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("stdin of %s failed", self.container_id)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task
        if self.writer is not None:
            self.writer.close()


class Attach:
    def __init__(self, conn, ref: str, query: str, headers: dict, caller):
        self.conn = conn
        self.ref = ref
        self.params = parse_qs(query, keep_blank_values=True)
        self.upgrade = headers.get(b"upgrade", b"").lower() == b"tcp"
        self.caller = caller
        self.stdout = _flag(self.params, "stdout")
        self.stderr = _flag(self.params, "stderr")
        self.stream = _flag(self.params, "stream")
        self.logs = _flag(self.params, "logs")
        self.stdin = _flag(self.params, "stdin")
        self.detach_spec = self.params.get("detachKeys", [""])[-1] or DEFAULT_DETACH_KEYS
        self.client_eof = asyncio.Event()
        self.done = asyncio.Event()  # detached, or the client ended its stdin (Docker: ends)
        self.link: StdinLink | None = None

    async def run(self) -> None:
        conn = self.conn
        try:
            detach_keys = parse_detach_keys(self.detach_spec)
            target = await sync_to_async(_target)(self.caller, self.ref, self.stdin)
        except DockyardError as exc:
            await conn.respond_error(exc.status, exc.message)
            return
        except PermissionDenied as exc:
            await conn.respond_error(403, str(exc) or "permission denied")
            return
        if not await conn.discard_body():
            return
        self.target = target
        self.scanner = DetachScanner(detach_keys) if target.tty else None
        client = aioredis.from_url(settings.REDIS_URL)
        pubsub = client.pubsub()
        try:
            await self._subscribe(pubsub)
            # The row now, after subscribing: an exit after this point reaches us as `x`.
            row = await sync_to_async(_current)(target.id)
            await self._reply()
            if self.stdin and target.open_stdin:
                self.link = StdinLink(target.id, once=target.stdin_once and not target.tty)
            reader = asyncio.create_task(self._read_client())
            try:
                if self.logs:
                    await self._write_replay()
                if self.stream and row is not None:
                    await self._until_done(self._pump(pubsub, row))
            finally:
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
        except (ClientGone, ConnectionError, OSError):
            pass  # the client left; nothing to tell it
        except Exception:
            log.exception("attach to %s failed", target.id)
        finally:
            if self.link is not None:
                await self.link.close()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _until_done(self, coro) -> None:
        """Run the output pump until it ends, or until a detach / the end of stdin."""
        pump = asyncio.create_task(coro)
        done = asyncio.create_task(self.done.wait())
        try:
            await asyncio.wait({pump, done}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, done):
                task.cancel()
            for task in (pump, done):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            raise pump.exception()

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
        if self.upgrade:
            await self._until_head_read()

    async def _until_head_read(self, limit: float = 0.2) -> None:
        """Hold the stream until the client has read the 101 head (a unix socket's SIOCOUTQ
        counts what the peer has not read yet). docker-py reads the head through a buffered
        file and then switches to the raw socket: output that arrived with the head would be
        lost in that buffer (an exited container's whole replay, under load)."""
        sock = self.conn.writer.get_extra_info("socket")
        if sock is None or sock.family != socket.AF_UNIX:
            return
        deadline = asyncio.get_running_loop().time() + limit
        while asyncio.get_running_loop().time() < deadline:
            try:
                unread = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                                        b"\0" * 4))[0]
            except OSError:
                return
            if unread == 0:
                return
            await asyncio.sleep(0.002)

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
        """The client's half of the connection: stdin (when attached), then EOF.

        The docker CLI half-closes its side when it has no stdin to send, so EOF here does
        not mean the client left unless stdin was attached; only a failed write (or a
        hang-up) does.
        """
        pending, _closed = self.conn.h11.trailing_data
        if pending and self._stdin(bytes(pending)):
            return
        while True:
            try:
                data = await self.conn.reader.read(64 * 1024)
            except (ConnectionError, OSError):
                data = b""
            if not data:
                self.client_eof.set()
                if self.link is not None:
                    self.link.eof()
                    if self.target.tty or not self.target.stdin_once:
                        self.done.set()  # Docker ends such an attach with its stdin
                return
            if self._stdin(data):
                return

    def _stdin(self, data: bytes) -> bool:
        """Forward client bytes; True once the detach keys were typed (the attach ends)."""
        if self.link is None:
            return False  # stdin not attached, or the container has none: dropped
        detached = False
        if self.scanner is not None:
            data, detached = self.scanner.feed(data)
        self.link.feed(data)
        if detached:
            self.done.set()
        return detached

    def _peer_hung_up(self) -> bool:
        sock = self.conn.writer.get_extra_info("socket")
        if sock is None:
            return False
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLHUP | select.POLLERR)
        return bool(poller.poll(0))

    def _stopped(self, row, initial) -> bool:
        """Has the run this attach carries ended? (`initial`: the row when it attached.)"""
        if row is None:
            return True
        if row["state"] in RUNNING_STATES:
            self.seen_running = True
            return False
        if row["state"] in ENDED:
            # a container that ran when we attached, or that started since, has now ended;
            # one that had ended already has finished again only if finished_at moved
            if initial["state"] in RUNNING_STATES or self.seen_running:
                return True
            return row["finished_at"] != initial["finished_at"] or \
                row["error"] != initial["error"]
        return row["error"] != initial["error"]  # created: a start that failed

    async def _pump(self, pubsub, initial) -> None:
        loop = asyncio.get_running_loop()
        next_check = loop.time() + CHECK_INTERVAL
        self.seen_running = False
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True,
                                               timeout=CHECK_INTERVAL)
            if message is not None and message.get("type") == "message":
                data = message["data"]
                kind, payload = data[:1], data[1:]
                if kind == b"x":
                    return
                self.seen_running = True
                await self.conn.write(self._encode(kind, payload))
                if loop.time() < next_check:
                    continue
            next_check = loop.time() + CHECK_INTERVAL
            if self.client_eof.is_set() and self._peer_hung_up():
                return
            row = await sync_to_async(_current)(self.target.id)
            if self._stopped(row, initial):
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
