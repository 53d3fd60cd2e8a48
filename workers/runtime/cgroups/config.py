"""Cgroup configuration types (pure data, no validation, no I/O: see ``validate``).

Like runc's libcontainer ``configs.Cgroup``/``configs.Resources``: the runtime builds a
``CgroupConfig`` for a container, ``validate.validate()`` checks it, and each backend's
``apply()`` translates the ``Resources`` it holds into that hierarchy's files. Every
resource is optional (``None``: leave the kernel's default); limits are added here as
fields, then in ``validate`` and in the backends' ``apply``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Resources:
    """What a container may use. Nothing is limited yet; fields are added per limit
    (e.g. ``memory``: bytes, ``pids_limit``: count, ``cpu_quota``/``cpu_period``: us,
    ``cpu_shares``, ``cpuset_cpus``...). ``None`` means: no limit set by us."""

    def items(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class CgroupConfig:
    """One container's cgroup: ``<parent>/<name>`` in every hierarchy the backend uses."""

    parent: str  # e.g. "dockyard" or "dockyard-dt1a2b" in tests
    name: str  # the container id
    resources: Resources = field(default_factory=Resources)
