"""`docker top` (ps emulated with psutil on the node) and `docker run --init` (tini)."""

import json
import os
import time

import psutil
import pytest

from .conftest import raw_request

IMAGE = "busybox:1.29"
needs_tini = pytest.mark.skipif(not os.path.isfile("/usr/bin/tini-static"),
                                reason="Debian's tini not installed")


def _ok(r):
    assert r.returncode == 0, r.stderr
    return r.stdout


def _inspect(cli, name):
    return json.loads(_ok(cli("inspect", name)))[0]


def _table(text):
    lines = text.splitlines()
    return lines[0].split(), [line.split(None, len(lines[0].split()) - 1) for line in lines[1:]]


def _wait_rows(cli, name, count, *args, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        titles, rows = _table(_ok(cli("top", name, *args)))
        if len(rows) == count or time.monotonic() > deadline:
            return titles, rows
        time.sleep(0.2)


def test_top_default_and_ps_options(cli, names, live_stack):
    name = names("top")
    _ok(cli("run", "-d", "--name", name, IMAGE, "sh", "-c", "sleep 600 & sleep 601 & wait"))
    pid = _inspect(cli, name)["State"]["Pid"]
    titles, rows = _wait_rows(cli, name, 3)
    assert titles == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert [r[1] for r in rows][0] == str(pid)  # host pids, as Docker shows them
    assert rows[0][7] == "sh -c sleep 600 & sleep 601 & wait"
    assert [r[7] for r in rows[1:]] == ["sleep 600", "sleep 601"]
    assert all(r[0] == "root" and r[5] == "?" for r in rows)
    assert all(r[2] == str(pid) for r in rows[1:])

    titles, rows = _table(_ok(cli("top", name, "aux")))
    assert titles == ["USER", "PID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START",
                      "TIME", "COMMAND"]
    assert rows[0][7].startswith("S") and "s" in rows[0][7]  # PID 1 leads its session
    assert int(rows[0][5]) > 0  # RSS in KiB

    titles, rows = _table(_ok(cli("top", name, "-o", "pid,comm")))
    assert titles == ["PID", "COMMAND"]
    assert [r[1] for r in rows] == ["sh", "sleep", "sleep"]
    titles, _ = _table(_ok(cli("top", name, "-ef")))
    assert titles[:3] == ["UID", "PID", "PPID"]
    titles, _ = _table(_ok(cli("top", name, "-o", "pid,user,stat,etime,args")))
    assert titles == ["PID", "USER", "STAT", "ELAPSED", "COMMAND"]

    # unknown options: 500 with a clear message
    r = cli("top", name, "-Z")
    assert r.returncode != 0 and "unsupported option" in r.stderr
    status, _, body = raw_request(live_stack, "GET",
                                  f"/v1.41/containers/{name}/top?ps_args=-o%20nosuch")
    assert status == 500 and "nosuch" in body["message"]
    status, _, body = raw_request(live_stack, "GET",
                                  f"/v1.41/containers/{name}/top?ps_args=-o%20comm")
    assert status == 500 and "Couldn't find PID field" in body["message"]
    _ok(cli("stop", "-t", "0", name))
    r = cli("top", name)
    assert r.returncode != 0 and "is not running" in r.stderr
    status, _, body = raw_request(live_stack, "GET", f"/v1.41/containers/{name}/top")
    assert status == 409


def test_top_through_docker_py(docker_client, names):
    c = docker_client.containers.run(IMAGE, ["sleep", "600"], name=names("toppy"), detach=True)
    top = c.top()
    assert top["Titles"][1] == "PID" and top["Processes"][0][7] == "sleep 600"
    assert c.top(ps_args="aux")["Titles"][0] == "USER"
    c.remove(force=True)


ORPHANS = "for i in 1 2 3 4 5; do (sleep 0.1 &); done; exec sleep 600"


def _zombies(pid):
    """Zombies among the descendants of the container's PID 1 (host's view, psutil)."""
    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return -1
    return sum(1 for p in tree if p.status() == psutil.STATUS_ZOMBIE)


def _settled_zombies(pid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        n = _zombies(pid)
        if n == want or time.monotonic() > deadline:
            return n
        time.sleep(0.2)


@needs_tini
def test_init_reaps_zombies(cli, names):
    bare, init = names("noinit"), names("init")
    _ok(cli("run", "-d", "--name", bare, IMAGE, "sh", "-c", ORPHANS))
    _ok(cli("run", "-d", "--name", init, "--init", IMAGE, "sh", "-c", ORPHANS))
    assert _inspect(cli, init)["HostConfig"]["Init"] is True
    time.sleep(1.0)  # the orphans' sleep 0.1 are long over
    # without an init, PID 1 (sleep) never reaps the orphans it inherits
    assert _settled_zombies(_inspect(cli, bare)["State"]["Pid"], 5) == 5
    # with --init, tini (PID 1) reaps them
    assert _settled_zombies(_inspect(cli, init)["State"]["Pid"], 0) == 0
    _, rows = _table(_ok(cli("top", init, "-o", "pid,comm,args")))
    assert rows[0][1] == "docker-init" and rows[0][2] == "/sbin/docker-init -- sh -c " + ORPHANS
    # tini forwards the stop signal: sleep dies of SIGTERM at once (no 10 s SIGKILL wait)
    t0 = time.monotonic()
    _ok(cli("stop", init))
    assert time.monotonic() - t0 < 8
    assert _inspect(cli, init)["State"]["ExitCode"] == 143
    _ok(cli("rm", "-f", bare, init))


@needs_tini
def test_init_is_pid_1_and_passes_exit_codes(cli, names):
    out = _ok(cli("run", "--rm", "--init", IMAGE, "ps", "-o", "pid,comm"))
    rows = [line.split() for line in out.splitlines()[1:]]
    assert rows[0] == ["1", "docker-init"]
    r = cli("run", "--name", names("init7"), "--init", IMAGE, "sh", "-c", "exit 7")
    assert r.returncode == 7
    r = cli("run", "--name", names("initro"), "--init", IMAGE, "sh", "-c",
            "touch /sbin/docker-init")
    assert r.returncode == 1 and "Read-only file system" in r.stderr
