"""The stats reader (workers/runtime/cgroups/stats.py): the v2 files against a fixture tree,
the v1 files on this host's real kernel (CPU, memory, pids and block IO used by a process
in a test cgroup), and the network counters of a real container's own namespace."""

import os
import subprocess
import sys
import tempfile
import time

import pytest

from workers.runtime import cgroups
from workers.runtime.cgroups import stats
from workers.runtime.cgroups.v2 import V2Manager

needs_v1 = pytest.mark.skipif(cgroups.detect()[0] != "v1",
                              reason="this host does not run the v1 controllers")

V2_FILES = {
    "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
                "nr_periods 40\nnr_throttled 7\nthrottled_usec 123456\n",
    "memory.current": "52428800\n",
    "memory.peak": "60000000\n",
    "memory.max": "268435456\n",
    "memory.stat": "anon 40000000\nfile 12000000\ninactive_file 3000000\nactive_file 9000000\n",
    "pids.current": "3\n",
    "pids.max": "100\n",
    "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
               "253:1 rbytes=100 wbytes=0 rios=3 wios=0 dbytes=0 dios=0\n",
}


def _fixture_tree(root, files):
    path = os.path.join(root, "dockyard", "c1")
    os.makedirs(path)
    for name, content in files.items():
        with open(os.path.join(path, name), "w") as f:
            f.write(content)
    return V2Manager("dockyard", "c1", mount=root)


def test_v2_reader_on_a_fixture_tree(tmp_path):
    s = stats.read(_fixture_tree(str(tmp_path), V2_FILES))
    assert (s.cpu_total_ns, s.cpu_user_ns, s.cpu_system_ns) == (2_500_000_000, 2_000_000_000,
                                                                  500_000_000)
    assert s.cpu_percpu_ns == []  # v2 keeps no per-CPU counters
    assert (s.throttle_periods, s.throttled_periods, s.throttled_time_ns) == (40, 7, 123_456_000)
    assert (s.memory_usage, s.memory_max_usage, s.memory_limit) == (52428800, 60000000,
                                                                   268435456)
    assert s.memory_stat["inactive_file"] == 3000000 and s.memory_stat["anon"] == 40000000
    assert (s.pids_current, s.pids_limit) == (3, 100)
    assert [(e.major, e.minor, e.op, e.value) for e in s.io_service_bytes] == [
        (8, 0, "read", 4096), (8, 0, "write", 8192), (253, 1, "read", 100), (253, 1, "write", 0)]
    assert [(e.op, e.value) for e in s.io_serviced] == [("read", 1), ("write", 2), ("read", 3),
                                                        ("write", 0)]


def test_v2_reader_without_limits_or_optional_files(tmp_path):
    files = dict(V2_FILES, **{"memory.max": "max\n", "pids.max": "max\n"})
    del files["memory.peak"]  # Linux < 5.19
    del files["io.stat"]  # io controller not enabled
    s = stats.read(_fixture_tree(str(tmp_path), files))
    assert s.memory_limit is None and s.pids_limit is None
    assert s.memory_max_usage == 0 and s.io_service_bytes == [] and s.io_serviced == []
    assert s.memory_usage == 52428800


def test_v2_core_cpu_stat_on_the_real_unified_mount(cgroup_parent):
    """cpu.stat exists in every cgroup2 group, controllers or not: a busy process shows."""
    v2, _v1 = cgroups.cgroup_mounts()
    if not v2:
        pytest.skip("no cgroup2 mount")
    manager = V2Manager(cgroup_parent, "busy", mount=sorted(v2, key=len)[0])
    manager.create()
    proc = subprocess.Popen([sys.executable, "-c", "import time\nend = time.process_time() + 0.4\n"
                             "while time.process_time() < end: pass\n"], stdin=subprocess.PIPE)
    try:
        manager.enter(proc.pid)
        proc.wait(10)
        s = stats.read(manager)
        assert s.cpu_total_ns > 350_000_000 and s.cpu_user_ns > 0
    finally:
        proc.kill()
        proc.wait()
        manager.destroy()


BUSY = """
import mmap, os, sys, time
sys.stdin.readline()                       # wait until the test moved us into the cgroup
block = bytearray(24 * 1024 * 1024)        # 24 MiB of anonymous memory, touched
for i in range(0, len(block), 4096):
    block[i] = 1
end = time.process_time() + 0.5            # half a second of CPU (however busy the host)
while time.process_time() < end:
    sum(range(20000))                      # user time, between two clock reads
buf = mmap.mmap(-1, 1 << 20)               # 1 MiB written with O_DIRECT: real block IO
buf.write(b"x" * (1 << 20))
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o600)
os.write(fd, buf)
os.close(fd)
print("ready", flush=True)
sys.stdin.readline()
"""


def _disk_of(path):
    """"major:minor" of the whole disk under ``path`` (throttle rules take disks only)."""
    dev = os.stat(path).st_dev
    sys_dir = os.path.realpath(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}")
    if os.path.exists(os.path.join(sys_dir, "partition")):
        sys_dir = os.path.dirname(sys_dir)
    with open(os.path.join(sys_dir, "dev")) as f:
        return f.read().strip()


@needs_v1
def test_v1_reader_on_the_real_kernel(cgroup_parent):
    manager = cgroups.open_manager(cgroup_parent, "busy")
    assert manager.version == "v1"
    manager.create()
    paths = manager.paths()
    # limits written by the test itself, in its own cgroup (applying them is not the reader's job)
    with open(os.path.join(paths["memory"], "memory.limit_in_bytes"), "w") as f:
        f.write(str(64 * 1024 * 1024))
    with open(os.path.join(paths["pids"], "pids.max"), "w") as f:
        f.write("20")
    scratch = tempfile.mkdtemp(prefix="dy-stats-", dir="/var/tmp")  # on disk, not tmpfs
    # Linux counts v1 blkio.throttle.* only on a disk that has some throttle rule (it turns
    # the throttle layer on for that disk lazily): a rule that never limits (1 TiB/s)
    with open(os.path.join(paths["blkio"], "blkio.throttle.write_bps_device"), "w") as f:
        f.write(f"{_disk_of(scratch)} {1 << 40}")
    empty = stats.read(manager)
    assert empty.cpu_total_ns == 0 and empty.pids_current == 0
    assert empty.memory_limit == 64 * 1024 * 1024 and empty.pids_limit == 20

    proc = subprocess.Popen([sys.executable, "-c", BUSY, os.path.join(scratch, "direct")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        manager.enter(proc.pid)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "ready\n"
        s = stats.read(manager)
        assert s.cpu_total_ns > 450_000_000
        assert len(s.cpu_percpu_ns) == os.cpu_count()
        assert abs(sum(s.cpu_percpu_ns) - s.cpu_total_ns) < 50_000_000
        assert s.cpu_user_ns > 200_000_000  # cpuacct.stat's ticks turned into ns
        assert s.cpu_user_ns + s.cpu_system_ns <= s.cpu_total_ns + 100_000_000
        assert s.memory_usage > 24 * 1024 * 1024
        assert s.memory_max_usage >= s.memory_usage
        assert s.memory_limit == 64 * 1024 * 1024
        assert s.memory_stat["rss"] > 20 * 1024 * 1024 and "total_inactive_file" in s.memory_stat
        assert s.pids_current == 1 and s.pids_limit == 20
        written = sum(e.value for e in s.io_service_bytes if e.op == "Write")
        assert written >= 1 << 20, s.io_service_bytes
        # per device, as runc and Docker list them; the file's last line (grand total) not
        assert {e.op for e in s.io_service_bytes} >= {"Read", "Write", "Sync", "Async", "Total"}
        assert all(e.major or e.minor for e in s.io_service_bytes)
        assert any(e.op == "Write" and e.value >= 1 for e in s.io_serviced)
    finally:
        proc.kill()
        proc.wait()
        manager.destroy()
        subprocess.run(["rm", "-rf", scratch], check=False)


def test_host_network_namespace_has_no_numbers_of_its_own():
    assert stats.network(os.getpid()) == {}
    assert stats.network(2**22 + 1) == {}  # no such process


def test_network_counters_of_a_container_namespace(runtime_factory, make_spec):
    """A container's PID 1 talks over its own lo: the counters move; the host's do not
    count in them."""
    rt = runtime_factory()
    spec = make_spec(["sh", "-c", "read x; nc -w 1 127.0.0.1 1 </dev/null; read y"],
                     open_stdin=True)
    rt.create(spec)
    rt.start(spec.id)
    pid = rt.state(spec.id).pid
    before = stats.network(pid)
    assert set(before) == {"lo"}
    assert before["lo"].tx_packets == 0
    sock = rt.connect(spec.id, "stdin")
    try:
        sock.sendall(b"go\n")
        deadline = time.monotonic() + 10
        while stats.network(pid)["lo"].tx_packets < 2:  # the SYN and the RST
            assert time.monotonic() < deadline, stats.network(pid)
            time.sleep(0.05)
        after = stats.network(pid)["lo"]
        assert after.rx_packets == after.tx_packets and after.tx_bytes > 0
    finally:
        sock.close()
        rt.remove(spec.id, force=True)
