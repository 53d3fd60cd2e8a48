"""The shim's control socket: a client that stopped waiting is forgotten, so the next client
to get its file descriptor number does not receive the exit meant for the waiter."""

import os
import signal
import socket
import time


def _connect(rt, cid) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path_fd = os.open(os.path.join(rt._dir(cid), "shim.sock"), os.O_PATH | os.O_CLOEXEC)
    try:
        s.connect(f"/proc/self/fd/{path_fd}")
    finally:
        os.close(path_fd)
    s.settimeout(10)
    return s


def test_a_gone_waiter_leaves_no_exit_for_the_next_client(rt, make_spec):
    spec = make_spec(["sleep", "60"])
    cid = spec.id
    rt.create(spec)
    pid = rt.start(cid)
    waiter = _connect(rt, cid)
    waiter.sendall(b"wait\n")
    time.sleep(0.2)  # the shim has registered the waiter
    waiter.close()
    time.sleep(0.2)  # and seen it hang up
    bystander = _connect(rt, cid)  # likely the same fd number in the shim
    time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    assert rt.wait(cid, 10) == 137
    assert bystander.recv(64) == b""  # closed at the exit, with nothing meant for a waiter
    bystander.close()
    rt.remove(cid, force=True)
