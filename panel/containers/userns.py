"""HostConfig.UsernsMode and the node's userns-remap (``DOCKYARD_USERNS_REMAP``).

With a remap, every container gets a user namespace whose root is an unprivileged uid of
the node (workers/runtime/userns.py); ``--userns host`` opts out, as the team's policy
allows (``allow_host_namespaces``; site admins always may). As dockerd does, a remapped
container cannot share the node's PID or IPC namespace nor be privileged; joining another
container's PID or IPC namespace would need its user namespace too, which is not built:
those ask for ``--userns host``.
"""

from django.conf import settings

from panel.errors import InvalidParameter
from workers.runtime import userns as runtime_userns

from . import policy

MODES = ("", "host")


def remap() -> tuple[int, int] | None:
    """The node's remap (first host id, count), or None when off."""
    return runtime_userns.parse_remap(settings.USERNS_REMAP)


def _mode(host_config: dict) -> str:
    mode = host_config.get("UsernsMode") or ""
    if mode not in MODES:
        raise InvalidParameter(f"invalid USER mode: {mode}")
    return mode


def remapped(host_config: dict) -> bool:
    """Whether a container created with ``host_config`` gets a user namespace here."""
    return remap() is not None and _mode(host_config) != "host"


def validate(config: dict, host_config: dict) -> None:
    """UsernsMode's value, and what a user namespace cannot go with (InvalidParameter)."""
    if not remapped(host_config):
        return
    if host_config.get("Privileged"):
        raise InvalidParameter("privileged mode is incompatible with user namespaces.  You must "
                               "run the container in the host namespace when running "
                               "privileged mode")
    for field, kind in (("PidMode", "PID"), ("IpcMode", "IPC")):
        mode = host_config.get(field) or ""
        if mode == "host":
            raise InvalidParameter(f"cannot share the host {kind} namespace when user "
                                   "namespaces are enabled")
        if mode.startswith("container:"):
            raise InvalidParameter(f"cannot join another container's {kind} namespace when "
                                   "user namespaces are enabled: add --userns host")


def check_policy(user, team, host_config: dict) -> None:
    """``--userns host`` on a remapping node: the container's root is the node's root; the
    team's policy decides (``allow_host_namespaces``, 403)."""
    if remap() is None or _mode(host_config) != "host":
        return
    policy.check_userns_host(user, team)


def runtime_fields(container) -> dict:
    """userns_mode and the id maps (the node's remap applies at each start)."""
    mode = _mode(container.host_config)
    maps = [] if mode == "host" else runtime_userns.id_map(remap())
    return {"userns_mode": mode, "uid_map": maps, "gid_map": [list(e) for e in maps]}
