"""User namespaces (userns-remap) at the runtime level, on the real kernel: the container's
root is the node's uid 100000, image files still belong to root inside (idmapped layers),
its writes land in the upper dir as 100000, exec joins it, --userns host opts out."""

import os
import secrets

import pytest

from workers.runtime import execs
from workers.runtime.container import Runtime

REMAP = 100000
DEAD_REDIS = "redis://127.0.0.1:1/0"


def host_ids(pid):
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return int(fields["Uid"].split()[0]), int(fields["Gid"].split()[0])


@pytest.fixture(params=["launcher", "direct"])
def urt(request, state_root, cgroup_parent):
    """A remapping runtime (userns-remap "default"), with its shims from the launcher or
    spawned directly: both ways to clone PID 1."""
    rt = Runtime(state_root, node="t" + secrets.token_hex(4), redis_url=DEAD_REDIS,
                 launcher=request.param == "launcher", cgroup_parent=cgroup_parent,
                 userns_remap="default")
    yield rt
    for cid in rt.list_ids():
        rt.remove(cid, force=True)
        assert not os.path.exists(os.path.join(rt.containers, cid))


@pytest.fixture
def run(make_spec, read_log):
    def run_(rt, args, **kw):
        spec = make_spec(args, **kw)
        rt.create(spec)
        rt.start(spec.id)
        code = rt.wait(spec.id, 10)
        out, err = read_log(rt, spec.id)
        return spec.id, code, out, err
    return run_


def test_root_inside_is_an_unprivileged_uid_outside(urt, make_spec, run):
    cid, code, out, err = run(urt, ["sh", "-c", (
        "cat /proc/self/uid_map /proc/self/gid_map; id; ls -ln /bin/busybox /etc/hostname; "
        "echo hello > /made-inside && cat /made-inside; rm /bin/ls && echo removed; "
        "touch /etc/hostname && echo etc-ok")])
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["0", str(REMAP), "65536"]
    assert lines[1].split() == ["0", str(REMAP), "65536"]
    assert lines[2].startswith("uid=0(root) gid=0(root)")
    busybox = lines[3].split()
    assert busybox[2:4] == ["0", "0"], lines[3]  # the image's root-owned file: root's inside
    assert lines[4].split()[2:4] == ["0", "0"], lines[4]  # /etc/hostname: the container's
    assert lines[5:] == ["hello", "removed", "etc-ok"]
    st = os.stat(os.path.join(urt.containers, cid, "upper", "made-inside"))
    assert (st.st_uid, st.st_gid) == (REMAP, REMAP)  # on the node: the remapped root's
    # the image's layer itself is untouched
    layer_busybox = os.stat(os.path.join(make_spec(["x"]).layers[-1], "bin", "busybox"))
    assert (layer_busybox.st_uid, layer_busybox.st_gid) == (0, 0)


def test_process_exec_and_top_run_as_the_remapped_uid(urt, make_spec):
    spec = make_spec(["sleep", "600"])
    urt.create(spec)
    pid = urt.start(spec.id)
    cdir = os.path.join(urt.containers, spec.id)
    assert host_ids(pid) == (REMAP, REMAP)
    with open(f"/proc/{pid}/cgroup") as f:  # moved in by its parent before it ran
        assert f"/{spec.cgroup_parent}/{spec.id}" in f.read()
    code, out, err = execs.run(cdir, ["sh", "-c", "id -u; cat /proc/self/uid_map"])
    assert code == 0, err
    assert out.decode().split() == ["0", "0", str(REMAP), "65536"]
    s, epid = execs.open_exec(cdir, execs.exec_spec(secrets.token_hex(32), ["sleep", "30"]))
    try:
        assert os.stat(f"/proc/{epid}/ns/user").st_ino == os.stat(f"/proc/{pid}/ns/user").st_ino
        assert host_ids(epid) == (REMAP, REMAP)
    finally:
        s.close()
    top = urt.top(spec.id, "-o pid,uid,comm")
    assert [row[1] for row in top["Processes"]][0] == str(REMAP)
    urt.kill(spec.id)
    assert urt.wait(spec.id, 10) == 137
    # a restart (fresh work dir) still works
    urt.start(spec.id)
    assert host_ids(urt.state(spec.id).pid) == (REMAP, REMAP)


def test_userns_host_opts_out(urt, run):
    cid, code, out, err = run(urt, ["sh", "-c", "cat /proc/self/uid_map; id -u"],
                              userns_mode="host")
    assert code == 0, err
    assert out.split() == ["0", "0", "4294967295", "0"]
    assert urt.spec(cid).uid_map == []


def test_shifted_copies_where_idmapped_mounts_are_missing(urt, run, make_spec, monkeypatch):
    """A filesystem without idmapped mounts: the layers are copied once with every owner
    shifted into the range (cached next to the layer), and the container sees the same."""
    from workers.runtime import userns

    monkeypatch.setattr(userns, "idmap_supported", lambda layer, spec: False)
    cid, code, out, err = run(urt, ["sh", "-c", "ls -ln /bin/busybox; id -u; echo x > /f"])
    assert code == 0, err
    assert out.splitlines()[0].split()[2:4] == ["0", "0"]
    assert out.splitlines()[1] == "0"
    layer = urt.spec(cid).layers[-1]
    copy = userns.shifted_path(layer, urt.spec(cid))
    st = os.stat(os.path.join(copy, "bin", "busybox"))
    assert (st.st_uid, st.st_gid) == (REMAP, REMAP)
    assert os.stat(os.path.join(layer, "bin", "busybox")).st_uid == 0
    made = os.stat(copy).st_ino
    _, code, out, err = run(urt, ["true"])  # the next container reuses the copy
    assert code == 0, err
    assert os.stat(copy).st_ino == made


def test_a_new_volume_belongs_to_the_remapped_root(urt, run, state_root):
    data = os.path.join(state_root, "volumes", "unsvol", "_data")
    mount = {"type": "volume", "target": "/data", "source": data, "volume": "unsvol"}
    cid, code, out, err = run(urt, ["sh", "-c", "echo v > /data/f && ls -ln /data/f"],
                              mounts=[mount])
    assert code == 0, err
    assert out.split()[2:4] == ["0", "0"]
    st = os.stat(os.path.join(data, "f"))
    assert (st.st_uid, st.st_gid) == (REMAP, REMAP)


def test_a_terminal_works_in_a_user_namespace(urt, run):
    cid, code, out, err = run(urt, ["sh", "-c", "tty; ls -ln /dev/null"], tty=True)
    assert code == 0, out + err
    lines = out.replace("\r", "").splitlines()
    assert lines[0] == "/dev/pts/0"
    assert lines[1].startswith("crw-rw-rw-")  # the node's /dev/null, bind-mounted


@pytest.mark.skipif(not os.path.exists("/usr/bin/tini-static"), reason="no tini on this node")
def test_init_binary_in_a_user_namespace(urt, run):
    cid, code, out, err = run(urt, ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline"],
                              init_path="/usr/bin/tini-static")
    assert code == 0, err
    assert out.startswith("/sbin/docker-init -- sh -c")
