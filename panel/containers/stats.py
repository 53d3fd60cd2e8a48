"""A container's resource usage as Docker's stats JSON (API v1.41, ``GET
/containers/{id}/stats``), and the few figures the panel's charts draw from it.

The numbers come from the container's node: its cgroup (``workers.runtime.cgroups.stats``),
its PID 1's network namespace and the node's ``/proc/stat``. Single-node build: the web and
API processes read them here themselves, through ``processes.node_runtime()``; a multi-node
build asks the container's node instead, in ``stats_json`` only.
"""

import os
import time

from .processes import node_runtime

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what Docker sends for "never"
NS_PER_S = 1_000_000_000
BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
              "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
              "io_time_recursive", "sectors_recursive")
LIVE = ("running", "paused")  # a paused container still has its cgroup and its numbers


def stats_json(container, previous: dict | None = None) -> dict:
    """Docker's stats object of ``container`` now; ``previous`` (the object of the last
    sample, if any) gives ``preread`` and ``precpu_stats``. A container that does not run
    gives zeros with an empty ``memory_stats``, as Docker's."""
    from workers.runtime.cgroups import stats as cgstats
    from workers.runtime.container import NotFound as RuntimeNotFound

    runtime = node_runtime()
    try:
        state = runtime.state(container.id)
        manager = runtime.cgroup(container.id) if state.status in LIVE and state.pid else None
    except (RuntimeNotFound, OSError):
        manager = None
    base = {
        "read": ZERO_TIME,
        "preread": previous["read"] if previous else ZERO_TIME,
        "pids_stats": {},
        "blkio_stats": dict.fromkeys(BLKIO_KEYS),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(),
        "precpu_stats": previous["cpu_stats"] if previous else _cpu(),
        "memory_stats": {},
        "name": "/" + container.name,
        "id": container.id,
    }
    if manager is None:
        return base
    read_at = time.time_ns()
    cg = cgstats.read(manager)
    system_ns, online = system_cpu()
    base["read"] = _rfc3339_ns(read_at)
    base["pids_stats"] = _nonzero(current=cg.pids_current, limit=cg.pids_limit or 0)
    base["blkio_stats"].update(
        io_service_bytes_recursive=[vars(e) for e in cg.io_service_bytes],
        io_serviced_recursive=[vars(e) for e in cg.io_serviced])
    base["cpu_stats"] = _cpu({
        "total_usage": cg.cpu_total_ns,
        **_nonzero(percpu_usage=cg.cpu_percpu_ns),  # v1 only
        "usage_in_kernelmode": cg.cpu_system_ns,
        "usage_in_usermode": cg.cpu_user_ns,
    }, system=system_ns, online=online,
        throttling=(cg.throttle_periods, cg.throttled_periods, cg.throttled_time_ns))
    host = host_memory()
    base["memory_stats"] = {
        "usage": cg.memory_usage,
        **_nonzero(max_usage=cg.memory_max_usage),
        "stats": cg.memory_stat,
        **_nonzero(failcnt=cg.memory_failcnt),
        # no limit (or one above the machine's memory): Docker reports the machine's
        "limit": min(cg.memory_limit, host) if cg.memory_limit else host,
    }
    networks = {name: vars(counters) for name, counters in cgstats.network(state.pid).items()}
    if networks:
        base["networks"] = networks
    return base


def summary(stats: dict) -> dict:
    """The figures ``docker stats`` shows, as counters (the panel's charts take deltas):
    memory without the inactive file cache, block IO read/write and network rx/tx summed
    over devices, exactly as the docker CLI adds them up."""
    cpu = stats["cpu_stats"]
    memory = stats["memory_stats"]
    usage = memory.get("usage", 0)
    page_cache = memory.get("stats", {})
    inactive = page_cache.get("total_inactive_file", page_cache.get("inactive_file", 0))
    blk_read = blk_write = 0
    for entry in stats["blkio_stats"]["io_service_bytes_recursive"] or []:
        op = entry["op"][:1].lower()
        if op == "r":
            blk_read += entry["value"]
        elif op == "w":
            blk_write += entry["value"]
    networks = stats.get("networks", {}).values()
    return {
        "running": stats["read"] != ZERO_TIME,
        "read": stats["read"],
        "cpu_total": cpu["cpu_usage"]["total_usage"],
        "system_cpu": cpu.get("system_cpu_usage", 0),
        "online_cpus": cpu.get("online_cpus", 0),
        "memory_usage": usage - inactive if inactive < usage else usage,
        "memory_limit": memory.get("limit", 0),
        "net_rx": sum(n["rx_bytes"] for n in networks),
        "net_tx": sum(n["tx_bytes"] for n in networks),
        "blk_read": blk_read,
        "blk_write": blk_write,
        "pids": stats["pids_stats"].get("current", 0),
        "pids_limit": stats["pids_stats"].get("limit", 0),
    }


def system_cpu(path: str = "/proc/stat") -> tuple[int, int]:
    """(the node's CPU time in ns: user..softirq of the "cpu" line, as Docker adds it up;
    the number of online CPUs: the "cpuN" lines)."""
    total, online = 0, 0
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.startswith("cpu "):
                total = sum(int(x) for x in line.split()[1:8]) * NS_PER_S // os.sysconf(
                    "SC_CLK_TCK")
            elif line.startswith("cpu"):
                online += 1
            else:
                break
    return total, online


def host_memory(path: str = "/proc/meminfo") -> int:
    """The node's memory in bytes (MemTotal)."""
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu(usage: dict | None = None, *, system: int = 0, online: int = 0,
         throttling: tuple[int, int, int] = (0, 0, 0)) -> dict:
    """cpu_stats / precpu_stats: Docker always sends cpu_usage's three counters and
    throttling_data; system_cpu_usage and online_cpus only when known."""
    return {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0,
                      **(usage or {})},
        **_nonzero(system_cpu_usage=system, online_cpus=online),
        "throttling_data": dict(zip(("periods", "throttled_periods", "throttled_time"),
                                    throttling, strict=True)),
    }


def _nonzero(**values) -> dict:
    """The fields Docker tags omitempty: left out when 0 (or empty)."""
    return {k: v for k, v in values.items() if v}


def _rfc3339_ns(ns: int) -> str:
    """Go's RFC3339Nano in UTC (trailing zeros of the fraction trimmed)."""
    seconds, fraction = divmod(ns, NS_PER_S)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if fraction:
        text += "." + f"{fraction:09d}".rstrip("0")
    return text + "Z"
