"""Namespace sharing (--pid/--uts/--ipc), --init (tini), --group-add, top and sizes, on the
real kernel."""

import os
import socket
import time

import psutil
import pytest

from workers.runtime import linux, procs
from workers.runtime.container import NotRunning, StartError
from workers.runtime.spec import ContainerSpec, SpecError, validate

TINI = "/usr/bin/tini-static"
needs_tini = pytest.mark.skipif(not os.path.isfile(TINI), reason="Debian's tini not installed")


def _started(rt, make_spec, args, **kw):
    spec = make_spec(args, **kw)
    rt.create(spec)
    rt.start(spec.id)
    return spec


def _wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _ns(pid, kind):
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def test_spec_validates_modes(make_spec):
    spec = make_spec(["true"], pid_mode="host", uts_mode="host", ipc_mode="shareable")
    validate(spec)
    for kw in ({"pid_mode": "bogus"}, {"uts_mode": "container:" + "a" * 64},
               {"ipc_mode": "container:x"}, {"pid_mode": "container:abc"},
               {"group_add": ["bad group"]}, {"init_path": "/no/such/init"}):
        with pytest.raises(SpecError):
            validate(make_spec(["true"], **kw))
    spec = make_spec(["true"])
    spec.pid_mode = "container:" + spec.id
    with pytest.raises(SpecError, match="itself"):
        validate(spec)
    # round trip through config.json
    spec = make_spec(["true"], ipc_mode="shareable", group_add=["tty"], init_path=TINI
                     if os.path.isfile(TINI) else "")
    assert ContainerSpec.from_json(spec.to_json()) == spec


def test_pid_host_sees_the_node(run):
    code, out, err = run(["sh", "-c", f"test -d /proc/{os.getpid()} && echo seen; "
                          "ps -o pid,comm | wc -l"], pid_mode="host")
    assert code == 0, err
    seen, count = out.split()
    assert seen == "seen"
    assert int(count) > 10  # the host's processes, not just ours


def test_pid_container_joins(rt, make_spec, run):
    x = _started(rt, make_spec, ["sleep", "30"])
    xpid = rt.state(x.id).pid
    code, out, err = run(["ps", "-o", "pid,comm"], pid_mode="container:" + x.id)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[1:]]
    assert ["1", "sleep"] in rows  # x's PID 1 is visible: we are in its namespace
    assert _ns(xpid, "pid") != _ns(os.getpid(), "pid")
    # the shim (launcher path: it cloned PID 1 itself) went back to its own namespace
    shim = rt.state(x.id).shim_pid
    assert _ns(shim, "pid") == _ns(os.getpid(), "pid")
    rt.stop(x.id, timeout=1)


def test_join_requires_a_running_container(rt, make_spec):
    x = make_spec(["true"])
    rt.create(x)
    for mode in ("pid_mode", "ipc_mode"):
        spec = make_spec(["true"], **{mode: "container:" + x.id})
        rt.create(spec)
        with pytest.raises(StartError, match="is not running"):
            rt.start(spec.id)
        assert rt.state(spec.id).status == "created"


def test_uts_host(run):
    before = socket.gethostname()
    code, out, err = run(["hostname"], uts_mode="host", hostname="ignored")
    assert code == 0, err
    assert out.strip() == before
    assert socket.gethostname() == before


def test_ipc_host(run):
    name = f"dy-test-{os.getpid()}-{time.monotonic_ns()}"
    with open(f"/dev/shm/{name}", "w") as f:
        f.write("from the host")
    try:
        code, out, err = run(["sh", "-c", f"readlink /proc/self/ns/ipc; cat /dev/shm/{name}"],
                             ipc_mode="host")
    finally:
        os.unlink(f"/dev/shm/{name}")
    assert code == 0, err
    ns, text = out.splitlines()
    assert ns == _ns(os.getpid(), "ipc")
    assert text == "from the host"


def test_ipc_shareable_and_join(rt, make_spec, run, state_root):
    x = _started(rt, make_spec, ["sh", "-c", "echo shared > /dev/shm/x; sleep 30"],
                 ipc_mode="shareable")
    xdir = os.path.join(state_root, "containers", x.id)
    assert os.path.ismount(os.path.join(xdir, "shm"))
    _wait_for(lambda: os.path.exists(os.path.join(xdir, "shm", "x")), what="x's /dev/shm file")
    xpid = rt.state(x.id).pid
    code, out, err = run(["sh", "-c", "readlink /proc/self/ns/ipc; cat /dev/shm/x; "
                          "echo back > /dev/shm/y"], ipc_mode="container:" + x.id)
    assert code == 0, err
    ns, text = out.splitlines()
    assert ns == _ns(xpid, "ipc") != _ns(os.getpid(), "ipc")
    assert text == "shared"
    with open(os.path.join(xdir, "shm", "y")) as f:
        assert f.read() == "back\n"
    # a private container's IPC cannot be joined
    p = _started(rt, make_spec, ["sleep", "30"])
    spec = make_spec(["true"], ipc_mode="container:" + p.id)
    rt.create(spec)
    with pytest.raises(StartError, match="non-shareable IPC"):
        rt.start(spec.id)
    # the node-side tmpfs goes with the container
    rt.remove(x.id, force=True)
    assert linux.mounts_under(xdir) == []
    rt.remove(p.id, force=True)


ORPHANS = "for i in 1 2 3 4 5; do (sleep 0.1 &); done; exec sleep 30"


def _zombie_count(rt, spec):
    """Zombies among the container's processes, seen from the host: the orphans are
    reparented to the container's PID 1 (a zombie has no namespace links to compare)."""
    pid = rt.state(spec.id).pid
    time.sleep(1.0)  # the orphans' sleep 0.1 are long over
    try:
        tree = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return -1
    return sum(1 for p in tree if p.status() == psutil.STATUS_ZOMBIE)


@needs_tini
def test_init_reaps_orphans(rt, make_spec):
    without = _started(rt, make_spec, ["sh", "-c", ORPHANS])
    with_init = _started(rt, make_spec, ["sh", "-c", ORPHANS], init_path=TINI)
    assert _zombie_count(rt, without) == 5  # sleep 30 as PID 1 never reaps them
    assert _zombie_count(rt, with_init) == 0  # tini does
    # tini is PID 1 (/sbin/docker-init), the command its child
    pid1 = psutil.Process(rt.state(with_init.id).pid)
    assert pid1.cmdline()[:3] == ["/sbin/docker-init", "--", "sh"]
    assert [c.name() for c in pid1.children()] == ["sleep"]
    # it forwards the stop signal: sleep dies of SIGTERM at once
    t0 = time.monotonic()
    st = rt.stop(with_init.id, timeout=20)
    assert time.monotonic() - t0 < 10
    assert st.exit_code == 143
    rt.stop(without.id, timeout=1)


@needs_tini
def test_init_passes_exit_code_and_is_read_only(run):
    code, out, err = run(["sh", "-c", "echo $$; touch /sbin/docker-init || echo ro; exit 7"],
                         init_path=TINI)
    assert code == 7
    pid, ro = out.split()
    assert pid != "1" and ro == "ro"


def test_group_add(run):
    code, out, err = run(["id", "-G"], user="nobody", group_add=["tty", "4242"])
    assert code == 0, err
    assert out.split() == ["65534", "5", "4242"]


def test_group_add_unknown_group(rt, make_spec):
    spec = make_spec(["id"], group_add=["nosuchgroup"])
    rt.create(spec)
    with pytest.raises(StartError, match="Unable to find group nosuchgroup"):
        rt.start(spec.id)


def test_top_and_size(rt, make_spec):
    spec = _started(rt, make_spec, ["sh", "-c", "head -c 12345 /dev/zero > /big; "
                                    "sleep 30 & sleep 31 & wait"])
    pid = rt.state(spec.id).pid
    commands = ["sh -c head -c 12345 /dev/zero > /big; sleep 30 & sleep 31 & wait",
                "sleep 30", "sleep 31"]
    # until both children have exec'd (a forked child still shows its parent's command)
    top = _wait_for(lambda: (t := rt.top(spec.id)) and [r[7] for r in t["Processes"]] == commands
                    and t, what="the three processes")
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    rows = top["Processes"]
    assert [r[1] for r in rows][0] == str(pid)  # host pids, as Docker shows them
    assert rows[1][2] == str(pid)  # PPID
    assert all(r[0] == "root" for r in rows)
    aux = rt.top(spec.id, "aux")
    assert aux["Titles"][:3] == ["USER", "PID", "%CPU"] and aux["Titles"][-1] == "COMMAND"
    assert len(aux["Processes"]) == 3
    o = rt.top(spec.id, "-o pid,comm")
    assert o["Titles"] == ["PID", "COMMAND"]
    assert sorted(r[1] for r in o["Processes"]) == ["sh", "sleep", "sleep"]
    with pytest.raises(procs.PsError, match="unsupported option"):
        rt.top(spec.id, "-Z")
    with pytest.raises(procs.PsError, match="PID"):
        rt.top(spec.id, "-o comm")
    _wait_for(lambda: rt.size(spec.id) >= 12345, what="the file in the upper dir")
    assert 12345 <= rt.size(spec.id) < 12345 + 4096
    rt.stop(spec.id, timeout=1)
    with pytest.raises(NotRunning):
        rt.top(spec.id)


def test_top_of_a_pid_host_container(rt, make_spec):
    spec = _started(rt, make_spec, ["sh", "-c", "sleep 30 & sleep 31 & wait"], pid_mode="host")
    pid = rt.state(spec.id).pid
    top = _wait_for(lambda: (t := rt.top(spec.id, "-o pid,comm")) and
                    len(t["Processes"]) == 3 and t, what="its three processes only")
    assert top["Processes"][0] == [str(pid), "sh"]
    rt.stop(spec.id, timeout=1)
