"""Interactive containers with the real docker CLI on a pseudo-terminal (pexpect) and docker-py:
stdin, TTY, resize, signals through the line discipline, detach keys, attach and start -a."""

import contextlib
import json
import os
import secrets
import socket
import struct
import time

import pytest

from .conftest import raw_request

pexpect = pytest.importorskip("pexpect")

IMAGE = "busybox:1.29"
TIMEOUT = 60


def _cli_env(live_stack) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DOCKER_", "DOCKYARD_")) and k != "DATABASE_URL"}
    env.update(DOCKER_CONFIG=str(live_stack.tmp / "docker-config"), DOCKER_BUILDKIT="0",
               DOCKER_CLI_HINTS="false", DOCKER_HOST=live_stack.docker_host, TERM="xterm")
    return env


@pytest.fixture
def spawn(live_stack):
    """spawn("run", "-it", ...) -> a pexpect child running the docker CLI on a 30x100 PTY."""
    from tests.live import docker_cli_path

    children = []

    def make(*args, rows=30, cols=100):
        child = pexpect.spawn(docker_cli_path(), list(args), env=_cli_env(live_stack),
                              dimensions=(rows, cols), timeout=TIMEOUT)
        children.append(child)
        return child

    yield make
    for child in children:
        with contextlib.suppress(Exception):
            child.close(force=True)


def _marker() -> tuple[str, str]:
    """A command that prints a marker the typed line itself does not contain."""
    n = secrets.randbelow(10_000)
    return f"echo m-$(({n}+1))", f"m-{n + 1}"


def _type(child):
    cmd, mark = _marker()
    child.sendline(cmd)
    child.expect_exact(mark)
    return mark


def _wait_state(cli, name, state, timeout=30.0):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        r = cli("inspect", "--format", "{{.State.Status}}", name)
        last = r.stdout.strip()
        if last == state:
            return
        time.sleep(0.2)
    raise AssertionError(f"{name} is {last!r}, not {state!r}")


def _exit_code(child) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


# ----------------------------------------------------------------------------- docker run -it

def test_run_it_output_and_exit_code(spawn, names):
    child = spawn("run", "-it", "--rm", "--name", names("it"), IMAGE, "sh")
    _type(child)
    child.sendline("echo h$((0))i; exit 3")
    child.expect_exact("h0i")
    assert _exit_code(child) == 3


def test_tty_size_follows_the_terminal(spawn, names):
    child = spawn("run", "-it", "--rm", "--name", names("size"), IMAGE, "sh", rows=30, cols=100)
    _type(child)
    child.sendline("stty size")
    child.expect_exact("30 100")
    child.setwinsize(41, 123)  # SIGWINCH: the CLI posts /resize
    deadline = time.monotonic() + 20
    while True:
        child.sendline("stty size")
        if child.expect_exact(["41 123", "30 100"]) == 0:
            break
        assert time.monotonic() < deadline, "the new size never reached the container"
        time.sleep(0.5)
    child.sendline("exit")
    assert _exit_code(child) == 0


def test_ctrl_c_interrupts_the_foreground_process(spawn, names):
    child = spawn("run", "-it", "--rm", "--name", names("intr"), IMAGE, "sh")
    _type(child)
    child.sendline("sleep 100")
    time.sleep(1.0)
    started = time.monotonic()
    child.sendcontrol("c")  # 0x03 on the PTY: the line discipline sends SIGINT
    _type(child)  # the shell answers again: sleep is gone
    assert time.monotonic() - started < 30
    child.sendline("exit 0")
    assert _exit_code(child) == 0


def test_detach_and_reattach(spawn, names, cli):
    name = names("detach")
    child = spawn("run", "-it", "--name", name, IMAGE, "sh")
    _type(child)
    child.send("\x10\x11")  # ctrl-p ctrl-q
    assert _exit_code(child) == 0
    _wait_state(cli, name, "running")
    again = spawn("attach", name)
    time.sleep(0.5)
    _type(again)
    again.sendline("exit 5")
    assert _exit_code(again) == 5
    _wait_state(cli, name, "exited")


def test_custom_detach_keys(spawn, names, cli):
    name = names("keys")
    child = spawn("run", "-it", "--detach-keys", "ctrl-x,x", "--name", name, IMAGE, "sh")
    _type(child)
    child.send("\x10\x11")  # the default keys mean nothing here
    _type(child)
    child.send("\x18x")
    assert _exit_code(child) == 0
    _wait_state(cli, name, "running")
    assert cli("rm", "-f", name).returncode == 0


# ----------------------------------------------------------------------------- without a TTY

def test_piped_stdin(cli, names):
    r = cli("run", "-i", "--rm", "--name", names("pipe"), IMAGE, "cat", input="hello\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"
    # more than the pipes hold, both ways at once: the shim must not stall on either
    data = "".join(f"{i:07d} the quick brown fox jumps over the lazy dog\n" for i in range(20000))
    r = cli("run", "-i", "--rm", "--name", names("big"), IMAGE, "cat", input=data)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


def test_start_attach_created_and_exited(cli, names):
    name = names("starta")
    r = cli("create", "--name", name, IMAGE, "sh", "-c", "echo out; echo err >&2; exit 4")
    assert r.returncode == 0, r.stderr
    for _ in range(2):  # created, then exited
        r = cli("start", "-a", name)
        assert r.returncode == 4
        assert r.stdout == "out\n" and r.stderr == "err\n"


def test_start_attach_interactive(cli, names):
    name = names("startai")
    assert cli("create", "-i", "--name", name, IMAGE, "cat").returncode == 0
    for word in ("foo", "bar"):
        r = cli("start", "-a", "-i", name, input=f"{word}\n")
        assert r.returncode == 0, r.stderr
        assert r.stdout == f"{word}\n"


def test_attach_to_a_stopped_container_is_refused(cli, names):
    name = names("stopped")
    assert cli("run", "--name", name, IMAGE, "true").returncode == 0
    r = cli("attach", name)
    assert r.returncode != 0
    assert "You cannot attach to a stopped container, start it first" in r.stderr


# ----------------------------------------------------------------------------- docker-py

def _frames(sock, until: bytes, timeout=TIMEOUT) -> bytes:
    """Read Docker multiplexed frames until the payload contains `until`."""
    sock.settimeout(timeout)
    buf, out = b"", b""
    while until not in out:
        data = sock.recv(65536)
        if not data:
            break
        buf += data
        while len(buf) >= 8:
            size = struct.unpack(">I", buf[4:8])[0]
            if len(buf) < 8 + size:
                break
            out += buf[8:8 + size]
            buf = buf[8 + size:]
    return out


def _read_to_eof(sock, timeout=TIMEOUT) -> bytes:
    sock.settimeout(timeout)
    out = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return out
        out += data


def test_docker_py_attach_socket_with_stdin(docker_client, names):
    # docker-py's stdin_open also sets StdinOnce: the client's EOF closes the container's stdin
    container = docker_client.containers.create(IMAGE, ["cat"], stdin_open=True,
                                                name=names("pyin"))
    attached = container.attach_socket(params={"stdin": 1, "stdout": 1, "stderr": 1,
                                               "stream": 1})
    sock = attached._sock
    try:
        sock.sendall(b"early\n")  # before the start: kept until the container runs
        container.start()
        assert b"early\n" in _frames(sock, b"early\n")
        sock.sendall(b"ping\n")
        assert _frames(sock, b"ping\n") == b"ping\n"
        sock.shutdown(socket.SHUT_WR)
        _read_to_eof(sock)  # cat saw EOF and exited: the stream ends
    finally:
        sock.close()
    assert container.wait(timeout=TIMEOUT)["StatusCode"] == 0


def test_stdin_eof_without_stdin_once_ends_only_the_attach(live_stack, docker_client, names):
    name = names("keep")
    status, _, body = raw_request(
        live_stack, "POST", f"/v1.41/containers/create?name={name}",
        body=json.dumps({"Image": IMAGE, "Cmd": ["cat"], "OpenStdin": True}),
        headers={"Content-Type": "application/json"})
    assert status == 201, body
    container = docker_client.containers.get(body["Id"])
    container.start()
    attached = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    sock = attached._sock
    try:
        sock.sendall(b"pong\n")
        assert _frames(sock, b"pong\n") == b"pong\n"
        sock.shutdown(socket.SHUT_WR)
        _read_to_eof(sock)  # as in Docker, the attach ends with its stdin...
    finally:
        sock.close()
    container.reload()
    assert container.status == "running"  # ...and the container's stdin stays open
    container.remove(force=True)


def test_docker_py_detach_keys_leave_the_container_running(docker_client, names):
    container = docker_client.containers.run(IMAGE, ["sh"], stdin_open=True, tty=True,
                                             name=names("pydk"), detach=True)
    attached = container.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1,
                                               "detachKeys": "ctrl-x,x"})
    sock = attached._sock
    try:
        sock.sendall(b"echo a$((1))b\n")
        sock.settimeout(TIMEOUT)
        seen = b""
        while b"a1b" not in seen:
            data = sock.recv(4096)
            assert data, "attach closed early"
            seen += data
        sock.sendall(b"\x18x")
        _read_to_eof(sock)  # the server closes the connection
    finally:
        sock.close()
    container.reload()
    assert container.status == "running"
    container.remove(force=True)


def test_attach_waits_for_the_next_start(docker_client, names):
    container = docker_client.containers.run(IMAGE, ["sh", "-c", "echo run"],
                                             name=names("next"), detach=True)
    assert container.wait(timeout=TIMEOUT)["StatusCode"] == 0
    attached = container.attach_socket(params={"stdout": 1, "stream": 1})
    sock = attached._sock
    try:
        sock.settimeout(1.0)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing yet, and not closed: waiting for a start
        container.start()
        assert _frames(sock, b"run\n") == b"run\n"
        assert _read_to_eof(sock) == b""
    finally:
        sock.close()


# ----------------------------------------------------------------------------- resize, errors

def test_resize_endpoint(live_stack, docker_client, names):
    tty = docker_client.containers.run(IMAGE, ["sleep", "600"], tty=True, name=names("rs"),
                                       detach=True)
    plain = docker_client.containers.run(IMAGE, ["sleep", "600"], name=names("rsplain"),
                                         detach=True)
    status, _, _ = raw_request(live_stack, "POST", f"/v1.41/containers/{tty.id}/resize?h=20&w=70")
    assert status == 200
    docker_client.api.resize(tty.id, 25, 90)
    status, _, body = raw_request(live_stack, "POST", f"/v1.41/containers/{tty.id}/resize?h=x&w=1")
    assert status == 400 and "message" in body
    status, _, body = raw_request(live_stack, "POST", f"/v1.41/containers/{tty.id}/resize")
    assert status == 400
    status, _, body = raw_request(live_stack, "POST",
                                  f"/v1.41/containers/{plain.id}/resize?h=20&w=70")
    assert status == 409 and "TTY" in body["message"]
    tty.kill()
    tty.wait(timeout=TIMEOUT)
    status, _, body = raw_request(live_stack, "POST", f"/v1.41/containers/{tty.id}/resize?h=20&w=70")
    assert status == 409 and "is not running" in body["message"]
    status, _, _ = raw_request(live_stack, "POST", "/v1.41/containers/nonexistent/resize?h=1&w=1")
    assert status == 404
    plain.remove(force=True)
    tty.remove(force=True)


def test_invalid_detach_keys(live_stack, docker_client, names):
    container = docker_client.containers.run(IMAGE, ["sleep", "600"], tty=True,
                                             stdin_open=True, name=names("badkeys"), detach=True)
    status, _, body = raw_request(
        live_stack, "POST",
        f"/v1.41/containers/{container.id}/attach?stream=1&stdin=1&detachKeys=ctrl-%C3%A9")
    assert status == 400 and "Invalid detach keys" in body["message"]
    container.remove(force=True)
