"""The shim launcher (workers.runtime.launcher): used when it runs, never required."""

import os
import signal
import time

import pytest

from workers.runtime import container as container_mod
from workers.runtime import launcher as launcher_mod
from workers.runtime.container import launcher_pid, stop_launcher


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def lrt(runtime_factory):
    """A runtime whose state root has a running launcher."""
    rt = runtime_factory()
    assert rt.start_launcher()
    return rt


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_first_start_spawns_it_then_shims_come_from_it(runtime_factory, make_spec, state_root):
    rt = runtime_factory()
    assert launcher_pid(state_root) == 0
    spec = make_spec(["true"])
    rt.create(spec)
    rt.start(spec.id)  # no launcher yet: a direct spawn, and a launcher for next time
    assert rt.wait(spec.id, 5) == 0
    assert wait_for(lambda: launcher_pid(state_root) and os.path.exists(
        os.path.join(state_root, launcher_mod.SOCK)))
    lpid = launcher_pid(state_root)
    assert oct(os.stat(os.path.join(state_root, launcher_mod.SOCK)).st_mode & 0o777) == "0o600"

    spec = make_spec(["sleep", "100"])
    rt.create(spec)
    pid = rt.start(spec.id)
    st = rt.state(spec.id)
    fields = stat_fields(st.shim_pid)
    assert int(fields[1]) == lpid  # forked by the launcher ...
    assert int(fields[3]) == st.shim_pid  # ... into its own session
    assert int(stat_fields(pid)[1]) == st.shim_pid  # PID 1 is the shim's own child
    title = cmdline(st.shim_pid)
    assert title.startswith("workers.runtime.shim ") and spec.id in title
    assert rt.stop(spec.id, 1).exit_code == 137


def test_shims_survive_the_launcher(lrt, make_spec, state_root, monkeypatch):
    monkeypatch.setattr(container_mod, "LAUNCHER_RESPAWN_SECONDS", 0)
    spec = make_spec(["sh", "-c", "sleep 100"])
    lrt.create(spec)
    pid = lrt.start(spec.id)
    lpid = launcher_pid(state_root)
    assert lpid and int(stat_fields(lrt.state(spec.id).shim_pid)[1]) == lpid
    os.kill(lpid, signal.SIGKILL)
    assert wait_for(lambda: launcher_pid(state_root) == 0)
    time.sleep(0.1)
    st = lrt.state(spec.id)
    assert st.status == "running" and st.pid == pid
    with lrt.connect(spec.id, "state") as s:  # the shim still serves its socket
        assert b'"running"' in s.recv(4096)

    # the next start finds a dead launcher: it spawns the shim itself, and a new launcher
    spec2 = make_spec(["true"])
    lrt.create(spec2)
    lrt.start(spec2.id)
    assert lrt.wait(spec2.id, 5) == 0
    assert wait_for(lambda: launcher_pid(state_root) not in (0, lpid))
    assert lrt.stop(spec.id, 1).exit_code == 137


def test_outdated_launcher_is_replaced(lrt, make_spec, state_root, monkeypatch):
    old = launcher_pid(state_root)
    real = launcher_mod.code_token
    monkeypatch.setattr(launcher_mod, "code_token", lambda python: real(python) + "|new")
    spec = make_spec(["sh", "-c", "exit 4"])
    lrt.create(spec)
    lrt.start(spec.id)  # "stale": started directly, and the old launcher is told to go
    assert lrt.wait(spec.id, 5) == 4
    assert wait_for(lambda: launcher_pid(state_root) not in (0, old))


def test_wedged_launcher_is_bypassed(lrt, make_spec, state_root, monkeypatch):
    monkeypatch.setattr(container_mod, "LAUNCHER_READY_TIMEOUT", 0.3)
    lpid = launcher_pid(state_root)
    spare = [int(p) for p in open(f"/proc/{lpid}/task/{lpid}/children").read().split()]
    assert spare
    for p in [lpid] + spare:
        os.kill(p, signal.SIGSTOP)
    try:
        spec = make_spec(["sh", "-c", "echo direct"])
        lrt.create(spec)
        t0 = time.monotonic()
        lrt.start(spec.id)
        assert time.monotonic() - t0 < 5
        assert lrt.wait(spec.id, 5) == 0
    finally:
        for p in [lpid] + spare:
            os.kill(p, signal.SIGCONT)
    # it was replaced; the abandoned request starts nothing when its spare wakes up
    assert wait_for(lambda: launcher_pid(state_root) not in (0, lpid))
    assert wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in [lpid] + spare))
    assert lrt.state(spec.id).status == "exited"
    assert lrt.list_ids() == [spec.id]


def test_forked_shim_stays_small(rt, make_spec):
    spec = make_spec(["sleep", "100"])
    rt.create(spec)
    rt.start(spec.id)
    time.sleep(0.5)
    rss = rss_kib(rt.state(spec.id).shim_pid)
    assert rss < 10 * 1024, f"idle shim RSS {rss} KiB"
    rt.kill(spec.id)
    assert rt.wait(spec.id, 5) == 137


def test_stop_launcher(runtime_factory, state_root):
    rt = runtime_factory()
    lpid = rt.start_launcher()
    assert lpid and rt.start_launcher() == lpid  # idempotent
    assert stop_launcher(state_root)
    assert launcher_pid(state_root) == 0
    assert stop_launcher(state_root)  # nothing to stop
