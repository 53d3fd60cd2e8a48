"""A container's network namespace as a file: <state root>/netns/<container id>.

The file is a bind mount of a netns (like ``ip netns add`` or Docker's
/var/run/docker/netns/<id>), so the namespace outlives any process in it: the network
layer plumbs it before the container starts, PID 1 joins it (ContainerSpec.netns), and
the embedded resolver opens its sockets in it. Work inside a netns happens in a
short-lived thread that setns() into it: setns(CLONE_NEWNET) moves only the calling
thread, so the worker itself never leaves its own namespace.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from .. import linux as L
from ..nsinit import loopback_up

T = TypeVar("T")


def netns_dir(state_root: str) -> str:
    return os.path.join(state_root, "netns")


def is_netns(path: str) -> bool:
    """Whether ``path`` is a netns file (a mounted nsfs inode, not a left-over empty file)."""
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


def _in_thread(fn: Callable[[], T]) -> T:
    result: dict = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:  # noqa: B036 - handed to the caller
            result["error"] = e

    thread = threading.Thread(target=run, name="dockyard-netns")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result["value"]


def run_in(path: str, fn: Callable[[], T]) -> T:
    """Run ``fn()`` in a thread that has joined the netns at ``path``; return its result.
    Sockets made by ``fn`` stay in that netns."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def joined() -> T:
        L.setns(fd, L.CLONE_NEWNET)
        return fn()

    try:
        return _in_thread(joined)
    finally:
        os.close(fd)


def socket_in(path: str, family: int, type: int, proto: int = 0) -> socket.socket:
    """A socket created inside the netns at ``path``."""
    return run_in(path, lambda: socket.socket(family, type, proto))


def create(path: str) -> bool:
    """Make a new netns with lo up, bind-mounted on ``path``. Idempotent: False when it is
    there already. (/proc/sys/net is the opening thread's netns: written from inside.)"""
    if is_netns(path):
        return False
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o444))

    def unshared() -> None:
        L.unshare(L.CLONE_NEWNET)
        loopback_up()
        # as Docker (20.10+) does: ping without CAP_NET_RAW, also from a user namespace
        with open("/proc/sys/net/ipv4/ping_group_range", "w") as f:
            f.write("0 2147483647")
        L.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None, L.MS_BIND)

    try:
        _in_thread(unshared)
    except BaseException:
        os.unlink(path)
        raise
    return True


def remove(path: str) -> bool:
    """Unmount and delete the netns file (the namespace goes when nothing else holds it).
    Idempotent: False when there was nothing."""
    if is_netns(path):
        L.umount2(path, L.MNT_DETACH)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def listing(state_root: str) -> list[str]:
    """The names (container ids) of the files in <state root>/netns."""
    try:
        return sorted(os.listdir(netns_dir(state_root)))
    except FileNotFoundError:
        return []
