"""What a user may ask of the node beyond an ordinary container.

For now the node's namespaces (``--pid host``, ``--ipc host``, ``--uts host``) are a site
admin's privilege. The Teams issue turns this into team policy: keep the signature.
"""

from panel.errors import DockyardError

HOST_NAMESPACE_FIELDS = (("PidMode", "--pid"), ("IpcMode", "--ipc"), ("UTSMode", "--uts"))


class Forbidden(DockyardError):
    status = 403


def host_namespaces(host_config: dict) -> list[str]:
    """The flags of a request that share one of the node's namespaces, e.g. ['--pid host']."""
    return [f"{flag} host" for field, flag in HOST_NAMESPACE_FIELDS
            if (host_config or {}).get(field) == "host"]


def check_host_namespaces(user, team, host_config: dict) -> None:
    """Raise Forbidden unless ``user`` may share the node's namespaces in ``team``."""
    asked = host_namespaces(host_config)
    if not asked:
        return
    if user is None or user.is_superuser:  # the system itself, or a site admin
        return
    raise Forbidden(
        f"{', '.join(asked)}: sharing the node's namespaces is a privilege of site admins; "
        f"ask one to run this container for team {getattr(team, 'name', team)}"
    )


def bind_prefixes_for(team) -> list[str]:
    """Host paths under which members of ``team`` may bind-mount (the Teams issue fills this
    from team policy); none today: host bind mounts are a site admin's."""
    return []


def check_host_binds(user, team, sources: list[str]) -> None:
    """Raise Forbidden unless ``user`` may bind-mount each host path of ``sources`` in
    ``team`` (``-v /host:/ctr``, ``--mount type=bind``, a ``type=none,o=bind`` volume)."""
    if not sources or user is None or user.is_superuser:
        return
    allowed = [p.rstrip("/") or "/" for p in bind_prefixes_for(team)]
    for source in sources:
        if not any(source == p or source.startswith(p.rstrip("/") + "/") for p in allowed):
            raise Forbidden(
                f"bind mount of host path {source}: mounting host paths is a privilege of "
                f"site admins; use a named volume, or ask one to run this container for "
                f"team {getattr(team, 'name', team)}")


def check_security(user, team, host_config: dict) -> None:
    """Raise Forbidden unless ``user`` may run a container with more privileges than
    Docker's default in ``team``: --privileged, --device, --cap-add beyond the default set,
    seccomp=unconfined or a custom profile."""
    from .security import beyond_default

    if user is None or user.is_superuser:
        return
    asked = beyond_default(host_config or {})
    if asked:
        raise Forbidden(
            f"{', '.join(asked)}: running a container with more privileges than Docker's "
            f"default is a privilege of site admins; ask one to run this container for "
            f"team {getattr(team, 'name', team)}")


def check_privileged_exec(user, team) -> None:
    """``docker exec --privileged``: every capability, a site admin's privilege."""
    if user is None or user.is_superuser:
        return
    raise Forbidden("docker exec --privileged: running a process with every capability is a "
                    f"privilege of site admins (team {getattr(team, 'name', team)})")
