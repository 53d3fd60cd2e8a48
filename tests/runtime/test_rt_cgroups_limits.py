"""Cgroup limits on the real kernel: each limit's file, the v2 backend against a fixture
tree, and enforcement measured from the host (memory -> OOM kill, --cpus, --pids-limit,
--cpuset-cpus), plus ``Runtime.update`` on a running container."""

import json
import os
import secrets
import subprocess
import time

import pytest

from workers.runtime import cgroups
from workers.runtime.cgroups.config import Resources, quota_from_nano_cpus
from workers.runtime.cgroups.v2 import V2Manager, cpu_weight, io_weight
from workers.runtime.cgroups.validate import CgroupConfigError, validate_nano_cpus

DEAD_REDIS = "redis://127.0.0.1:1/0"
MiB = 1024 * 1024


def _v1_or_skip():
    kind, where = cgroups.detect()
    if kind != "v1":
        pytest.skip("these checks read the v1 files of this host")
    return where


def _read(path):
    with open(path) as f:
        return f.read().strip()


@pytest.fixture
def lrt(cgroup_parent, runtime_factory):
    # cgroup_parent first: its teardown (removing the cgroups) runs after the runtime's
    return runtime_factory(launcher=False, cgroup_parent=cgroup_parent)


def _start(rt, make_spec, args, **resources):
    spec = make_spec(args, resources=resources)
    rt.create(spec)
    pid = rt.start(spec.id)
    return spec.id, pid


def test_each_limit_in_its_v1_file(cgroup_parent):
    mounts = _v1_or_skip()
    m = cgroups.open_manager(cgroup_parent, "c" + secrets.token_hex(8))
    m.create()
    try:
        m.apply(Resources(memory=256 * MiB, memory_swap=512 * MiB,
                          memory_reservation=128 * MiB, oom_kill_disable=True, cpu_shares=512,
                          cpu_period=100000, cpu_quota=75000, cpuset_cpus="0", cpuset_mems="0",
                          pids_limit=20, blkio_weight=300))

        def f(ctrl, name):
            return _read(os.path.join(mounts[ctrl], cgroup_parent, m.name, name))

        assert f("memory", "memory.limit_in_bytes") == str(256 * MiB)
        assert f("memory", "memory.memsw.limit_in_bytes") == str(512 * MiB)
        assert f("memory", "memory.soft_limit_in_bytes") == str(128 * MiB)
        assert "oom_kill_disable 1" in f("memory", "memory.oom_control")
        assert f("cpu", "cpu.shares") == "512"
        assert (f("cpu", "cpu.cfs_period_us"), f("cpu", "cpu.cfs_quota_us")) == ("100000",
                                                                                 "75000")
        assert (f("cpuset", "cpuset.cpus"), f("cpuset", "cpuset.mems")) == ("0", "0")
        assert f("pids", "pids.max") == "20"
        # lowering memory below the old memsw and raising both again both work
        m.apply(Resources(memory=64 * MiB, memory_swap=64 * MiB))
        assert f("memory", "memory.memsw.limit_in_bytes") == str(64 * MiB)
        m.apply(Resources(memory=1024 * MiB, memory_swap=-1, pids_limit=-1, cpu_quota=-1))
        assert f("memory", "memory.limit_in_bytes") == str(1024 * MiB)
        assert int(f("memory", "memory.memsw.limit_in_bytes")) > 2**60
        assert f("pids", "pids.max") == "max"
        assert f("cpu", "cpu.cfs_quota_us") == "-1"
        assert m.oom_kills() == 0
    finally:
        m.destroy()
        m.remove_parent()


def test_validation_words():
    from workers.runtime.cgroups.validate import validate_resources

    ok = Resources(memory=6 * MiB)
    assert validate_resources(ok) is ok
    for bad, words in [
        (Resources(memory=4 * MiB), "Minimum memory limit allowed is 6MB"),
        (Resources(memory=64 * MiB, memory_swap=32 * MiB),
         "Minimum memoryswap limit should be larger than memory limit"),
        (Resources(memory_swap=32 * MiB), "You should always set the Memory limit"),
        (Resources(memory=8 * MiB, memory_reservation=16 * MiB),
         "Minimum memory limit can not be less than memory reservation limit"),
        (Resources(cpuset_cpus="0-99"), "Requested CPUs are not available - requested 0-99"),
        (Resources(cpuset_cpus="a"), "Invalid value a for cpuset cpus: invalid format: a"),
        (Resources(cpuset_mems="7"), "Requested memory nodes are not available"),
        (Resources(cpu_period=10), "CPU cfs period can not be less than 1ms"),
        (Resources(cpu_quota=10), "CPU cfs quota can not be less than 1ms"),
        (Resources(blkio_weight=5), "Range of blkio weight is from 10 to 1000"),
        (Resources(oom_kill_disable="yes"), "invalid value for oom_kill_disable"),
    ]:
        with pytest.raises(CgroupConfigError, match=words):
            validate_resources(bad)
    n = len(os.sched_getaffinity(0))
    with pytest.raises(CgroupConfigError, match=f"Range of CPUs is from 0.01 to {n}.00, as "
                                                f"there are only {n} CPUs available"):
        validate_nano_cpus((n + 1) * 10**9)
    with pytest.raises(CgroupConfigError, match="Nano CPUs and CPU Period cannot both be set"):
        validate_nano_cpus(10**9, cpu_period=100000)
    with pytest.raises(CgroupConfigError, match="Nano CPUs and CPU Quota cannot both be set"):
        validate_nano_cpus(10**9, cpu_quota=50000)
    assert quota_from_nano_cpus(750_000_000) == 75000


V2_FILES = ("cgroup.procs", "memory.max", "memory.swap.max", "memory.low", "memory.events",
            "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems", "pids.max", "io.bfq.weight")


def test_v2_backend_writes_limits_into_a_fixture_tree(tmp_path):
    m = V2Manager("dockyard-fixture", "c1", mount=str(tmp_path))
    os.makedirs(m.path)
    for name in V2_FILES:
        (tmp_path / "dockyard-fixture" / "c1" / name).write_text("")
    (tmp_path / "dockyard-fixture" / "c1" / "memory.events").write_text(
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    m.apply(Resources(memory=256 * MiB, memory_swap=512 * MiB, memory_reservation=64 * MiB,
                      oom_kill_disable=True, cpu_shares=1024, cpu_period=100000,
                      cpu_quota=quota_from_nano_cpus(750_000_000), cpuset_cpus="0",
                      cpuset_mems="0", pids_limit=20, blkio_weight=300))

    def f(name):
        return (tmp_path / "dockyard-fixture" / "c1" / name).read_text()

    assert f("memory.max") == str(256 * MiB)
    assert f("memory.swap.max") == str(256 * MiB)  # the total minus memory
    assert f("memory.low") == str(64 * MiB)
    assert f("cpu.weight") == "39"  # runc: 1 + ((1024 - 2) * 9999) / 262142
    assert f("cpu.max") == "75000 100000"
    assert (f("cpuset.cpus"), f("cpuset.mems"), f("pids.max")) == ("0", "0", "20")
    assert f("io.bfq.weight") == "300"
    assert m.oom_kills() == 1
    for name in ("memory.swap.max", "pids.max", "cpu.max"):  # plain files: no truncation
        (tmp_path / "dockyard-fixture" / "c1" / name).write_text("")
    m.apply(Resources(memory_swap=-1, memory=256 * MiB, pids_limit=0, cpu_quota=-1,
                      cpu_period=100000))
    assert (f("memory.swap.max"), f("pids.max"), f("cpu.max")) == ("max", "max", "max 100000")
    assert (cpu_weight(2), cpu_weight(262144), cpu_weight(512)) == (1, 10000, 20)
    assert (io_weight(10), io_weight(1000)) == (1, 10000)
    (tmp_path / "dockyard-fixture" / "c1" / "io.bfq.weight").unlink()
    (tmp_path / "dockyard-fixture" / "c1" / "io.weight").write_text("")
    m.apply(Resources(blkio_weight=500))
    assert f("io.weight") == f"default {io_weight(500)}"


def test_v2_parent_delegates_its_controllers_only(tmp_path, monkeypatch):
    """create() enables, in Dockyard's parent only, what that parent was given."""
    from workers.runtime.cgroups import v2

    parent = str(tmp_path / "dockyard-fixture")
    written = []
    real_mkdir = os.mkdir

    def mkdir(path, mode=0o777):  # cgroupfs gives a new cgroup its controllers file
        real_mkdir(path, mode)
        if path == parent:
            with open(os.path.join(path, "cgroup.controllers"), "w") as f:
                f.write("cpuset cpu io memory pids\n")

    monkeypatch.setattr(v2.os, "mkdir", mkdir)
    monkeypatch.setattr(v2, "_write", lambda path, text: written.append((path, text)))
    V2Manager("dockyard-fixture", "c1", mount=str(tmp_path)).create()
    assert written == [(os.path.join(parent, "cgroup.subtree_control"), "+" + c)
                       for c in ("cpuset", "cpu", "io", "memory", "pids")]
    assert os.path.isdir(os.path.join(parent, "c1"))


# ------------------------------------------------------------------ enforcement

def test_memory_limit_kills_with_oom(lrt, make_spec):
    _v1_or_skip()
    cid, _pid = _start(lrt, make_spec, ["tail", "/dev/zero"], memory=16 * MiB,
                       memory_swap=16 * MiB)
    assert lrt.wait(cid, 10) == 137
    st = lrt.state(cid)
    assert st.oom_killed and st.exit_code == 137
    with open(os.path.join(lrt.containers, cid, "state.json")) as f:
        assert json.load(f)["oom_killed"] is True
    # the next run starts with a clean slate
    lrt.start(cid)
    assert not lrt.state(cid).oom_killed
    lrt.kill(cid, "SIGKILL")
    assert lrt.wait(cid, 10) == 137 and not lrt.state(cid).oom_killed


def _cpu_usage_ns(rt, cid):
    paths = rt.cgroup(cid).paths()
    for path in paths.values():
        usage = os.path.join(path, "cpuacct.usage")
        if os.path.exists(usage):
            return int(_read(usage))
    with open(os.path.join(paths["unified"], "cpu.stat")) as f:
        return int(f.readline().split()[1]) * 1000


def test_cpus_half_a_core(lrt, make_spec):
    cid, _pid = _start(lrt, make_spec, ["sh", "-c", "while :; do :; done"],
                       cpu_period=100000, cpu_quota=quota_from_nano_cpus(500_000_000))
    time.sleep(0.3)
    t0, u0 = time.monotonic(), _cpu_usage_ns(lrt, cid)
    time.sleep(2.0)
    share = (_cpu_usage_ns(lrt, cid) - u0) / ((time.monotonic() - t0) * 1e9)
    assert 0.35 <= share <= 0.65, f"a busy loop under --cpus 0.5 used {share:.2f} of a core"


def test_fork_bomb_stops_at_pids_limit(lrt, make_spec, read_log):
    cid, _pid = _start(lrt, make_spec, ["sh", "-c",
                                        "i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); "
                                        "done; echo started $i; sleep 30"], pids_limit=20)
    cg = lrt.cgroup(cid)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _out, err = read_log(lrt, cid)
        if "fork" in err.lower():
            break
        time.sleep(0.1)
    assert "fork" in err.lower(), err
    assert len(cg.procs()) <= 20
    pids_dir = cg.paths().get("pids") or cg.paths()["unified"]
    assert int(_read(os.path.join(pids_dir, "pids.current"))) <= 20
    assert subprocess.run(["true"], timeout=10).returncode == 0  # the host still forks
    lrt.remove(cid, force=True)


def test_cpuset_cpus_0_in_cpus_allowed_list(lrt, make_spec, read_log):
    cid, _pid = _start(lrt, make_spec, ["grep", "Cpus_allowed_list", "/proc/self/status"],
                       cpuset_cpus="0")
    assert lrt.wait(cid, 10) == 0
    out, _err = read_log(lrt, cid)
    assert out.split() == ["Cpus_allowed_list:", "0"]


def test_update_changes_a_running_container_and_the_next_start(lrt, make_spec):
    where = _v1_or_skip()
    cid, _pid = _start(lrt, make_spec, ["sleep", "30"], memory=64 * MiB, pids_limit=50)
    limit = os.path.join(where["memory"], lrt.cgroup_parent, cid, "memory.limit_in_bytes")
    assert _read(limit) == str(64 * MiB)
    lrt.update(cid, {"memory": 96 * MiB, "pids_limit": 50})
    assert _read(limit) == str(96 * MiB)
    assert lrt.spec(cid).resources == {"memory": 96 * MiB, "pids_limit": 50}
    with pytest.raises(Exception, match="Minimum memory limit allowed is 6MB"):
        lrt.update(cid, {"memory": 1024})
    assert _read(limit) == str(96 * MiB)
    lrt.kill(cid, "SIGKILL")
    lrt.wait(cid, 10)
    lrt.update(cid, {"memory": 128 * MiB})  # stopped: for the next start
    assert _read(limit) == str(96 * MiB)
    lrt.start(cid)
    assert _read(limit) == str(128 * MiB)
