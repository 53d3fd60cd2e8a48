"""Bind mounts, tmpfs and volumes on the real kernel (workers/runtime/mounts.py, volumes.py)."""

import os
import shutil
import tempfile
import time

import pytest

from workers.runtime import linux
from workers.runtime.container import StartError
from workers.runtime.mounts import MountError, resolve_in_root
from workers.runtime.spec import SpecError, validate
from workers.runtime.volumes import VolumeError, VolumeStore, validate_options


@pytest.fixture
def rt1(runtime_factory):
    rt = runtime_factory()
    assert rt.start_launcher()
    return rt


@pytest.fixture
def host_dir():
    path = tempfile.mkdtemp(prefix="dy-test-bind-")
    yield path
    for m in sorted(linux.mounts_under(path), key=len, reverse=True):
        linux.umount2(m, linux.MNT_DETACH)
    shutil.rmtree(path)


def _run(rt, make_spec, script, mounts, timeout=10):
    spec = make_spec(["sh", "-c", script], mounts=mounts)
    rt.create(spec)
    rt.start(spec.id)
    code = rt.wait(spec.id, timeout)
    out, err = _log(rt, spec.id)
    return code, out, err


def _log(rt, cid):
    import json

    out, err = [], []
    with open(rt.logs_path(cid), encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            (out if entry["stream"] == "stdout" else err).append(entry["log"])
    return "".join(out), "".join(err)


def test_bind_rw_and_ro(rt1, make_spec, host_dir):
    with open(os.path.join(host_dir, "in.txt"), "w") as f:
        f.write("from host\n")
    rw = {"type": "bind", "source": host_dir, "target": "/data"}
    code, out, err = _run(rt1, make_spec, "cat /data/in.txt; echo hi > /data/out.txt", [rw])
    assert (code, out) == (0, "from host\n"), err
    with open(os.path.join(host_dir, "out.txt")) as f:
        assert f.read() == "hi\n"
    ro = {**rw, "readonly": True}
    code, out, err = _run(rt1, make_spec, "cat /data/in.txt; echo x > /data/new", [ro])
    assert code != 0 and out == "from host\n"
    assert "Read-only file system" in err
    assert not os.path.exists(os.path.join(host_dir, "new"))


def test_bind_of_a_file_makes_a_file(rt1, make_spec, host_dir):
    log = os.path.join(host_dir, "access.log")
    open(log, "w").close()
    m = {"type": "bind", "source": log, "target": "/var/log/app/access.log"}
    code, _, err = _run(rt1, make_spec, "test -f /var/log/app/access.log && echo GET >> "
                        "/var/log/app/access.log", [m])
    assert code == 0, err
    with open(log) as f:
        assert f.read() == "GET\n"


def test_missing_bind_source(rt1, make_spec, host_dir):
    missing = os.path.join(host_dir, "nope")
    spec = make_spec(["true"], mounts=[{"type": "bind", "source": missing, "target": "/x"}])
    rt1.create(spec)
    with pytest.raises(StartError, match="bind source path does not exist: " + missing):
        rt1.start(spec.id)
    made = {"type": "bind", "source": missing, "target": "/x", "create_source": True}
    code, _, err = _run(rt1, make_spec, "touch /x/f", [made])
    assert code == 0, err
    assert os.path.isfile(os.path.join(missing, "f"))


def test_tmpfs_defaults_and_options(rt1, make_spec):
    mounts = [{"type": "tmpfs", "target": "/tmp"},
              {"type": "tmpfs", "target": "/secrets", "options": ["size=1m", "mode=700"]}]
    code, out, err = _run(rt1, make_spec, "grep -E ' /(tmp|secrets) ' /proc/mounts; "
                          "stat -c %a /secrets; echo k > /tmp/key", mounts)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime 0 0"
    assert lines[1] == "tmpfs /secrets tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=700 0 0"
    assert lines[2] == "700"
    # memory-backed: nothing reached the container's writable layer or the node
    upper = os.path.join(rt1.containers, os.listdir(rt1.containers)[0], "upper")
    assert not any("key" in files for _, _, files in os.walk(upper))
    assert not linux.mounts_under(rt1.root)


def test_propagation(rt1, make_spec, host_dir):
    private_src = os.path.join(host_dir, "private")
    os.mkdir(private_src)
    bad = {"type": "bind", "source": private_src, "target": "/d", "propagation": "rslave"}
    spec = make_spec(["true"], mounts=[bad])
    rt1.create(spec)
    with pytest.raises(StartError, match="not a shared or slave mount"):
        rt1.start(spec.id)
    # a shared mount on the node: host mounts below it reach an rslave container only
    shared = os.path.join(host_dir, "shared")
    os.mkdir(shared)
    linux.mount(shared, shared, None, linux.MS_BIND)
    linux.mount(None, shared, None, linux.MS_SHARED)
    os.mkdir(os.path.join(shared, "sub"))
    watch = ("for i in $(seq 60); do grep -q ' /d/sub tmpfs' /proc/mounts && echo seen && "
             "exit 0; sleep 0.05; done; echo unseen")
    started = []
    for mode in ("rslave", ""):
        spec = make_spec(["sh", "-c", "echo up; " + watch], mounts=[
            {"type": "bind", "source": shared, "target": "/d", "propagation": mode}])
        rt1.create(spec)
        rt1.start(spec.id)
        started.append(spec.id)
    deadline = time.monotonic() + 5
    while not all(_log(rt1, c)[0] for c in started) and time.monotonic() < deadline:
        time.sleep(0.02)
    linux.mount("tmpfs", os.path.join(shared, "sub"), "tmpfs", 0, "size=64k")
    results = []
    for cid in started:
        rt1.wait(cid, 10)
        results.append(_log(rt1, cid)[0].split())
    assert results == [["up", "seen"], ["up", "unseen"]]


def test_target_symlinks_stay_in_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "abs").symlink_to("/etc")
    (root / "out").symlink_to("../../../../tmp")
    assert resolve_in_root(str(root), "/abs/conf", "dir") == str(root / "etc" / "conf")
    assert (root / "etc" / "conf").is_dir()
    with pytest.raises(MountError, match="outside the container's root"):
        resolve_in_root(str(root), "/out/x", "dir")


def test_spec_validation(make_spec):
    for mounts, message in (
        ([{"type": "bind", "source": "/tmp", "target": "rel"}], "must be absolute"),
        ([{"type": "bind", "source": "/tmp", "target": "/a/../b"}], "must be absolute"),
        ([{"type": "nfs", "target": "/a"}], "unknown type"),
        ([{"type": "tmpfs", "target": "/a", "options": ["bogus"]}], "invalid mount option"),
        ([{"type": "tmpfs", "target": "/a"}, {"type": "tmpfs", "target": "/a/"}],
         "Duplicate mount point"),
        ([{"type": "bind", "source": "/tmp", "target": "/a", "propagation": "x"}],
         "invalid propagation"),
    ):
        with pytest.raises(SpecError, match=message):
            validate(make_spec(["true"], mounts=mounts))


def _volume(store, name, target, **kw):
    return {"type": "volume", "source": store.data(name), "target": target, "volume": name,
            **kw}


def test_volume_copy_up_and_sharing(rt1, make_spec, state_root):
    store = VolumeStore(state_root)
    m = _volume(store, "etcvol", "/etc", copy_up=True)
    code, out, err = _run(rt1, make_spec, "cat /etc/passwd | head -1", [m])
    assert code == 0 and out.startswith("root:"), err
    st = os.stat(os.path.join(store.data("etcvol"), "passwd"))
    assert (st.st_mode & 0o777, st.st_uid) == (0o644, 0)
    nocopy = _volume(store, "empty", "/etc", copy_up=False)
    code, out, err = _run(rt1, make_spec, "ls /etc | grep -c passwd", [nocopy])
    assert out.strip() == "0"
    # two containers on one volume: a write is seen by the other at once
    shared = _volume(store, "shared", "/v")
    reader = make_spec(["sh", "-c", "for i in $(seq 100); do test -f /v/msg && cat /v/msg "
                                    "&& exit 0; sleep 0.02; done; exit 1"], mounts=[shared])
    rt1.create(reader)
    rt1.start(reader.id)
    code, _, err = _run(rt1, make_spec, "echo hello > /v/msg", [shared])
    assert code == 0, err
    assert rt1.wait(reader.id, 10) == 0
    assert _log(rt1, reader.id)[0] == "hello\n"


def test_volume_driver_options(rt1, make_spec, state_root, host_dir):
    store = VolumeStore(state_root)
    with pytest.raises(VolumeError, match="not supported"):
        validate_options({"type": "nfs", "device": ":/x", "o": "addr=1.2.3.4"})
    with pytest.raises(VolumeError, match='missing required option: "device"'):
        validate_options({"type": "tmpfs"})
    store.create("mem", {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    m = _volume(store, "mem", "/m", volume_options=store.options("mem"))
    code, out, err = _run(rt1, make_spec, "grep ' /m ' /proc/mounts; echo 1 > /m/f", [m])
    assert code == 0 and out.startswith("tmpfs /m tmpfs rw,relatime,size=1024k"), (out, err)
    assert os.path.ismount(store.data("mem"))
    with open(os.path.join(host_dir, "keep"), "w") as f:
        f.write("k")
    store.create("hostdir", {"type": "none", "o": "bind", "device": host_dir})
    m = _volume(store, "hostdir", "/h")
    code, out, err = _run(rt1, make_spec, "cat /h/keep; echo w > /h/w", [m])
    assert (code, out) == (0, "k"), err
    assert open(os.path.join(host_dir, "w")).read() == "w\n"
    for cid in rt1.list_ids():
        rt1.remove(cid)
    for name in ("mem", "hostdir", "etc"):
        store.remove(name)
    assert not linux.mounts_under(store.root)
    assert not os.path.exists(store.path("mem"))
    assert os.path.isfile(os.path.join(host_dir, "keep"))  # a bound host dir is never deleted
