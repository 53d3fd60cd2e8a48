"""Cgroup configuration types (pure data, no validation, no I/O: see ``validate``).

Like runc's libcontainer ``configs.Cgroup``/``configs.Resources``: the runtime builds a
``CgroupConfig`` for a container, ``validate.validate()`` checks it, and each backend's
``apply()`` translates the ``Resources`` it holds into that hierarchy's files. Every
resource is optional (``None``: leave the kernel's default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Docker's --cpus: NanoCpus become a CFS quota over this period (microseconds)
NANO_CPUS_PERIOD = 100000


def quota_from_nano_cpus(nano_cpus: int) -> int:
    """--cpus 0.75 (NanoCpus 750000000) -> a CFS quota of 75000 us per 100000 us."""
    return nano_cpus * NANO_CPUS_PERIOD // 1_000_000_000


@dataclass
class Resources:
    """What a container may use; ``None`` means: no limit set by us."""

    memory: int | None = None  # bytes (--memory)
    memory_swap: int | None = None  # memory + swap in bytes, -1 unlimited (--memory-swap)
    memory_reservation: int | None = None  # soft limit in bytes (--memory-reservation)
    oom_kill_disable: bool | None = None  # v1 only (--oom-kill-disable)
    cpu_shares: int | None = None  # relative weight, 2..262144 (--cpu-shares)
    cpu_period: int | None = None  # CFS period in us (--cpu-period; --cpus: 100000)
    cpu_quota: int | None = None  # CFS quota in us per period, -1 none (--cpu-quota, --cpus)
    cpuset_cpus: str | None = None  # e.g. "0-1,3" (--cpuset-cpus)
    cpuset_mems: str | None = None  # NUMA nodes (--cpuset-mems)
    pids_limit: int | None = None  # max tasks, <= 0 unlimited (--pids-limit)
    blkio_weight: int | None = None  # 10..1000, where the kernel has it (--blkio-weight)

    def items(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> Resources:
        """From ``ContainerSpec.resources`` (unknown keys are refused by the constructor)."""
        return cls(**(data or {}))


@dataclass
class CgroupConfig:
    """One container's cgroup: ``<parent>/<name>`` in every hierarchy the backend uses."""

    parent: str  # e.g. "dockyard" or "dockyard-dt1a2b" in tests
    name: str  # the container id
    resources: Resources = field(default_factory=Resources)
