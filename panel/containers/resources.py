"""HostConfig cgroup limits: Memory, MemorySwap, MemoryReservation, OomKillDisable, CpuShares,
NanoCpus, CpuPeriod, CpuQuota, CpusetCpus, CpusetMems, PidsLimit, BlkioWeight.

Checked with dockerd's rules and words (``workers/runtime/cgroups/validate.py`` holds them,
the runtime checks the same again), completed as dockerd does at create (``adapt``), mapped
to ``ContainerSpec.resources`` (``runtime_fields``), and merged for ``docker update``
(``merge_update``, dockerd's UpdateContainer rules)."""

from django.db import transaction

from panel.errors import Conflict, InvalidParameter
from panel.events import publish
from workers.runtime.cgroups import validate as checks
from workers.runtime.cgroups.config import NANO_CPUS_PERIOD, Resources, quota_from_nano_cpus

INT_FIELDS = ("Memory", "MemorySwap", "MemoryReservation", "CpuShares", "NanoCpus", "CpuPeriod",
              "CpuQuota", "BlkioWeight")
STR_FIELDS = ("CpusetCpus", "CpusetMems")
# every HostConfig field this module owns (docker update's resource fields among them)
FIELDS = (*INT_FIELDS, *STR_FIELDS, "PidsLimit", "OomKillDisable")


def _check_types(host_config: dict) -> None:
    for name in INT_FIELDS:
        value = host_config.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidParameter(f"{name} must be an integer")
    pids = host_config.get("PidsLimit")
    if pids is not None and (isinstance(pids, bool) or not isinstance(pids, int)):
        raise InvalidParameter("PidsLimit must be an integer")
    for name in STR_FIELDS:
        if not isinstance(host_config.get(name) or "", str):
            raise InvalidParameter(f"{name} must be a string")
    if not isinstance(host_config.get("OomKillDisable") or False, bool):
        raise InvalidParameter("OomKillDisable must be a boolean")


def runtime_resources(host_config: dict) -> dict:
    """The HostConfig's limits as ``ContainerSpec.resources`` (unset ones left out)."""
    hc = host_config
    out: dict = {}
    for name, key in (("Memory", "memory"), ("MemoryReservation", "memory_reservation"),
                      ("BlkioWeight", "blkio_weight")):
        if (hc.get(name) or 0) > 0:
            out[key] = hc[name]
    if hc.get("MemorySwap"):
        out["memory_swap"] = hc["MemorySwap"]
    if hc.get("OomKillDisable"):
        out["oom_kill_disable"] = True
    if hc.get("CpuShares"):  # dockerd clamps what the kernel would refuse
        out["cpu_shares"] = min(max(hc["CpuShares"], checks.MIN_CPU_SHARES),
                                checks.MAX_CPU_SHARES)
    if hc.get("NanoCpus"):
        out["cpu_period"] = NANO_CPUS_PERIOD
        out["cpu_quota"] = quota_from_nano_cpus(hc["NanoCpus"])
    for name, key in (("CpuPeriod", "cpu_period"), ("CpuQuota", "cpu_quota")):
        if hc.get(name):
            out[key] = hc[name]
    for name, key in (("CpusetCpus", "cpuset_cpus"), ("CpusetMems", "cpuset_mems")):
        if hc.get(name):
            out[key] = hc[name]
    if hc.get("PidsLimit") is not None:  # 0 and -1: unlimited ("max")
        out["pids_limit"] = hc["PidsLimit"] if hc["PidsLimit"] > 0 else -1
    return out


def _check(host_config: dict) -> None:
    _check_types(host_config)
    try:
        checks.validate_nano_cpus(host_config.get("NanoCpus") or 0,
                                  host_config.get("CpuPeriod") or 0,
                                  host_config.get("CpuQuota") or 0)
        checks.validate_resources(Resources.from_dict(runtime_resources(host_config)))
    except checks.CgroupConfigError as e:
        raise InvalidParameter(str(e)) from None


def validate(config: dict, host_config: dict) -> None:
    """The shape of the fields (no database access); raise InvalidParameter."""
    _check(host_config)


def adapt(host_config: dict) -> None:
    """What dockerd fills in at create: a memory limit without a swap limit gets as much swap
    again (MemorySwap = 2 x Memory), so `docker inspect` shows what the kernel got."""
    if (host_config.get("Memory") or 0) > 0 and not host_config.get("MemorySwap"):
        host_config["MemorySwap"] = host_config["Memory"] * 2


def runtime_fields(container) -> dict:
    """The ContainerSpec fields for what the container was created with."""
    return {"resources": runtime_resources(container.host_config)}


def merge_update(host_config: dict, body: dict) -> dict:
    """`docker update`: the container's HostConfig with the body's resources (and
    RestartPolicy) applied, by dockerd's rules: a 0 or empty value leaves a limit as it is,
    PidsLimit null too. Returns the new HostConfig; raises InvalidParameter/Conflict."""
    if not isinstance(body, dict):
        raise InvalidParameter("the request body must be a JSON object")
    _check_types(body)
    new = dict(host_config)
    memory, swap = body.get("Memory") or 0, body.get("MemorySwap") or 0
    if memory and swap == 0 and (host_config.get("MemorySwap") or 0) > 0 and (
            memory > host_config["MemorySwap"]):
        raise Conflict("Memory limit should be smaller than already set memoryswap limit, "
                       "update the memoryswap at the same time")
    if body.get("NanoCpus") and (host_config.get("CpuPeriod") or host_config.get("CpuQuota")):
        raise Conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period has "
                       "already been set")
    if (body.get("CpuPeriod") or body.get("CpuQuota")) and host_config.get("NanoCpus"):
        raise Conflict("Conflicting options: CPU Quota cannot be updated as NanoCPUs has "
                       "already been set")
    for name in (*INT_FIELDS, *STR_FIELDS):
        if body.get(name):
            new[name] = body[name]
    if body.get("PidsLimit") is not None:
        new["PidsLimit"] = body["PidsLimit"] if body["PidsLimit"] > 0 else 0
    if body.get("RestartPolicy") and (body["RestartPolicy"].get("Name") or ""):
        if host_config.get("AutoRemove"):
            raise InvalidParameter("Restart policy cannot be updated because AutoRemove is "
                                   "enabled for the container")
        new["RestartPolicy"] = body["RestartPolicy"]
        from .specs import restart_policy

        restart_policy(new)
    _check(new)
    return new


@transaction.atomic
def record_update(container, host_config: dict, actor=None) -> None:
    """The job's last step: the row's HostConfig takes the values (inspect shows them) and
    the history an "update" event, as dockerd's."""
    from . import history
    from .models import Container

    row = Container.objects.select_for_update().filter(pk=container.pk).first()
    if row is None:
        return
    row.spec = {**row.spec, "HostConfig": host_config}
    row.save(update_fields=["spec"])
    history.record(row, "update", actor=actor)
    publish.container_state(row)


def changed(before: dict, after: dict) -> dict:
    """{field: [old, new]} of the limits (and restart policy) an update changes (audit)."""
    return {name: [before.get(name), after.get(name)] for name in (*FIELDS, "RestartPolicy")
            if before.get(name) != after.get(name)}


def describe(host_config: dict) -> list[tuple[str, str]]:
    """(label, value) of the limits set, in the words of the docker CLI's flags."""
    hc, rows = host_config, []
    if hc.get("Memory"):
        rows.append(("Memory", human_bytes(hc["Memory"])))
    if (hc.get("MemorySwap") or 0) > 0:
        rows.append(("Memory + swap", human_bytes(hc["MemorySwap"])))
    elif hc.get("MemorySwap") == -1:
        rows.append(("Memory + swap", "unlimited"))
    if hc.get("MemoryReservation"):
        rows.append(("Memory reservation", human_bytes(hc["MemoryReservation"])))
    if hc.get("OomKillDisable"):
        rows.append(("OOM killer", "disabled"))
    if hc.get("NanoCpus"):
        rows.append(("CPUs", f"{hc['NanoCpus'] / 1e9:g}"))
    if hc.get("CpuShares"):
        rows.append(("CPU shares", str(hc["CpuShares"])))
    if hc.get("CpuQuota") or hc.get("CpuPeriod"):
        rows.append(("CPU quota / period", f"{hc.get('CpuQuota') or '-'} / "
                                           f"{hc.get('CpuPeriod') or NANO_CPUS_PERIOD} us"))
    for name, label in (("CpusetCpus", "CPU set"), ("CpusetMems", "Memory nodes")):
        if hc.get(name):
            rows.append((label, hc[name]))
    if (hc.get("PidsLimit") or 0) > 0:
        rows.append(("Pids limit", str(hc["PidsLimit"])))
    if hc.get("BlkioWeight"):
        rows.append(("Block IO weight", str(hc["BlkioWeight"])))
    return rows


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= size and n % (size // 1024 or 1) == 0:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def parse_bytes(text: str) -> int:
    """The docker CLI's RAMInBytes: "256m", "1g", "512k", "1024" (binary units)."""
    value = text.strip().lower()
    units = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
    if value.endswith("ib") or (value.endswith("b") and len(value) > 1
                                and value[-2] in units):
        value = value[:-2] if value.endswith("ib") else value[:-1]
    factor = 1
    if value and value[-1] in units:
        factor = units[value[-1]]
        value = value[:-1]
    try:
        number = float(value)
    except ValueError:
        raise InvalidParameter(f"invalid size: '{text}'") from None
    if number < 0:
        raise InvalidParameter(f"invalid size: '{text}'")
    return int(number * factor)


def parse_cpus(text: str) -> int:
    """--cpus "0.75" -> NanoCpus 750000000, as the docker CLI parses it."""
    try:
        value = float(text.strip())
    except ValueError:
        raise InvalidParameter(f'invalid argument "{text}" for "--cpus" flag') from None
    if value < 0:
        raise InvalidParameter(f'invalid argument "{text}" for "--cpus" flag')
    return round(value * 1e9)
