"""docker exec at the runtime level: a process joined to every namespace of a running
container, run and reaped by the container's shim (real kernel, no mocks)."""

import os
import secrets
import select
import time

import pytest

from workers.runtime import execs
from workers.runtime.execs import ExecError


@pytest.fixture
def running(rt, make_spec):
    """Start a long-running container; returns (runtime, container id, container dir)."""
    def start(args=("sleep", "600"), **kw):
        spec = make_spec(list(args), **kw)
        rt.create(spec)
        rt.start(spec.id)
        return spec.id, os.path.join(rt.containers, spec.id)
    return start


def ns_inode(pid, kind):
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def test_ps_shows_the_containers_pid_namespace(rt, running):
    cid, cdir = running(["sleep", "600"])
    code, out, err = execs.run(cdir, ["ps", "-o", "pid,comm"])
    assert code == 0, err
    rows = [line.split() for line in out.decode().splitlines()[1:]]
    assert rows[0] == ["1", "sleep"]  # PID 1 is the container's process
    assert [r[1] for r in rows[1:]] == ["ps"]  # and nothing of the host


def test_env_user_workdir_and_exit_code(rt, running):
    cid, cdir = running(env=["FROMCONTAINER=yes"], hostname="exbox")
    code, out, err = execs.run(cdir, ["sh", "-c", "echo $A $FROMCONTAINER $HOME; id -u; id -g; "
                                      "pwd; hostname; exit 5"],
                               env=["A=1"], user="nobody", cwd="/tmp")
    assert code == 5, err
    assert out.decode().split("\n")[:5] == ["1 yes /home", "65534", "65534", "/tmp", "exbox"]
    code, out, _ = execs.run(cdir, ["id"], user="1000:1000")
    assert code == 0 and out.startswith(b"uid=1000 gid=1000")
    code, out, _ = execs.run(cdir, ["sh", "-c", "echo err >&2; echo out"])
    assert (code, out) == (0, b"out\n")


def test_namespaces_cgroups_and_caps_are_the_containers(rt, running):
    cid, cdir = running()
    pid = rt.state(cid).pid
    spec = execs.exec_spec(secrets.token_hex(32), ["sleep", "30"])
    s, epid = execs.open_exec(cdir, spec)
    try:
        for kind in ("mnt", "uts", "ipc", "net", "pid", "cgroup"):
            assert ns_inode(epid, kind) == ns_inode(pid, kind), kind
        with open(f"/proc/{pid}/cgroup") as a, open(f"/proc/{epid}/cgroup") as b:
            assert a.read() == b.read()
        assert os.readlink(f"/proc/{epid}/root") == "/"
        caps = {}
        for p in (pid, epid):
            with open(f"/proc/{p}/status") as f:
                caps[p] = [ln for ln in f if ln.startswith(("CapBnd", "CapEff"))]
        assert caps[pid] == caps[epid]
    finally:
        s.close()
    code, out, _ = execs.run(cdir, ["ip", "-o", "link"])
    assert code == 0 and [ln.split(":")[1].strip() for ln in out.decode().splitlines()] == ["lo"]


def test_errors_use_dockers_words_and_codes(rt, running):
    cid, cdir = running()
    with pytest.raises(ExecError) as e:
        execs.run(cdir, ["nosuch"])
    assert e.value.code == 127
    assert e.value.message == ('OCI runtime exec failed: exec failed: unable to start container '
                               'process: exec: "nosuch": executable file not found in $PATH: '
                               'unknown')
    with pytest.raises(ExecError) as e:
        execs.run(cdir, ["/etc/passwd"])
    assert e.value.code == 126 and "permission denied" in e.value.message
    with pytest.raises(ExecError) as e:
        execs.run(cdir, ["id"], user="nosuchuser")
    assert e.value.code == 126
    assert e.value.message == "unable to find user nosuchuser: no matching entries in passwd file"
    with pytest.raises(ExecError) as e:
        execs.run(cdir, ["pwd"], cwd="/nonexistent")
    assert e.value.code == 126 and 'chdir to cwd ("/nonexistent")' in e.value.message
    # the container is unharmed, its log has no exec output
    assert rt.state(cid).running
    code, out, _ = execs.run(cdir, ["echo", "not in the log"])
    assert code == 0
    with open(rt.logs_path(cid)) as f:
        assert "not in the log" not in f.read()


def test_stdin_and_tty(rt, running):
    cid, cdir = running()
    code, out, _ = execs.run(cdir, ["sh", "-c", "cat; echo done"], input=b"hello\n")
    assert (code, out) == (0, b"hello\ndone\n")
    spec = execs.exec_spec(secrets.token_hex(32), ["sh"], tty=True, stdin=True, rows=30,
                           cols=101)
    s, _ = execs.open_exec(cdir, spec)
    try:
        s.sendall(execs.frame(execs.STDIN, b"stty size; tty; echo $TERM; exit 3\n"))
        out, code = b"", None
        for kind, payload in execs.read_frames(s):
            if kind == execs.EXIT:
                code = int(payload)
            else:
                assert kind == execs.STDOUT  # a PTY has one stream
                out += payload
    finally:
        s.close()
    assert code == 3
    text = out.decode().replace("\r", "")
    assert "30 101\n" in text and "/dev/pts/" in text and "xterm\n" in text


def test_resize_detach_and_exit_event(rt, running):
    cid, cdir = running()
    eid = secrets.token_hex(32)
    spec = execs.exec_spec(eid, ["sh", "-c", "sleep 0.3; stty size"], tty=True)
    s, _ = execs.open_exec(cdir, spec)
    try:
        assert execs.resize(cdir, eid, 20, 70) == "ok"
        out = b"".join(p for k, p in execs.read_frames(s) if k == execs.STDOUT)
    finally:
        s.close()
    assert b"20 70" in out
    assert execs.resize(cdir, eid, 20, 70).startswith("error")  # it has ended
    # detached: the shim answers at once; the process runs on
    spec = execs.exec_spec(secrets.token_hex(32), ["sh", "-c", "echo hi > /tmp/detached"],
                           detach=True)
    s, pid = execs.open_exec(cdir, spec)
    s.close()
    assert pid > 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        code, out, _ = execs.run(cdir, ["cat", "/tmp/detached"])
        if code == 0:
            break
        time.sleep(0.05)
    assert out == b"hi\n"


def test_client_leaving_keeps_the_process_and_container_exit_ends_execs(rt, running):
    cid, cdir = running()
    s, epid = execs.open_exec(cdir, execs.exec_spec(secrets.token_hex(32), ["sleep", "60"]))
    s.close()
    time.sleep(0.2)
    assert os.path.exists(f"/proc/{epid}")
    s2, _ = execs.open_exec(cdir, execs.exec_spec(secrets.token_hex(32), ["sleep", "60"]))
    try:
        rt.kill(cid, "SIGKILL")
        assert rt.wait(cid, 20) == 137
        ready, _, _ = select.select([s2], [], [], 20)
        assert ready
        frames = list(execs.read_frames(s2))
        assert frames[-1] == (execs.EXIT, b"137")
    finally:
        s2.close()
    with pytest.raises(ExecError) as e:
        execs.run(cdir, ["true"])
    assert e.value.code == 409


def test_many_execs_do_not_leak(rt, running):
    cid, cdir = running()
    shim_pid = rt.state(cid).shim_pid
    assert execs.run(cdir, ["true"])[0] == 0
    time.sleep(0.1)  # the shim has settled (e.g. fsync'ed and closed its state file)
    fds_before = sorted(os.listdir(f"/proc/{shim_pid}/fd"))
    for i in range(20):
        code, out, _ = execs.run(cdir, ["sh", "-c", f"echo {i}"])
        assert (code, out) == (0, f"{i}\n".encode())
    time.sleep(0.1)
    assert sorted(os.listdir(f"/proc/{shim_pid}/fd")) == fds_before
    children = [p for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == shim_pid]
    assert children == [str(rt.state(cid).pid)]  # no zombies, only PID 1


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError):
        return -1


def test_exec_joins_the_containers_cgroup_and_is_refused_while_paused(rt, make_spec,
                                                                      cgroup_parent):
    spec = make_spec(["sleep", "600"], cgroup_parent=cgroup_parent)
    rt.create(spec)
    rt.start(spec.id)
    cdir = os.path.join(rt.containers, spec.id)
    s, epid = execs.open_exec(cdir, execs.exec_spec(secrets.token_hex(32), ["sleep", "30"]))
    try:
        with open(f"/proc/{epid}/cgroup") as f:
            mine = f.read()
        assert f"/{cgroup_parent}/{spec.id}" in mine
        with open(f"/proc/{rt.state(spec.id).pid}/cgroup") as f:
            assert f.read() == mine
    finally:
        s.close()
    rt.pause(spec.id)
    try:
        with pytest.raises(ExecError) as e:
            execs.run(cdir, ["true"])
        assert e.value.code == 409
        assert e.value.message == (f"Container {spec.id} is paused, unpause the container "
                                   "before exec")
    finally:
        rt.unpause(spec.id)
    assert execs.run(cdir, ["true"])[0] == 0
