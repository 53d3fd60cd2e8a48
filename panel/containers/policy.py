"""Team policy: what a team's members may ask of the node beyond an ordinary container.

The policy is the Team's fields (panel/teams/models.py), all off by default: only Docker's
defaults. Site admins and the system (user None) are never limited by it. A refusal is a
403 (``PolicyDenied``) raised by the service layer, so the panel and the Docker API give
the same message: the flag, that the team's policy does not allow it, and who can change
it. Each refusal is noted in the audit log (``policy.denied``, params name the flag and
the policy field). Quotas are panel/containers/quotas.py's.
"""

import os

from panel.errors import DockyardError

HOST_NAMESPACE_FIELDS = (("PidMode", "--pid"), ("IpcMode", "--ipc"), ("UTSMode", "--uts"))
# beyond_default's flags (panel/containers/security.py) -> the policy field that allows them
_SECURITY_FIELDS = (("--privileged", "allow_privileged"), ("--device", "allow_devices"),
                    ("--cap-add", "allow_extra_capabilities"),
                    ("--security-opt seccomp", "allow_unconfined_seccomp"))
# what each policy field allows, in the refusal's words
ALLOWS = {
    "allow_privileged": "privileged containers",
    "allow_host_namespaces": "sharing the node's namespaces",
    "allow_devices": "host devices",
    "allow_extra_capabilities": "capabilities beyond Docker's default set",
    "allow_unconfined_seccomp": "an unconfined or custom seccomp profile",
    "allow_low_ports": "publishing host ports below 1024",
}
LOW_PORT_LIMIT = 1024
WHO_CHANGES_IT = "a team admin can allow it on the team's policy page"


class Forbidden(DockyardError):
    status = 403


class PolicyDenied(Forbidden):
    """403: the team's policy does not allow what was asked."""


def _exempt(user) -> bool:
    return user is None or user.is_superuser  # the system itself, or a site admin


def _name(team) -> str:
    return getattr(team, "name", None) or str(team)


def refuse(error: Forbidden, *, user, team, action: str = "policy.denied", obj=None,
           **params) -> Forbidden:
    """Note a policy (or quota: ``action="quota.exceeded"``) refusal in the audit log, with
    ``params`` (what was refused); returns ``error`` for the caller to raise."""
    from panel.audit import services as audit

    audit.note_refusal(error.message, actor=user, team=team if getattr(team, "pk", None) else None,
                       action=action, obj_type="container" if obj is not None else "",
                       obj_id=getattr(obj, "id", ""), obj_repr=getattr(obj, "name", ""),
                       params=params)
    return error


def _check(user, team, field: str, flags: list[str], *, obj=None) -> None:
    """Raise PolicyDenied when ``flags`` are asked and ``team``'s policy ``field`` is off."""
    if not flags or _exempt(user) or getattr(team, field, False):
        return
    raise refuse(PolicyDenied(f"{', '.join(flags)}: the policy of team {_name(team)} does not "
                              f"allow {ALLOWS[field]}; {WHO_CHANGES_IT}"),
                 user=user, team=team, obj=obj, policy=field, flags=flags)


def host_namespaces(host_config: dict) -> list[str]:
    """The flags of a request that share one of the node's namespaces, e.g. ['--pid host']."""
    return [f"{flag} host" for field, flag in HOST_NAMESPACE_FIELDS
            if (host_config or {}).get(field) == "host"]


def check_host_namespaces(user, team, host_config: dict, *, host_network: bool = False) -> None:
    """--pid/--ipc/--uts host, and ``host_network`` (the request's network is the node's:
    ``--network host``), follow the team's ``allow_host_namespaces``."""
    flags = host_namespaces(host_config)
    if host_network:
        flags.append("--network host")
    _check(user, team, "allow_host_namespaces", flags)


def check_userns_host(user, team) -> None:
    """``--userns host`` on a remapping node: the container's root is the node's root."""
    _check(user, team, "allow_host_namespaces", ["--userns host"])


def check_security(user, team, host_config: dict) -> None:
    """--privileged, --device, --cap-add beyond Docker's default set, seccomp=unconfined or
    a custom profile: each follows its policy field (the first one refused is named)."""
    from .security import beyond_default

    if _exempt(user):
        return
    asked = beyond_default(host_config or {})
    for prefix, field in _SECURITY_FIELDS:
        _check(user, team, field, [flag for flag in asked if flag.startswith(prefix)])


def check_privileged_exec(user, team, container=None) -> None:
    """``docker exec --privileged``: every capability, as --privileged."""
    _check(user, team, "allow_privileged", ["docker exec --privileged"], obj=container)


def check_low_ports(user, team, host_config: dict) -> None:
    """-p with an explicit host port below 1024 (-P picks ephemeral ports: not counted)."""
    from .networking import explicit_host_ports

    flags = [f"-p {first if first == last else f'{first}-{last}'}:{key}"
             for key, first, last in explicit_host_ports(host_config or {})
             if first < LOW_PORT_LIMIT]
    _check(user, team, "allow_low_ports", flags)


def _normalized(path: str) -> str:
    return os.path.normpath(path) if path.startswith("/") else ""


def bind_prefixes_for(team) -> list[str]:
    """The host path prefixes under which members of ``team`` may bind-mount, normalized
    (relative or empty entries are ignored); [] = none."""
    prefixes = getattr(team, "bind_prefixes", None) or []
    return [p for p in (_normalized(str(p)) for p in prefixes if isinstance(p, str)) if p]


def _under(path: str, prefixes: list[str]) -> bool:
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes)


def check_host_binds(user, team, sources: list[str]) -> None:
    """Raise PolicyDenied unless ``user`` may bind-mount each host path of ``sources`` in
    ``team`` (``-v /host:/ctr``, ``--mount type=bind``, a ``type=none,o=bind`` volume): it
    must lie under one of the team's bind prefixes, both as written (normalized: no ``..``
    way out) and once symlinks are resolved (no link out of an allowed directory).
    /srv/data allows /srv/data and /srv/data/x, not /srv/database."""
    if not sources or _exempt(user):
        return
    prefixes = bind_prefixes_for(team)
    resolved = [os.path.realpath(p) for p in prefixes]
    for source in sources:
        path = _normalized(source) or source
        if _under(path, prefixes) and _under(os.path.realpath(path), resolved):
            continue
        flag = f"bind mount of host path {path}"
        if prefixes:
            message = (f"{flag}: the policy of team {_name(team)} allows host paths under "
                       f"{', '.join(prefixes)} only; a team admin can change it on the team's "
                       "policy page")
        else:
            message = (f"{flag}: the policy of team {_name(team)} does not allow bind mounts "
                       "of host paths; use a named volume, or a team admin can allow a host "
                       "path prefix on the team's policy page")
        raise refuse(PolicyDenied(message), user=user, team=team, policy="bind_prefixes",
                     flags=[flag])
