"""A team's container quotas: how many containers, how much memory and how many CPUs its
containers may hold together (Team.max_containers, max_memory, max_nano_cpus; null = no
limit). Image storage is panel/images/quota.py's.

Quotas bind everyone acting in the team, site admins included (a site admin changes the
quota rather than passing it). A container counts from its create until its removal
starts (any state but "removing"); its memory is its -m (HostConfig.Memory), its CPUs its
--cpus (NanoCpus) or --cpu-quota/--cpu-period. With a memory (CPU) quota set, a container
without a memory (CPU) limit is refused: it would have no bound. Checked at create and at
`docker update` (a limit that grows), with the Team row locked (select_for_update) in the
caller's transaction, so two concurrent requests cannot both take the last room; a
`docker update` waiting for its job counts with the larger of its old and new limits. A
build's RUN containers are outside the quotas: transient, one per build step, made by the
system for the build (they still count while they exist). A refusal is a 403
(``QuotaExceeded``) noted in the audit log as ``quota.exceeded``.
"""

from panel.teams.models import Team
from workers.runtime.cgroups.config import NANO_CPUS_PERIOD

from .models import Container
from .policy import Forbidden, refuse
from .resources import human_bytes

UPDATE_JOB = "container.update"


class QuotaExceeded(Forbidden):
    """403: the team's containers would hold more than its quota."""


def memory_of(host_config: dict) -> int:
    return max(host_config.get("Memory") or 0, 0)


def nano_cpus_of(host_config: dict) -> int:
    """--cpus, or --cpu-quota over --cpu-period, in billionths of a CPU (0: no limit)."""
    if (host_config.get("NanoCpus") or 0) > 0:
        return host_config["NanoCpus"]
    quota = host_config.get("CpuQuota") or 0
    if quota <= 0:
        return 0
    return quota * 1_000_000_000 // (host_config.get("CpuPeriod") or NANO_CPUS_PERIOD)


def _pending_updates(team) -> dict[str, list[dict]]:
    """container id -> the HostConfigs of its `docker update` jobs not done yet."""
    from panel.jobs.models import Job

    pending: dict[str, list[dict]] = {}
    for target, payload in Job.objects.filter(
            team=team, kind=UPDATE_JOB, state__in=(Job.State.QUEUED, Job.State.RUNNING)
    ).values_list("target_id", "payload"):
        pending.setdefault(target, []).append((payload or {}).get("host_config") or {})
    return pending


def _counted(team, *, only_id: str | None = None) -> dict:
    """{"containers", "memory", "nano_cpus"} of the team's containers (or of ``only_id``)."""
    rows = Container.objects.filter(team=team).exclude(state=Container.State.REMOVING)
    if only_id:
        rows = rows.filter(pk=only_id)
    pending = _pending_updates(team)
    used = {"containers": 0, "memory": 0, "nano_cpus": 0}
    for pk, spec in rows.values_list("pk", "spec"):
        configs = [(spec or {}).get("HostConfig") or {}, *pending.get(pk, [])]
        used["containers"] += 1
        used["memory"] += max(memory_of(c) for c in configs)
        used["nano_cpus"] += max(nano_cpus_of(c) for c in configs)
    return used


def usage(team) -> dict:
    """What the team's page shows: {"containers", "memory" (bytes), "nano_cpus", "storage"
    (bytes of image layers, panel/images/quota.usage)}."""
    from panel.images import quota as storage

    return {**_counted(team), "storage": storage.usage(team)}


def _refuse(user, team, message: str, quota: str, **numbers) -> QuotaExceeded:
    return refuse(QuotaExceeded(message), user=user, team=team, action="quota.exceeded",
                  quota=quota, **numbers)


# A limit quota's field -> what it bounds, the flag that sets a container's, how amounts read.
_LIMIT_QUOTAS = {
    "max_memory": ("memory", "-m, e.g. -m 256m", human_bytes),
    "max_nano_cpus": ("CPU", "--cpus, e.g. --cpus 0.5",
                      lambda nano: f"{nano / 1e9:g} CPU" + ("" if nano == 10**9 else "s")),
}


def _check_limit(user, team, field: str, used: int, asked: int, *, need_limit: bool) -> None:
    """``asked`` more of a memory or CPU quota (``field``) fits, or QuotaExceeded."""
    quota = getattr(team, field)
    if quota is None:
        return
    what, flag, shown = _LIMIT_QUOTAS[field]
    if need_limit and not asked:
        raise _refuse(user, team, f"team {team.name} has a {what} quota ({shown(quota)}, "
                      f"{shown(used)} used): give the container a {what} limit ({flag})",
                      field, used=used, limit=quota)
    if used + asked > quota:
        raise _refuse(user, team, f"{what} quota of team {team.name} exceeded: {shown(used)} "
                      f"used, {shown(asked)} more asked, quota {shown(quota)}",
                      field, used=used, asked=asked, limit=quota)


def _locked(team) -> Team:
    """The team's row, locked until the caller's transaction ends (its current quotas)."""
    return Team.objects.select_for_update().get(pk=team.pk)


def check_create(user, team, host_config: dict) -> None:
    """In create's transaction, before the row is made: one more container of these limits
    fits in the team's quotas, or QuotaExceeded."""
    team = _locked(team)
    if team.max_containers is None and team.max_memory is None and team.max_nano_cpus is None:
        return
    used = _counted(team)
    if team.max_containers is not None and used["containers"] + 1 > team.max_containers:
        raise _refuse(user, team, f"container quota of team {team.name} exceeded: "
                      f"{used['containers']} containers of {team.max_containers}",
                      "max_containers", used=used["containers"], limit=team.max_containers)
    _check_limit(user, team, "max_memory", used["memory"], memory_of(host_config),
                 need_limit=True)
    _check_limit(user, team, "max_nano_cpus", used["nano_cpus"], nano_cpus_of(host_config),
                 need_limit=True)


def check_update(user, container, new: dict) -> None:
    """In `docker update`'s transaction: the limits of ``new`` (the merged HostConfig) fit
    in the quotas as far as they grow over what the container holds now (lowering or
    keeping a limit is always allowed)."""
    team = _locked(container.team)
    if team.max_memory is None and team.max_nano_cpus is None:
        return
    used, mine = _counted(team), _counted(team, only_id=container.pk)
    more_memory = memory_of(new) - mine["memory"]
    if more_memory > 0:
        _check_limit(user, team, "max_memory", used["memory"], more_memory, need_limit=False)
    more_cpus = nano_cpus_of(new) - mine["nano_cpus"]
    if more_cpus > 0:
        _check_limit(user, team, "max_nano_cpus", used["nano_cpus"], more_cpus,
                     need_limit=False)
