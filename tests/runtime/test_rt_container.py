import json
import os
import signal
import subprocess
import sys
import time

import pytest

from workers.runtime import linux
from workers.runtime.container import Conflict, NotRunning, StartError
from workers.runtime.images import BUSYBOX_PASSWD
from workers.runtime.spec import SpecError


def gone(pid):
    """No such process (a zombie waiting for the host's init to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_pid_namespace_and_hostname(run):
    code, out, err = run(["sh", "-c", "ps -o pid,comm; echo; hostname"], hostname="box1")
    assert code == 0, err
    table, host = out.split("\n\n")
    rows = [line.split() for line in table.splitlines()[1:]]
    assert rows[0] == ["1", "sh"]  # PID 1 is the container's own process
    assert {r[1] for r in rows} <= {"sh", "ps"}  # and no host process is visible
    assert len(rows) <= 2
    assert host.strip() == "box1"


def test_rootfs_is_the_image(run):
    code, out, err = run(["sh", "-c", "cat /etc/passwd; test -e /usr/bin/python3 || "
                          "echo nohostpython; cat /etc/hostname; grep -c localhost /etc/hosts"],
                         hostname="imgtest")
    assert code == 0, err
    assert out.startswith(BUSYBOX_PASSWD)
    assert "nohostpython\nimgtest\n" in out


def test_proc_sys_read_only_and_masks(run):
    code, out, err = run(["sh", "-c", "echo x > /proc/sys/kernel/domainname; echo rc=$?; "
                          "wc -c < /proc/keys; ls /sys/firmware | wc -l; "
                          "mount -t tmpfs none /mnt 2>/dev/null || echo nomount"])
    assert "Read-only file system" in err
    assert "rc=1" in out
    assert out.split()[1:3] == ["0", "0"]
    assert "nomount" in out


def test_env_workdir_user(run):
    code, out, err = run(["sh", "-c", "id -u; id -g; pwd; echo $FOO $HOME $HOSTNAME"],
                         env=["FOO=bar"], user="nobody", working_dir="/work/dir",
                         hostname="envbox")
    assert code == 0, err
    assert out.split("\n")[:4] == ["65534", "65534", "/work/dir", "bar /home envbox"]
    code, out, _ = run(["id"], user="1000:1000")
    assert out.startswith("uid=1000 gid=1000")
    code, out, _ = run(["sh", "-c", "echo $HOME; id -u"])
    assert out == "/root\n0\n"


def test_exit_codes_and_logs(run):
    code, out, err = run(["sh", "-c", "echo out1; echo err1 >&2; echo out2; printf tail; exit 3"])
    assert code == 3
    assert out == "out1\nout2\ntail"
    assert err == "err1\n"


def test_network_loopback_only(run):
    code, out, err = run(["sh", "-c", "ip -o link | cut -d: -f2; ip -o addr show lo"])
    assert code == 0, err
    assert out.split()[0] == "lo" and "127.0.0.1" in out
    assert "eth" not in out.split("\n")[0]


def test_stop_ignored_sigterm_then_sigkill(rt, make_spec):
    spec = make_spec(["sh", "-c", "trap '' TERM; sleep 30"], stop_timeout=1)
    rt.create(spec)
    rt.start(spec.id)
    t0 = time.monotonic()
    st = rt.stop(spec.id)
    assert 0.9 < time.monotonic() - t0 < 5
    assert st.status == "exited" and st.exit_code == 137
    assert rt.wait(spec.id) == 137


def test_stop_graceful_and_kill_signal(rt, make_spec):
    spec = make_spec(["sh", "-c", "trap 'exit 42' USR1; trap 'exit 0' TERM; "
                      "while :; do sleep 0.05; done"])
    rt.create(spec)
    rt.start(spec.id)
    time.sleep(0.2)
    rt.kill(spec.id, "SIGUSR1")
    assert rt.wait(spec.id, 5) == 42
    with pytest.raises(NotRunning):
        rt.kill(spec.id, "SIGTERM")
    # restart the same container and stop it gracefully
    rt.start(spec.id)
    time.sleep(0.2)
    st = rt.stop(spec.id, timeout=5)
    assert st.exit_code == 0
    spec2 = make_spec(["sleep", "30"])
    rt.create(spec2)
    rt.start(spec2.id)
    rt.kill(spec2.id, 9)
    assert rt.wait(spec2.id, 5) == 137


def test_start_failure_leaves_nothing(rt, make_spec, state_root, processes_mentioning):
    spec = make_spec(["nosuchcmd", "x"])
    rt.create(spec)
    with pytest.raises(StartError, match=r'exec: "nosuchcmd": executable file not found in \$PATH'):
        rt.start(spec.id)
    st = rt.state(spec.id)
    assert st.status == "created" and "nosuchcmd" in st.error
    assert processes_mentioning(state_root) == []
    assert linux.mounts_under(state_root) == []
    assert not os.path.exists(os.path.join(state_root, "containers", spec.id, "shim.sock"))

    spec = make_spec(["id"], user="bob")
    rt.create(spec)
    with pytest.raises(StartError,
                       match="unable to find user bob: no matching entries in passwd file"):
        rt.start(spec.id)
    spec = make_spec(["/bin/nothere"])
    rt.create(spec)
    with pytest.raises(StartError, match="no such file or directory"):
        rt.start(spec.id)
    assert processes_mentioning(state_root) == []


def test_create_is_idempotent_and_validates(rt, make_spec, state_root):
    spec = make_spec(["true"])
    rt.create(spec)
    rt.create(spec)
    other = make_spec(["false"])
    other.id = spec.id
    with pytest.raises(Conflict):
        rt.create(other)
    bad = make_spec(["true"], working_dir="relative")
    with pytest.raises(SpecError):
        rt.create(bad)
    assert rt.list_ids() == [spec.id]
    assert sorted(os.listdir(os.path.join(state_root, "containers"))) == [spec.id]
    assert rt.state(spec.id).status == "created"


def test_remove_force_running(rt, make_spec, state_root):
    spec = make_spec(["sh", "-c", "sleep 100 & sleep 100"])
    rt.create(spec)
    pid = rt.start(spec.id)
    assert rt.start(spec.id) == pid  # idempotent
    st = rt.state(spec.id)
    assert st.status == "running" and st.pid == pid
    with pytest.raises(Conflict):
        rt.remove(spec.id)
    rt.remove(spec.id, force=True)
    assert not os.path.exists(os.path.join(state_root, "containers", spec.id))
    assert gone(pid) and gone(st.shim_pid)
    assert linux.mounts_under(state_root) == []
    assert rt.list_ids() == []
    rt.remove(spec.id, force=True)  # idempotent


def test_shim_survives_its_starter(rt, make_spec, state_root, root_dir):
    spec = make_spec(["sleep", "100"], stop_timeout=1)
    rt.create(spec)
    code = (
        f"import sys; sys.path.insert(0, {root_dir!r})\n"
        "from workers.runtime.container import Runtime\n"
        f"print(Runtime({state_root!r}, redis_url={rt.redis_url!r}).start({spec.id!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=20, check=True).stdout
    pid = int(out)
    st = rt.state(spec.id)
    assert st.status == "running" and st.pid == pid
    with open(f"/proc/{st.shim_pid}/stat") as f:
        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    assert ppid != os.getpid()
    time.sleep(0.2)
    assert rt.state(spec.id).status == "running"
    assert rt.stop(spec.id).exit_code == 137


def test_stale_running_state_is_corrected(rt, make_spec):
    spec = make_spec(["sleep", "100"])
    rt.create(spec)
    rt.start(spec.id)
    st = rt.state(spec.id)
    os.kill(st.shim_pid, signal.SIGKILL)
    os.kill(st.pid, signal.SIGKILL)  # orphaned PID 1: reaped by init
    deadline = time.monotonic() + 5
    while rt.state(spec.id).status == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    st = rt.state(spec.id)
    assert st.status == "exited" and st.error


def test_tty_and_stdin(rt, make_spec, read_log):
    code_spec = make_spec(["sh", "-c", "tty; echo $TERM"], tty=True)
    rt.create(code_spec)
    rt.start(code_spec.id)
    assert rt.wait(code_spec.id, 5) == 0
    out, _ = read_log(rt, code_spec.id)
    assert out == "/dev/pts/0\r\nxterm\r\n"

    spec = make_spec(["sh"], open_stdin=True)
    rt.create(spec)
    rt.start(spec.id)
    attach = rt.connect(spec.id, "attach")
    with rt.connect(spec.id, "stdin-once") as s:
        s.sendall(b"echo from-stdin; exit 7\n")
    assert rt.wait(spec.id, 5) == 7
    frames = b""
    while True:
        data = attach.recv(65536)
        if not data:
            break
        frames += data
    attach.close()
    assert b"from-stdin\n" in frames and frames.endswith(b"x\x00\x00\x00\x017")
    assert read_log(rt, spec.id)[0] == "from-stdin\n"


def test_redis_output_and_events(runtime_factory, make_spec, redis_server):
    redis = pytest.importorskip("redis")
    rt = runtime_factory(redis_url=redis_server)
    r = redis.Redis(unix_socket_path=redis_server[len("unix://"):])
    spec = make_spec(["sh", "-c", "sleep 0.2; echo hello; echo oops >&2; exit 5"])
    rt.create(spec)
    pubsub = r.pubsub()
    pubsub.subscribe(f"dockyard:output:{spec.id}")
    rt.start(spec.id)
    chunks = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msg = pubsub.get_message(timeout=0.5)
        if msg and msg["type"] == "message":
            chunks.append(msg["data"])
            if msg["data"].startswith(b"x"):
                break
    pubsub.close()
    assert chunks[-1] == b"x5"
    assert b"".join(c[1:] for c in chunks if c[:1] == b"1") == b"hello\n"
    assert b"".join(c[1:] for c in chunks if c[:1] == b"2") == b"oops\n"
    events = r.xrange(f"dockyard:events:{rt.node}")
    fields = [{k.decode(): v.decode() for k, v in e[1].items()} for e in events]
    assert [f["status"] for f in fields] == ["running", "exited"]
    assert fields[1]["exit_code"] == "5" and fields[0]["container"] == spec.id
    assert int(fields[0]["pid"]) > 0 and fields[1]["time"].endswith("Z")
    assert set(fields[0]) == {"container", "status", "pid", "exit_code", "time", "error",
                              "started_at", "finished_at", "restart_count", "oom_killed"}
    assert fields[1]["oom_killed"] == "0"


def test_state_json_written_by_shim(rt, make_spec, state_root):
    spec = make_spec(["true"])
    rt.create(spec)
    rt.start(spec.id)
    rt.wait(spec.id, 5)
    with open(os.path.join(state_root, "containers", spec.id, "state.json")) as f:
        raw = json.load(f)
    assert raw["status"] == "exited" and raw["exit_code"] == 0
    assert raw["started_at"] <= raw["finished_at"]
