"""The Docker API front server: asyncio + h11, on a unix socket and (optionally) TCP.

For every request it authenticates the caller (unix socket: the first active site admin, as
the socket is root-only; TCP: `Authorization: Bearer <token>`), strips the optional `/v1.NN`
prefix, and then either
- answers `/_ping` itself (the CLI pings before every command),
- handles the connection-hijacking endpoints itself (`POST /containers/{id}/attach`,
  `POST /exec/{id}/start`), which ASGI cannot express, or
- hands the request to the API's Django ASGI app in this process (panel.dockerapi.asgi),
  with the user id and its token's team id in the scope, streaming the request body in and
  the response out (chunked when the app gives no Content-Length).
"""

import asyncio
import contextlib
import json
import logging
import os
import re
import socket
import stat
import time
from urllib.parse import unquote

import h11
from asgiref.sync import sync_to_async
from django.conf import settings

from .asgi import TEAM_SCOPE_KEY, USER_SCOPE_KEY
from .common import API_VERSION, DOCKER_HEADERS, MIN_API_VERSION

log = logging.getLogger("dockyard.dockerapi")

READ_SIZE = 64 * 1024
IDLE_TIMEOUT = 300.0  # seconds a keep-alive connection may sit between requests
TOKEN_CACHE_SECONDS = 10.0
MAX_DISCARD = 16 * 1024 * 1024  # body bytes read and dropped before replying to an early error
_VERSION_PREFIX = re.compile(r"^/v(\d+)\.(\d+)(?=/)")
_ATTACH = re.compile(r"^/containers/([^/]+)/attach$")
_EXEC_START = re.compile(r"^/exec/([^/]+)/start$")
_HEADERS = [(k.encode(), v.encode()) for k, v in DOCKER_HEADERS.items()]


def _version_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


_MAX_VERSION = _version_tuple(API_VERSION)
_MIN_VERSION = _version_tuple(MIN_API_VERSION)


class ClientGone(Exception):
    pass


# ---------------------------------------------------------------------------- one connection

class HttpConnection:
    def __init__(self, server: "ApiServer", reader, writer, transport: str):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.transport = transport  # "unix" or "tcp"
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        self.client_gone = False
        self.last_request = ""
        self.method = ""
        self._token_cache: tuple[str, object, float] | None = None  # key, Caller, when
        peer = writer.get_extra_info("peername")
        sock = writer.get_extra_info("sockname")
        if transport == "tcp" and isinstance(peer, tuple):
            self.client, self.server_addr = (peer[0], peer[1]), (sock[0], sock[1])
        else:
            self.client, self.server_addr = None, None

    # -- low level ---------------------------------------------------------------
    async def next_event(self):
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(READ_SIZE)
                if not data:
                    self.client_gone = True
                self.h11.receive_data(data)
                continue
            return event

    async def write(self, data: bytes) -> None:
        if not data:
            return
        if self.writer.is_closing():
            raise ClientGone()
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ClientGone() from exc

    async def send(self, event) -> None:
        await self.write(self.h11.send(event) or b"")

    async def discard_body(self) -> bool:
        """Read the rest of the request body; False if it was too big or the client left."""
        seen = 0
        while self.h11.their_state is h11.SEND_BODY:
            try:
                event = await self.next_event()
            except h11.RemoteProtocolError:
                return False
            if isinstance(event, h11.Data):
                seen += len(event.data)
                if seen > MAX_DISCARD:
                    return False
            elif isinstance(event, h11.ConnectionClosed):
                return False
        return True

    async def respond(self, status: int, body: bytes, content_type: str = "application/json",
                      extra: list | None = None, head: bool = False) -> None:
        """A complete response from the server itself (errors, ping)."""
        headers = [(b"Content-Type", content_type.encode()),
                   (b"Content-Length", str(len(body)).encode()), *_HEADERS, *(extra or [])]
        await self.send(h11.Response(status_code=status, headers=headers))
        if body and not head and self.method != "HEAD":
            await self.send(h11.Data(data=body))
        await self.send(h11.EndOfMessage())

    async def respond_error(self, status: int, message: str, extra: list | None = None) -> None:
        from panel.audit import context, services

        bound = context.current()
        if bound is not None and bound.refusals:  # audited before the client hears of it
            await sync_to_async(services.flush)()
        await self.discard_body()
        body = json.dumps({"message": message}).encode() + b"\n"
        await self.respond(status, body, extra=extra)

    # -- the request loop --------------------------------------------------------
    async def run(self) -> None:
        try:
            while True:
                try:
                    event = await asyncio.wait_for(self.next_event(), IDLE_TIMEOUT)
                except TimeoutError:
                    break
                except h11.RemoteProtocolError as exc:
                    if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        body = json.dumps({"message": f"bad request: {exc}"}).encode()
                        with contextlib.suppress(Exception):
                            await self.respond(exc.error_status_hint, body,
                                               extra=[(b"connection", b"close")])
                    break
                if isinstance(event, h11.Request):
                    hijacked = await self.handle(event)
                    if hijacked:
                        break
                    if self.h11.their_state is h11.SEND_BODY:
                        if not await self.discard_body():
                            break
                    if self.client_gone:
                        break
                    if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
                        self.h11.start_next_cycle()
                        continue
                    break
                break  # ConnectionClosed, or anything unexpected between requests
        except (ClientGone, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("Docker API connection failed (last request: %s)", self.last_request)
        finally:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def authenticate(self, headers: dict):
        """The Caller (panel.teams.tokens) the request acts as, or None and why not."""
        from panel.teams import tokens

        if self.transport == "unix":
            caller = await sync_to_async(tokens.site_admin_caller)()
            if caller is None:
                return None, "no active site admin exists: run `manage.py bootstrap` first"
            return caller, ""
        auth = headers.get(b"authorization", b"").decode("latin-1").strip()
        scheme, _, key = auth.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return None, ("authentication required: send `Authorization: Bearer <token>` "
                          "(docker CLI: HttpHeaders in config.json)")
        now = time.monotonic()
        cached = self._token_cache
        if cached and cached[0] == key and now - cached[2] < TOKEN_CACHE_SECONDS:
            return cached[1], ""
        caller, problem = await sync_to_async(tokens.authenticate)(
            key, address=self.client[0] if self.client else None,
            user_agent=headers.get(b"user-agent", b"").decode("latin-1"))
        if caller is None:
            self._token_cache = None
            return None, problem
        self._token_cache = (key, caller, now)
        return caller, ""

    async def handle(self, request: h11.Request) -> bool:
        """Serve one request. True if the connection was hijacked (and is now finished)."""
        method = request.method.decode("ascii", "replace").upper()
        target = request.target.decode("latin-1")
        self.last_request = f"{method} {target}"
        self.method = method
        raw_path, _, query = target.partition("?")
        headers = {}
        header_list = []
        for name, value in request.headers:
            headers[name] = value
            header_list.append((name, value))
        path = raw_path
        match = _VERSION_PREFIX.match(path)
        if match:
            version = (int(match.group(1)), int(match.group(2)))
            path = path[match.end():]
            if version > _MAX_VERSION:
                await self.respond_error(400, f"client version {match.group(1)}.{match.group(2)} "
                                         "is too new. Maximum supported API version is "
                                         f"{API_VERSION}")
                return False
            if version < _MIN_VERSION:
                await self.respond_error(400, f"client version {match.group(1)}.{match.group(2)} "
                                         "is too old. Minimum supported API version is "
                                         f"{MIN_API_VERSION}, please upgrade your client to a "
                                         "newer version")
                return False
        caller, problem = await self.authenticate(headers)
        if caller is None:
            await self.respond_error(401, problem, extra=[(b"www-authenticate", b"Bearer")])
            return False
        if path == "/_ping" and method in ("GET", "HEAD"):
            await self.discard_body()
            # Builder-Version 1: only the classic builder (POST /build); clients that consult
            # it (compose, CLIs before 23) then do not try BuildKit's /session and /grpc.
            extra = [(b"cache-control", b"no-cache, no-store, must-revalidate"),
                     (b"pragma", b"no-cache"), (b"builder-version", b"1")]
            await self.respond(200, b"OK", content_type="text/plain; charset=utf-8",
                               extra=extra, head=method == "HEAD")
            return False
        attach = _ATTACH.match(path)
        if attach and method == "POST":
            from .attach import Attach

            async with self.audit_bound(headers, "POST /containers/<str:ref>/attach"):
                await Attach(self, unquote(attach.group(1)), query, headers, caller).run()
            return True
        exec_start = _EXEC_START.match(path)
        if exec_start and method == "POST":
            from .exec_stream import ExecStart

            async with self.audit_bound(headers, "POST /exec/<str:exec_id>/start"):
                return await ExecStart(self, unquote(exec_start.group(1)), headers,
                                       caller).run()
        await self.asgi(method, path, raw_path, query, header_list, caller)
        return False

    @contextlib.asynccontextmanager
    async def audit_bound(self, headers: dict, route: str):
        """The audit context of a hijacked request (the ASGI ones get theirs in the endpoint
        wrapper, from the scope's client and headers); its refusals are written at the end."""
        from panel.audit import context, services

        user_agent = headers.get(b"user-agent", b"").decode("latin-1")
        with context.bound("api", address=self.client[0] if self.client else None,
                           user_agent=user_agent, route=route):
            try:
                yield
            finally:
                await sync_to_async(services.flush)()

    # -- Django ------------------------------------------------------------------
    async def asgi(self, method, path, raw_path, query, header_list, caller) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(path),
            "raw_path": raw_path.encode("latin-1"),
            "query_string": query.encode("latin-1"),
            "root_path": "",
            "headers": header_list,
            "client": self.client,
            "server": self.server_addr,
            USER_SCOPE_KEY: caller.user_id,
            TEAM_SCOPE_KEY: caller.team_id,
        }
        body_done = False
        response_started = False
        response_done = False
        no_body = method == "HEAD"

        async def receive():
            nonlocal body_done
            if not body_done:
                try:
                    event = await self.next_event()
                except h11.RemoteProtocolError:
                    self.client_gone = True
                    return {"type": "http.disconnect"}
                if isinstance(event, h11.Data):
                    return {"type": "http.request", "body": bytes(event.data), "more_body": True}
                if isinstance(event, h11.EndOfMessage):
                    body_done = True
                    return {"type": "http.request", "body": b"", "more_body": False}
                self.client_gone = True
                return {"type": "http.disconnect"}
            # The request is complete: the only thing left to report is a disconnect.
            while not self.client_gone:
                try:
                    data = await self.reader.read(READ_SIZE)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    self.client_gone = True
                    break
                self.h11.receive_data(data)  # a pipelined request, kept for the next cycle
            return {"type": "http.disconnect"}

        async def send(message):
            # After a disconnect, sends are dropped (ASGI): Django learns of it from receive().
            if self.client_gone:
                return
            try:
                await _send(message)
            except ClientGone:
                self.client_gone = True

        async def _send(message):
            nonlocal response_started, response_done, no_body
            kind = message["type"]
            if kind == "http.response.start":
                response_started = True
                status = message["status"]
                no_body = no_body or status in (204, 304) or status < 200
                headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
                names = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in _HEADERS if k.lower() not in names]
                await self.send(h11.Response(status_code=status, headers=headers))
            elif kind == "http.response.body":
                body = message.get("body", b"")
                if body and not no_body:
                    await self.send(h11.Data(data=body))
                if not message.get("more_body", False):
                    await self.send(h11.EndOfMessage())
                    response_done = True

        try:
            await self.server.app(scope, receive, send)
        except ClientGone:
            self.client_gone = True
            return
        except h11.LocalProtocolError:
            log.exception("Docker API: the app sent an invalid response")
            self.client_gone = True
            return
        if not response_started:
            await self.respond_error(500, "internal error: no response")
        elif not response_done:
            self.client_gone = True  # the app stopped mid-response: the connection is unusable


# ---------------------------------------------------------------------------- the server

def _parse_tcp(spec: str) -> tuple[str, int]:
    host, sep, port = spec.rpartition(":")
    if not sep:
        raise ValueError(f"API TCP address must be host:port, not {spec!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _prepare_unix_path(path: str) -> None:
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, mode=0o755, exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RuntimeError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1)
        probe.connect(path)
    except OSError:
        os.unlink(path)  # stale: nothing listens
    else:
        raise RuntimeError(f"another server already listens on {path}")
    finally:
        probe.close()


class ApiServer:
    def __init__(self, app, *, unix_path: str | None = None, tcp: str | None = None):
        self.app = app
        self.unix_path = unix_path or None
        self.tcp = tcp or None
        self._servers: list[asyncio.AbstractServer] = []
        self._connections: set[asyncio.Task] = set()

    async def start(self) -> None:
        if self.unix_path:
            _prepare_unix_path(self.unix_path)
            old_umask = os.umask(0o117)
            try:
                server = await asyncio.start_unix_server(
                    lambda r, w: self._accept(r, w, "unix"), path=self.unix_path,
                    limit=READ_SIZE)
            finally:
                os.umask(old_umask)
            os.chmod(self.unix_path, 0o660)
            if os.geteuid() == 0:
                os.chown(self.unix_path, 0, 0)
            self._servers.append(server)
            log.info("Docker API listening on unix://%s", self.unix_path)
        if self.tcp:
            host, port = _parse_tcp(self.tcp)
            server = await asyncio.start_server(lambda r, w: self._accept(r, w, "tcp"),
                                                host=host, port=port, limit=READ_SIZE)
            self._servers.append(server)
            for sock in server.sockets:
                bound = sock.getsockname()
                log.info("Docker API listening on tcp://%s:%d (bearer tokens)", bound[0], bound[1])
        if not self._servers:
            raise RuntimeError("neither a unix socket nor a TCP address to listen on")

    async def _accept(self, reader, writer, transport: str) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            await HttpConnection(self, reader, writer, transport).run()
        finally:
            self._connections.discard(task)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 5)
        self._servers.clear()
        if self.unix_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)


async def serve(app, *, unix_path: str | None = None, tcp: str | None = None,
                stop: asyncio.Event | None = None) -> None:
    server = ApiServer(app, unix_path=unix_path, tcp=tcp)
    await server.start()
    stop = stop or asyncio.Event()
    try:
        await stop.wait()
    finally:
        await server.close()


def default_addresses() -> tuple[str, str]:
    return settings.API_SOCKET, settings.API_TCP
