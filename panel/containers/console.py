"""A container's console: who may use it, and the way to its shim (stdin, TTY size).

Output travels through Redis (`dockyard:output:<id>`, published by the shim), so it reaches
any process on any node. Input and resizes go to the container's shim, on the node that
runs it, through its control socket (see workers/runtime/shim.py). Every such access goes
through `_node_console` below: today the API server and the panel run on the node itself
and talk to the shim's socket; a multi-node version routes that one function to the
container's node (e.g. a small relay in its worker) without touching the callers
(panel/dockerapi/attach.py, panel/events/terminal.py).
"""

import asyncio
import socket

from panel.audit import services as audit
from panel.errors import Conflict, InvalidParameter
from panel.teams.services import check_permission, has_permission

from .models import Container

MAX_TTY_SIZE = 10_000


class NotRunning(Conflict):
    pass


def tty_and_stdin(container: Container) -> tuple[bool, bool]:
    """(Tty, OpenStdin) as the container was created."""
    config = container.spec.get("Config") or {}
    return bool(config.get("Tty")), bool(config.get("OpenStdin"))


def stdin_once(container: Container) -> bool:
    return bool((container.spec.get("Config") or {}).get("StdinOnce"))


def may_write(user, container: Container) -> bool:
    """Typing into a container (stdin, resize) is operating it; seeing its output is not."""
    return has_permission(user, container.team, "operate")


def open_session(*, acting_user, container: Container, stdin: bool, source: str) -> None:
    """Check an attach (API) or terminal (panel) session; one with stdin is audited."""
    if not stdin:
        return
    check_permission(acting_user, container.team, "operate")
    audit.record("container.attach", actor=acting_user, team=container.team,
                 obj_type="container", obj_id=container.id, obj_repr=container.name,
                 after={"stdin": True}, source=source)


def check_resize(*, acting_user, container: Container, rows, cols) -> tuple[int, int]:
    check_permission(acting_user, container.team, "operate")
    try:
        rows, cols = int(rows), int(cols)
    except (TypeError, ValueError):
        raise InvalidParameter(f"invalid TTY size: {rows!r}x{cols!r}") from None
    if not (0 <= rows <= MAX_TTY_SIZE and 0 <= cols <= MAX_TTY_SIZE):
        raise InvalidParameter(f"invalid TTY size: {rows}x{cols}")
    return rows, cols


# ------------------------------------------------------------------------ the node's shims

def _node_console(container_id: str, command: str) -> socket.socket:
    """A connection to the shim of a container on this node, `command` sent (and, for the
    streaming commands, its `ok` read). The one place that reaches a node's shims."""
    from workers.node import runtime
    from workers.runtime.container import RuntimeError_

    try:
        return runtime().connect(container_id, command)
    except (FileNotFoundError, ConnectionRefusedError):  # no shim (any more): not running
        raise NotRunning(f"Container {container_id} is not running") from None
    except RuntimeError_ as exc:
        text = str(exc)
        if "not running" in text or "No such container" in text:
            raise NotRunning(f"Container {container_id} is not running") from None
        raise Conflict(text) from None


async def open_stdin(container_id: str, *, once: bool):
    """An asyncio (reader, writer) whose bytes go to the container's stdin (or PTY). With
    `once`, closing it closes the container's stdin (no TTY: Docker's StdinOnce)."""
    sock = await asyncio.to_thread(_node_console, container_id,
                                   "stdin-once" if once else "stdin")
    sock.setblocking(False)
    try:
        return await asyncio.open_unix_connection(sock=sock)
    except BaseException:
        sock.close()
        raise


def resize_sync(container_id: str, rows: int, cols: int) -> None:
    sock = _node_console(container_id, f"resize {rows} {cols}")
    try:
        reply = b""
        while not reply.endswith(b"\n"):
            data = sock.recv(256)
            if not data:
                break
            reply += data
    finally:
        sock.close()
    text = reply.decode("utf-8", "replace").strip()
    if text != "ok":
        if "no tty" in text:
            raise Conflict(f"Container {container_id} has no TTY to resize")
        raise Conflict(f"cannot resize the TTY of {container_id}: {text or 'no answer'}")


async def resize(container_id: str, rows: int, cols: int) -> None:
    await asyncio.to_thread(resize_sync, container_id, rows, cols)

