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
