"""Validation of cgroup configs (apart from the types, as in runc's libcontainer).

The limits are checked with dockerd's rules and words (daemon_unix.go
``verifyPlatformContainerResources``), so the panel can pass the messages on as they are.
"""

from __future__ import annotations

import os
import re

from .config import CgroupConfig, Resources

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MIN_MEMORY = 6 * 1024 * 1024  # dockerd's linuxMinMemory
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144
ONLINE_CPUS = "/sys/devices/system/cpu/online"
ONLINE_NODES = "/sys/devices/system/node/online"


class CgroupConfigError(ValueError):
    """An invalid cgroup configuration."""


def validate_name(what: str, value) -> str:
    if not isinstance(value, str) or not _NAME.match(value) or value in (".", ".."):
        raise CgroupConfigError(f"invalid cgroup {what} {value!r}: want [A-Za-z0-9_.-], "
                                "starting with a letter or digit")
    return value


def parse_list(text: str) -> set[int]:
    """A cpuset list ("0-2,4") -> its numbers; ValueError("invalid format: ...")."""
    out: set[int] = set()
    if not text:
        return out
    for part in text.split(","):
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError(f"invalid format: {text}")
        first, last = int(low), int(high) if sep else int(low)
        if last < first:
            raise ValueError(f"invalid format: {text}")
        out.update(range(first, last + 1))
    return out


def _online(path: str, default: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() or default
    except OSError:
        return default


def online_cpus() -> str:
    return _online(ONLINE_CPUS, "0")


def online_mems() -> str:
    return _online(ONLINE_NODES, "0")


def cpu_count() -> int:
    """The CPUs this process may run on (dockerd's sysinfo.NumCPU)."""
    return len(os.sched_getaffinity(0))


def validate_nano_cpus(nano_cpus: int, cpu_period: int = 0, cpu_quota: int = 0) -> None:
    """--cpus, which becomes a CFS quota over 100 ms: not together with either."""
    if not nano_cpus:
        return
    if cpu_period:
        raise CgroupConfigError("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if cpu_quota:
        raise CgroupConfigError("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    ncpu = cpu_count()
    if nano_cpus < 0 or nano_cpus > ncpu * 1_000_000_000:
        raise CgroupConfigError(f"Range of CPUs is from 0.01 to {ncpu}.00, as there are only "
                                f"{ncpu} CPUs available")


def _cpuset(value: str, what: str, available: str, unavailable: str) -> None:
    try:
        wanted = parse_list(value)
    except ValueError as e:
        raise CgroupConfigError(f"Invalid value {value} for cpuset {what}: {e}") from None
    if not wanted <= parse_list(available):
        raise CgroupConfigError(f"Requested {unavailable} are not available - requested "
                                f"{value}, available: {available}")


def validate_resources(resources: Resources) -> Resources:
    if not isinstance(resources, Resources):
        raise CgroupConfigError("resources must be a Resources")
    r = resources
    for key, value in r.items().items():
        if key == "oom_kill_disable":
            ok = isinstance(value, bool)
        elif key in ("cpuset_cpus", "cpuset_mems"):
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok:
            raise CgroupConfigError(f"invalid value for {key}: {value!r}")
    memory = r.memory or 0
    if memory < 0:
        raise CgroupConfigError("Memory limit can not be negative")
    if 0 < memory < MIN_MEMORY:
        raise CgroupConfigError("Minimum memory limit allowed is 6MB")
    swap = r.memory_swap or 0
    if swap < -1:
        raise CgroupConfigError("invalid value for memory_swap: want bytes or -1 (unlimited)")
    if swap > 0 and not memory:
        raise CgroupConfigError("You should always set the Memory limit when using Memoryswap "
                                "limit, see usage")
    if memory and swap > 0 and swap < memory:
        raise CgroupConfigError("Minimum memoryswap limit should be larger than memory limit, "
                                "see usage")
    reservation = r.memory_reservation or 0
    if reservation < 0:
        raise CgroupConfigError("Memory reservation can not be negative")
    if memory and reservation and memory < reservation:
        raise CgroupConfigError("Minimum memory limit can not be less than memory reservation "
                                "limit, see usage")
    if 0 < reservation < MIN_MEMORY:
        raise CgroupConfigError("Minimum memory reservation allowed is 6MB")
    if r.cpu_shares is not None and not MIN_CPU_SHARES <= r.cpu_shares <= MAX_CPU_SHARES:
        raise CgroupConfigError(f"CPU shares must be from {MIN_CPU_SHARES} to {MAX_CPU_SHARES}")
    if r.cpu_period and not 1000 <= r.cpu_period <= 1000000:
        raise CgroupConfigError("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                                "than 1s (i.e. 1000000)")
    if r.cpu_quota is not None and (0 < r.cpu_quota < 1000 or r.cpu_quota < -1):
        raise CgroupConfigError("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if r.cpuset_cpus:
        _cpuset(r.cpuset_cpus, "cpus", online_cpus(), "CPUs")
    if r.cpuset_mems:
        _cpuset(r.cpuset_mems, "mems", online_mems(), "memory nodes")
    if r.blkio_weight and not 10 <= r.blkio_weight <= 1000:
        raise CgroupConfigError("Range of blkio weight is from 10 to 1000")
    return resources


def validate(config: CgroupConfig) -> CgroupConfig:
    if not isinstance(config, CgroupConfig):
        raise CgroupConfigError("not a CgroupConfig")
    validate_name("parent", config.parent)
    validate_name("name", config.name)
    validate_resources(config.resources)
    return config
