"""POST /exec/{id}/start: run an exec instance; without Detach, hijack the connection.

The body is `{"Detach": bool, "Tty": bool, "ConsoleSize": [h, w]}`. The process is
started by the container's shim (workers/runtime/shimexec.py) over its control socket;
that connection then carries the exec's streams, framed (`1`/`2` output, `x` exit code
one way; `0` stdin, `c` close stdin, `r` resize the other way).

- Detach: the shim starts the process with /dev/null for stdio; 200 with no body. Its
  exit code reaches the database from the shim's event (panel/events/bridge.py).
- Otherwise the reply is `101 UPGRADED` (with `Upgrade: tcp`, else `200 OK`), then the
  process is started and the connection carries the output: Docker's
  multiplexed frames without a TTY, raw bytes with one; the client's bytes go to the
  process's stdin when AttachStdin (its EOF closes stdin; with a TTY the detach keys,
  default ctrl-p,ctrl-q, end the session and leave the process running). A failure to
  start the process itself (missing executable: 127, permission denied or unknown user:
  126) is written into the stream as Docker does, and recorded as the exit code. The exit
  code is recorded in the database *before* the connection closes: the docker CLI reads it
  from `GET /exec/{id}/json` as soon as the stream ends.

Exec output never goes to the container's log (as in Docker).
"""

import asyncio
import contextlib
import json
import logging

import h11
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied

from panel.containers import execs
from panel.errors import DockyardError

from . import logs
from .server import ClientGone

log = logging.getLogger("dockyard.dockerapi")

MAX_BODY = 64 * 1024


def _claim(caller, exec_id: str, detach: bool, rows: int, cols: int):
    user = caller.load_user()
    instance = execs.visible(user, exec_id)
    spec = execs.begin(acting_user=user, instance=instance, detach=detach, rows=rows, cols=cols)
    return instance, spec


def _start_error_status(code: int, message: str) -> int:
    if code in (400, 404, 409):
        return code
    if code == 127 or "permission denied" in message:
        return 400
    return 500


class ExecStart:
    def __init__(self, conn, exec_id: str, headers: dict, caller):
        self.conn = conn
        self.exec_id = exec_id
        self.upgrade = headers.get(b"upgrade", b"").lower() == b"tcp"
        self.caller = caller

    async def _body(self) -> dict | None:
        raw = b""
        while self.conn.h11.their_state is h11.SEND_BODY:
            event = await self.conn.next_event()
            if isinstance(event, h11.Data):
                raw += event.data
                if len(raw) > MAX_BODY:
                    return None
            elif not isinstance(event, h11.EndOfMessage):
                return None
        if not raw.strip():
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    async def run(self) -> bool:
        """True if the connection was hijacked (and is finished)."""
        from workers.runtime.execs import ExecError, aopen_exec, open_exec

        conn = self.conn
        try:
            body = await self._body()
        except (ValueError, UnicodeDecodeError) as exc:
            await conn.respond_error(400, f"malformed JSON in request body: {exc}")
            return False
        if body is None:
            await conn.respond_error(400, "malformed request body")
            return False
        detach = bool(body.get("Detach"))
        size = body.get("ConsoleSize") or [0, 0]
        try:
            rows, cols = execs.check_size(*(list(size) + [0, 0])[:2])
            instance, spec = await sync_to_async(_claim)(self.caller, self.exec_id, detach,
                                                         rows, cols)
        except DockyardError as exc:
            await conn.respond_error(exc.status, exc.message)
            return False
        except PermissionDenied as exc:
            await conn.respond_error(403, str(exc) or "permission denied")
            return False
        except TypeError:
            await conn.respond_error(400, f"invalid ConsoleSize: {size!r}")
            return False
        self.instance = instance
        self.tty = bool(spec["tty"])
        cdir = execs.exec_dir(instance.container_id)
        if detach:
            try:
                sock, pid = await asyncio.to_thread(open_exec, cdir, spec)
                sock.close()
            except ExecError as exc:
                await sync_to_async(execs.finished)(instance.id, exc.code if exc.code < 256
                                                    else 126, exc.message)
                await conn.respond_error(_start_error_status(exc.code, exc.message), exc.message)
                return False
            await sync_to_async(execs.started)(instance.id, pid)
            await conn.respond(200, b"", content_type="application/json")
            return False
        # The reply goes out before the process starts (as Docker does): a client that reads
        # the reply's head through a buffer (docker-py) must not find output in it.
        try:
            await self._reply()
        except (ClientGone, ConnectionError, OSError):
            await sync_to_async(execs.finished)(instance.id, 126, "the client left")
            return True
        try:
            reader, writer, pid = await aopen_exec(cdir, spec)
        except ExecError as exc:
            # the process could not start: Docker reports it inside the stream
            code = exc.code if exc.code < 256 else 126
            await sync_to_async(execs.finished)(instance.id, code, exc.message)
            with contextlib.suppress(ClientGone, ConnectionError, OSError):
                await conn.write(self._encode(b"1", exc.message.encode() + b"\r\n"))
            return True
        await sync_to_async(execs.started)(instance.id, pid)
        try:
            await self._pump(reader, writer)
        except (ClientGone, ConnectionError, OSError):
            pass
        except Exception:
            log.exception("exec %s failed", instance.id)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        return True

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
        if self.tty:
            return payload
        return logs.frame(1 if kind == b"1" else 2, payload)

    async def _pump(self, reader, writer) -> None:
        from workers.runtime.execs import aread_frame

        config = self.instance.config
        stdin = bool(config.get("AttachStdin"))
        feeder = asyncio.create_task(self._feed(writer, stdin))
        try:
            while True:
                read = asyncio.create_task(aread_frame(reader))
                done, _ = await asyncio.wait({read, feeder}, return_when=asyncio.FIRST_COMPLETED)
                if read not in done:  # the client detached (detach keys) or left
                    read.cancel()
                    with contextlib.suppress(BaseException):
                        await read
                    return
                kind, payload = read.result()
                if kind == b"x":
                    code = int(payload or b"137")
                    await sync_to_async(execs.finished)(self.instance.id, code)
                    return
                if not kind:  # the shim went away without an exit code
                    await sync_to_async(execs.finished)(self.instance.id, 137,
                                                        "the container's shim went away")
                    return
                want = config.get("AttachStdout") if kind == b"1" else \
                    config.get("AttachStderr")
                if want or self.tty:
                    await self.conn.write(self._encode(kind, payload))
        finally:
            if not feeder.done():
                feeder.cancel()
            with contextlib.suppress(BaseException):
                await feeder

    async def _feed(self, writer, stdin: bool) -> None:
        """The client's half: stdin (when attached) to the shim; returns when the session
        must end (detach keys, or the client hung up); waits forever after a plain EOF."""
        from workers.runtime.execs import CLOSE_STDIN, STDIN, frame

        keys = execs.detach_key_bytes(self.instance.config.get("DetachKeys", "")) \
            if self.tty and stdin else b""
        matched = 0
        pending, _closed = self.conn.h11.trailing_data
        first = bytes(pending)
        while True:
            if first:
                data, first = first, b""
            else:
                data = await self.conn.reader.read(64 * 1024)
            if not data:
                if stdin:
                    writer.write(frame(CLOSE_STDIN))
                    await writer.drain()
                await asyncio.Event().wait()  # the CLI half-closes: keep sending output
            if not stdin:
                continue
            if keys:
                out = bytearray()
                for b in data:
                    if b == keys[matched]:
                        matched += 1
                        if matched == len(keys):
                            if out:
                                writer.write(frame(STDIN, bytes(out)))
                                await writer.drain()
                            return
                        continue
                    if matched:
                        out += keys[:matched]
                        matched = 0
                    if b == keys[0]:
                        matched = 1
                        continue
                    out.append(b)
                data = bytes(out)
            if data:
                writer.write(frame(STDIN, data))
                await writer.drain()
