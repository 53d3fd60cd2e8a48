"""Cgroups on the real kernel: the v2 backend's core files (cgroup.procs, cgroup.freeze,
cgroup.events, cgroup.kill) on a cgroup2 mount, the v1 freezer, and pause/unpause of real
containers (the process stops making progress while frozen)."""

import os
import secrets
import subprocess
import time

import pytest

from workers.runtime import cgroups
from workers.runtime.cgroups.config import CgroupConfig, Resources
from workers.runtime.cgroups.v2 import V2Manager
from workers.runtime.cgroups.validate import CgroupConfigError, validate
from workers.runtime.container import Conflict, NotRunning

DEAD_REDIS = "redis://127.0.0.1:1/0"


def _v2_mount():
    v2, _v1 = cgroups.cgroup_mounts()
    return sorted(v2, key=len)[0] if v2 else None


@pytest.fixture
def parent(cgroup_parent):
    return cgroup_parent


def _counter():
    """A host process that appends to a file as fast as it can (sleeping a little)."""
    path = f"/tmp/dy-cg-{secrets.token_hex(4)}"
    proc = subprocess.Popen(["sh", "-c", f"while true; do echo x >> {path}; sleep 0.01; done"])
    return proc, path


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _grows(path, within=5.0):
    start = _size(path)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if _size(path) > start:
            return True
    return False


def _exercise(manager):
    """create, enter, procs, freeze (no progress), thaw (progress), kill, destroy."""
    manager.create()
    assert manager.exists()
    proc, path = _counter()
    try:
        manager.enter(proc.pid)
        assert proc.pid in manager.procs()
        assert _grows(path)
        manager.freeze()
        assert manager.frozen()
        frozen_size = _size(path)
        time.sleep(0.5)
        assert _size(path) == frozen_size, "a frozen process made progress"
        manager.thaw()
        assert not manager.frozen()
        assert _grows(path)
        manager.kill()
        assert proc.wait(10) == -9
        assert manager.procs() == []
        manager.destroy()
        assert not manager.exists()
        manager.remove_parent()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if os.path.exists(path):
            os.unlink(path)


def test_v2_core_files_on_a_cgroup2_mount(parent):
    mount = _v2_mount()
    if mount is None:
        pytest.skip("no cgroup2 mount on this host")
    m = V2Manager(parent, "c" + secrets.token_hex(8), mount=mount)
    assert m.paths() == {"unified": os.path.join(mount, parent, m.name)}
    _exercise(m)
    assert not os.path.exists(os.path.join(mount, parent))


def test_host_backend_freezes_and_kills(parent):
    kind, _where = cgroups.detect()
    if kind == "none":
        pytest.skip("no cgroup hierarchy")
    m = cgroups.open_manager(parent, "c" + secrets.token_hex(8))
    assert m.version == kind
    if kind == "v1":
        assert "freezer" in m.paths()
        assert m.paths()["freezer"].endswith(f"/freezer/{parent}/{m.name}")
    _exercise(m)


def test_v1_freezer_state_file(parent):
    kind, where = cgroups.detect()
    if kind != "v1":
        pytest.skip("the host runs cgroup v2 only")
    from workers.runtime.cgroups.v1 import V1Manager

    m = V1Manager(parent, "c" + secrets.token_hex(8), mounts=where)
    m.create()
    try:
        state = os.path.join(m.paths()["freezer"], "freezer.state")
        with open(state) as f:
            assert f.read().strip() == "THAWED"
        m.freeze()  # an empty cgroup freezes at once
        with open(state) as f:
            assert f.read().strip() == "FROZEN"
        m.thaw()
        with open(state) as f:
            assert f.read().strip() == "THAWED"
    finally:
        m.destroy()
        m.remove_parent()


def test_config_types_and_validation():
    assert validate(CgroupConfig("dockyard", "a" * 64)).resources.items() == {}
    for bad in ("", "..", "a/b", "-x", "a\nb"):
        with pytest.raises(CgroupConfigError):
            validate(CgroupConfig(bad, "x"))
        with pytest.raises(CgroupConfigError):
            validate(CgroupConfig("dockyard", bad))
    with pytest.raises(cgroups.CgroupError):
        cgroups.open_manager("a/b", "x")
    assert cgroups.parent_name("dy") == "dockyard"
    assert cgroups.parent_name("dt1a2b") == "dockyard-dt1a2b"


def test_apply_empty_resources_is_a_no_op(parent):
    m = cgroups.open_manager(parent, "c" + secrets.token_hex(8))
    m.create()
    try:
        m.apply(Resources())
    finally:
        m.destroy()
        m.remove_parent()


# ------------------------------------------------------------------ containers

@pytest.fixture(params=["launcher", "direct"])
def crt(request, parent, runtime_factory):
    # parent first: its teardown (removing the cgroups) runs after the runtime's
    rt = runtime_factory(launcher=request.param == "launcher", cgroup_parent=parent)
    if request.param == "launcher":
        assert rt.start_launcher()
    return rt


def _upper_size(rt, cid, rel):
    return _size(os.path.join(rt.containers, cid, "upper", rel))


def _grows_in(rt, cid, rel, within=10.0):
    start = _upper_size(rt, cid, rel)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if _upper_size(rt, cid, rel) > start:
            return True
    return False


def test_pause_freezes_and_unpause_resumes(crt, make_spec, parent):
    spec = make_spec(["sh", "-c", "while true; do echo x >> /counter; sleep 0.01; done"])
    crt.create(spec)
    pid = crt.start(spec.id)
    assert spec.cgroup_parent == parent
    with open(f"/proc/{pid}/cgroup") as f:  # PID 1 runs in its cgroup from the start
        assert f"/{parent}/{spec.id}" in f.read()
    cg = crt.cgroup(spec.id)
    assert pid in cg.procs()
    assert _grows_in(crt, spec.id, "counter")

    crt.pause(spec.id)
    st = crt.state(spec.id)
    assert (st.status, st.pid) == ("paused", pid)
    assert cg.frozen()
    size = _upper_size(crt, spec.id, "counter")
    time.sleep(0.6)
    assert _upper_size(crt, spec.id, "counter") == size, "a paused container made progress"
    with pytest.raises(Conflict, match=f"Container {spec.id} is already paused"):
        crt.pause(spec.id)

    crt.unpause(spec.id)
    assert crt.state(spec.id).status == "running"
    assert not cg.frozen()
    assert _grows_in(crt, spec.id, "counter")
    with pytest.raises(Conflict, match=f"Container {spec.id} is not paused"):
        crt.unpause(spec.id)

    crt.pause(spec.id)  # stopping a paused container thaws it so that it can die
    st = crt.stop(spec.id, timeout=5)
    assert st.status == "exited" and not cg.frozen()
    with pytest.raises(NotRunning, match=f"Container {spec.id} is not running"):
        crt.pause(spec.id)
    with pytest.raises(Conflict, match=f"Container {spec.id} is not paused"):
        crt.unpause(spec.id)

    crt.remove(spec.id)
    assert not cg.exists()


def test_kill_of_a_paused_container(crt, make_spec):
    spec = make_spec(["sleep", "1000"])
    crt.create(spec)
    crt.start(spec.id)
    crt.pause(spec.id)
    crt.kill(spec.id, "SIGKILL")
    assert crt.wait(spec.id, 10) == 137
    assert not crt.cgroup(spec.id).frozen()
    # a fresh start is not frozen either
    crt.start(spec.id)
    assert crt.state(spec.id).status == "running"
    crt.remove(spec.id, force=True)


def test_no_cgroup_parent_means_no_pause(runtime_factory, make_spec):
    rt = runtime_factory(launcher=False)
    spec = make_spec(["sleep", "1000"])
    rt.create(spec)
    rt.start(spec.id)
    with pytest.raises(Exception, match="no cgroup"):
        rt.pause(spec.id)
    assert rt.state(spec.id).status == "running"
    rt.remove(spec.id, force=True)
