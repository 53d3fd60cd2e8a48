"""Client side of the shim's exec commands (see ``workers.runtime.shimexec``).

Plain Python, no Django: used by the Docker API's exec stream, the panel's exec terminal
and the runtime tests. ``open_exec`` starts a process in a running container and returns
the shim connection that carries it (blocking); ``aopen_exec`` is the asyncio variant.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket

STDOUT, STDERR, EXIT = b"1", b"2", b"x"
STDIN, CLOSE_STDIN, RESIZE = b"0", b"c", b"r"


class ExecError(Exception):
    """The exec could not start. ``code``: the exit code Docker reports for it (126/127),
    or an HTTP-like status (400 bad spec, 404 no container, 409 not running/paused)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def frame(kind: bytes, data: bytes = b"") -> bytes:
    return kind + len(data).to_bytes(4, "big") + data


def shim_socket_path(cdir: str) -> str:
    return os.path.join(cdir, "shim.sock")


def _connect(cdir: str, timeout: float | None) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        # sun_path is limited to 107 bytes: connect through an O_PATH fd
        path_fd = os.open(shim_socket_path(cdir), os.O_PATH | os.O_CLOEXEC)
        try:
            s.connect(f"/proc/self/fd/{path_fd}")
        finally:
            os.close(path_fd)
    except (FileNotFoundError, ConnectionRefusedError):
        s.close()
        cid = os.path.basename(cdir.rstrip("/"))
        raise ExecError(409, f"Container {cid} is not running") from None
    except BaseException:
        s.close()
        raise
    return s


def _line(s: socket.socket) -> bytes:
    """The shim's reply line; b"" if it closed (or reset) the connection: it is finishing."""
    reply = b""
    try:
        while not reply.endswith(b"\n"):
            ch = s.recv(1)
            if not ch:
                break
            reply += ch
    except (ConnectionResetError, BrokenPipeError):
        return b""
    return reply


def _parse_reply(reply: bytes, cdir: str) -> int:
    text = reply.decode("utf-8", "replace").strip()
    if text.startswith("ok "):
        return int(text.split()[1])
    if text.startswith("error "):
        code, _, message = text[6:].partition(" ")
        if code.isdigit():
            raise ExecError(int(code), message)
        raise ExecError(126, text[6:])
    cid = os.path.basename(cdir.rstrip("/"))
    raise ExecError(409, f"Container {cid} is not running")  # the shim closed: it finished


def exec_spec(exec_id: str, args: list[str], *, env=None, user: str = "", cwd: str = "",
              tty: bool = False, stdin: bool = False, detach: bool = False, rows: int = 0,
              cols: int = 0, privileged: bool = False) -> dict:
    """``privileged``: docker exec --privileged (all capabilities, see security.Process)."""
    return {"id": exec_id, "args": list(args), "env": list(env or []), "user": user or "",
            "cwd": cwd or "", "tty": bool(tty), "stdin": bool(stdin), "detach": bool(detach),
            "rows": int(rows or 0), "cols": int(cols or 0), "privileged": bool(privileged)}


def _command(spec: dict) -> bytes:
    # JSON with only ASCII and no newline: one command line for the shim
    return b"exec " + json.dumps(spec, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def open_exec(cdir: str, spec: dict, timeout: float = 10.0) -> tuple[socket.socket, int]:
    """Start the exec; returns (the shim connection, the process's pid). With
    ``spec["detach"]`` the connection is already closed by the shim. Raises ExecError."""
    s = _connect(cdir, timeout)
    try:
        try:
            s.sendall(_command(spec))
        except (ConnectionResetError, BrokenPipeError):
            pass  # the reply (none) says why
        pid = _parse_reply(_line(s), cdir)
    except BaseException:
        s.close()
        raise
    return s, pid


def resize(cdir: str, exec_id: str, rows: int, cols: int, timeout: float = 5.0) -> str:
    """``ok``, or the shim's error (``error no such exec`` before it started/after it ended)."""
    s = _connect(cdir, timeout)
    try:
        s.sendall(f"exec-resize {exec_id} {int(rows)} {int(cols)}\n".encode())
        return _line(s).decode("utf-8", "replace").strip()
    finally:
        s.close()


def read_frames(s: socket.socket):
    """Yield (kind, payload) from a blocking exec connection until ``x`` (included)."""
    buf = b""
    while True:
        while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[1:5], "big"):
            size = int.from_bytes(buf[1:5], "big")
            kind, payload, buf = buf[:1], buf[5:5 + size], buf[5 + size:]
            yield kind, payload
            if kind == EXIT:
                return
        data = s.recv(65536)
        if not data:
            return
        buf += data


def run(cdir: str, args: list[str], *, input: bytes | None = None, timeout: float = 30.0,
        **kw) -> tuple[int, bytes, bytes]:
    """Run ``args`` in the container and collect (exit code, stdout, stderr)."""
    import secrets

    spec = exec_spec(secrets.token_hex(32), args, stdin=input is not None, **kw)
    s, _pid = open_exec(cdir, spec, timeout)
    out, err, code = [], [], -1
    try:
        if input is not None:
            s.sendall(frame(STDIN, input) + frame(CLOSE_STDIN))
        for kind, payload in read_frames(s):
            if kind == STDOUT:
                out.append(payload)
            elif kind == STDERR:
                err.append(payload)
            elif kind == EXIT:
                code = int(payload)
    finally:
        s.close()
    return code, b"".join(out), b"".join(err)


# -- asyncio ---------------------------------------------------------------------------------
async def aopen_exec(cdir: str, spec: dict, timeout: float = 10.0):
    """asyncio: -> (reader, writer, pid). Raises ExecError."""
    path_fd = -1
    try:
        path_fd = os.open(shim_socket_path(cdir), os.O_PATH | os.O_CLOEXEC)
        reader, writer = await asyncio.wait_for(
            asyncio.open_unix_connection(f"/proc/self/fd/{path_fd}"), timeout)
    except (FileNotFoundError, ConnectionRefusedError):
        cid = os.path.basename(cdir.rstrip("/"))
        raise ExecError(409, f"Container {cid} is not running") from None
    finally:
        if path_fd >= 0:
            os.close(path_fd)
    try:
        try:
            writer.write(_command(spec))
            await writer.drain()
            reply = await asyncio.wait_for(reader.readline(), timeout)
        except (ConnectionResetError, BrokenPipeError):
            reply = b""
        pid = _parse_reply(reply, cdir)
    except BaseException:
        writer.close()
        raise
    return reader, writer, pid


async def aread_frame(reader) -> tuple[bytes, bytes]:
    """One frame; (b"", b"") at EOF."""
    try:
        head = await reader.readexactly(5)
        payload = await reader.readexactly(int.from_bytes(head[1:5], "big"))
    except asyncio.IncompleteReadError:
        return b"", b""
    return head[:1], payload
