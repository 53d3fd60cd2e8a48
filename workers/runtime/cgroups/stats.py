"""What a container has used, read from its cgroup (``docker stats``), for both backends.

``read(manager)`` takes the container's ``Manager`` (``open_manager(parent, id)``) and reads
the files of its hierarchy (``manager.version``): v1 ``cpuacct``/``cpu``/``memory``/``pids``/
``blkio`` files, found in whichever of ``manager.paths()`` has them (co-mounted controllers
share a directory); v2 the one directory's ``cpu.stat``, ``memory.*``, ``pids.*``, ``io.stat``.
A file that is missing (controller not mounted or not enabled) reads as "unknown": 0, or
``None`` for limits. ``network(pid)`` reads the interfaces of a process's network namespace.

Counters are as the kernel keeps them since the cgroup was made; rates are the caller's
business (two reads and a delta).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

USER_HZ = os.sysconf("SC_CLK_TCK")  # the unit of cpuacct.stat and /proc/stat
NS_PER_S = 1_000_000_000


@dataclass
class BlkioEntry:
    major: int
    minor: int
    op: str  # v1: Read, Write, Sync, Async, Discard, Total; v2: read, write
    value: int


@dataclass
class CgroupStats:
    cpu_total_ns: int = 0
    cpu_user_ns: int = 0
    cpu_system_ns: int = 0
    cpu_percpu_ns: list[int] = field(default_factory=list)  # v1 only
    throttle_periods: int = 0
    throttled_periods: int = 0
    throttled_time_ns: int = 0
    memory_usage: int = 0
    memory_max_usage: int = 0  # v1 max_usage_in_bytes, v2 memory.peak (Linux 5.19+)
    memory_limit: int | None = None  # None: no limit on this cgroup
    memory_failcnt: int = 0  # v1 only
    memory_stat: dict[str, int] = field(default_factory=dict)
    pids_current: int = 0
    pids_limit: int | None = None
    io_service_bytes: list[BlkioEntry] = field(default_factory=list)
    io_serviced: list[BlkioEntry] = field(default_factory=list)


@dataclass
class InterfaceStats:
    rx_bytes: int = 0
    rx_packets: int = 0
    rx_errors: int = 0
    rx_dropped: int = 0
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    tx_dropped: int = 0


def read(manager) -> CgroupStats:
    """The usage of the cgroup ``manager`` manages (empty when it has no hierarchy)."""
    paths = manager.paths()
    if manager.version == "v2":
        return read_v2(paths["unified"])
    if manager.version == "v1":
        return read_v1(list(paths.values()))
    return CgroupStats()


# ---------------------------------------------------------------------------- v1

def read_v1(dirs: list[str]) -> CgroupStats:
    def text(name):
        for d in dirs:
            found = _text(os.path.join(d, name))
            if found is not None:
                return found
        return None

    s = CgroupStats()
    s.cpu_total_ns = _int(text("cpuacct.usage"))
    s.cpu_percpu_ns = [int(x) for x in (text("cpuacct.usage_percpu") or "").split()]
    ticks = _keyed(text("cpuacct.stat"))
    s.cpu_user_ns = ticks.get("user", 0) * NS_PER_S // USER_HZ
    s.cpu_system_ns = ticks.get("system", 0) * NS_PER_S // USER_HZ
    cpu = _keyed(text("cpu.stat"))
    s.throttle_periods = cpu.get("nr_periods", 0)
    s.throttled_periods = cpu.get("nr_throttled", 0)
    s.throttled_time_ns = cpu.get("throttled_time", 0)

    s.memory_usage = _int(text("memory.usage_in_bytes"))
    s.memory_max_usage = _int(text("memory.max_usage_in_bytes"))
    s.memory_failcnt = _int(text("memory.failcnt"))
    s.memory_stat = _keyed(text("memory.stat"))
    limit = _limit(text("memory.limit_in_bytes"))
    # "unlimited" in v1 is PAGE_COUNTER_MAX pages, rounded down to a page: 2**63 - page size
    s.memory_limit = None if limit is None or limit >= 2**62 else limit

    s.pids_current = _int(text("pids.current"))
    s.pids_limit = _limit(text("pids.max"))

    s.io_service_bytes = _blkio_v1(text("blkio.throttle.io_service_bytes_recursive")
                                   or text("blkio.throttle.io_service_bytes"))
    s.io_serviced = _blkio_v1(text("blkio.throttle.io_serviced_recursive")
                              or text("blkio.throttle.io_serviced"))
    return s


def _blkio_v1(content: str | None) -> list[BlkioEntry]:
    """Lines "8:0 Read 4096"; the closing "Total <n>" line (no device) is left out."""
    entries = []
    for line in (content or "").splitlines():
        parts = line.split()
        if len(parts) != 3 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        entries.append(BlkioEntry(int(major), int(minor), parts[1], int(parts[2])))
    return entries


# ---------------------------------------------------------------------------- v2

def read_v2(path: str) -> CgroupStats:
    def text(name):
        return _text(os.path.join(path, name))

    s = CgroupStats()
    cpu = _keyed(text("cpu.stat"))
    s.cpu_total_ns = cpu.get("usage_usec", 0) * 1000
    s.cpu_user_ns = cpu.get("user_usec", 0) * 1000
    s.cpu_system_ns = cpu.get("system_usec", 0) * 1000
    s.throttle_periods = cpu.get("nr_periods", 0)
    s.throttled_periods = cpu.get("nr_throttled", 0)
    s.throttled_time_ns = cpu.get("throttled_usec", 0) * 1000

    s.memory_usage = _int(text("memory.current"))
    s.memory_max_usage = _int(text("memory.peak"))
    s.memory_stat = _keyed(text("memory.stat"))
    s.memory_limit = _limit(text("memory.max"))

    s.pids_current = _int(text("pids.current"))
    s.pids_limit = _limit(text("pids.max"))

    for line in (text("io.stat") or "").splitlines():
        device, *pairs = line.split()
        major, _, minor = device.partition(":")
        values = dict(p.split("=", 1) for p in pairs if "=" in p)
        for key, op, into in (("rbytes", "read", s.io_service_bytes),
                              ("wbytes", "write", s.io_service_bytes),
                              ("rios", "read", s.io_serviced),
                              ("wios", "write", s.io_serviced)):
            into.append(BlkioEntry(int(major), int(minor), op, int(values.get(key, 0))))
    return s


# ---------------------------------------------------------------------------- network

def network(pid: int) -> dict[str, InterfaceStats]:
    """{interface: counters} of the network namespace ``pid`` is in; empty when it is the
    caller's own (a container on the host's network has no numbers of its own) or gone."""
    try:
        theirs = os.stat(f"/proc/{pid}/ns/net")
        ours = os.stat("/proc/self/ns/net")
    except OSError:
        return {}
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
        return {}
    return parse_net_dev(_text(f"/proc/{pid}/net/dev") or "")


def parse_net_dev(content: str) -> dict[str, InterfaceStats]:
    """/proc/net/dev: two header lines, then "name: rx bytes packets errs drop fifo frame
    compressed multicast tx bytes packets errs drop fifo colls carrier compressed"."""
    found = {}
    for line in content.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or len(fields) < 12:
            continue
        n = [int(x) for x in fields]
        found[name.strip()] = InterfaceStats(
            rx_bytes=n[0], rx_packets=n[1], rx_errors=n[2], rx_dropped=n[3],
            tx_bytes=n[8], tx_packets=n[9], tx_errors=n[10], tx_dropped=n[11])
    return found


# ---------------------------------------------------------------------------- files

def _text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:  # missing file, or the cgroup went away between two reads
        return None


def _int(content: str | None) -> int:
    try:
        return int((content or "").strip() or 0)
    except ValueError:
        return 0


def _limit(content: str | None) -> int | None:
    """A limit file: a number, or "max" (v2 memory.max, pids.max; v1 pids.max) for none."""
    value = (content or "").strip()
    if not value or value == "max":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _keyed(content: str | None) -> dict[str, int]:
    """Flat keyed files ("key value" per line): cpu.stat, memory.stat, cpuacct.stat."""
    out = {}
    for line in (content or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            pass
    return out
