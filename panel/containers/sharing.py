"""--pid, --uts, --ipc, --init and --group-add of a create request: validation, the
containers whose namespaces are joined, and the runtime spec's fields."""

import os
import socket

from panel.errors import Conflict, InvalidParameter, NotFound

INIT_PATH = "/usr/bin/tini-static"  # Debian's tini package; bind-mounted as /sbin/docker-init
PID_MODES = ("", "host")
UTS_MODES = ("", "host")
IPC_MODES = ("", "private", "shareable", "none", "host")
JOINABLE = (("PidMode", "pid", "PID"), ("IpcMode", "ipc", "IPC"))


def _mode(host_config: dict, field: str, what: str) -> str:
    value = host_config.get(field) or ""
    if not isinstance(value, str):
        raise InvalidParameter(f"invalid {what} mode: {value!r}")
    return value


def validate(config: dict, host_config: dict) -> None:
    """The shape of the fields (no database access)."""
    for field, _kind, what in JOINABLE:
        mode = _mode(host_config, field, what)
        allowed = PID_MODES if field == "PidMode" else IPC_MODES
        if mode.startswith("container:"):
            if not mode.split(":", 1)[1]:
                raise InvalidParameter(f"invalid {what} mode: {mode}")
        elif mode not in allowed:
            raise InvalidParameter(f"invalid {what} mode: {mode}")
    uts = _mode(host_config, "UTSMode", "UTS")
    if uts not in UTS_MODES:
        raise InvalidParameter(f"invalid UTS mode: {uts}")
    if uts == "host" and config.get("Hostname"):
        raise InvalidParameter("conflicting options: hostname and the UTS mode")
    init = host_config.get("Init")
    if init is not None and not isinstance(init, bool):
        raise InvalidParameter("Init must be a boolean")
    if init and not os.path.isfile(INIT_PATH):
        raise InvalidParameter(f"--init: the init binary {INIT_PATH} is not installed on "
                               "this node (Debian package tini)")
    groups = host_config.get("GroupAdd") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) and g.strip()
                                               for g in groups):
        raise InvalidParameter("GroupAdd must be a list of group names or ids")
    for g in groups:
        if not g.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise InvalidParameter(f"invalid group {g!r} in GroupAdd")


def resolve_joins(user, host_config: dict) -> dict:
    """{"pid": <id>, "ipc": <id>} of the running containers whose namespaces are joined
    (``container:<name or id>``). A missing container is 400 "No such container: x"
    (Docker answers InvalidParameter: a 404 on create would make the CLI pull the image);
    a container that is not running is 409."""
    from panel.teams.services import check_permission

    from . import services

    joins = {}
    for field, kind, what in JOINABLE:
        mode = host_config.get(field) or ""
        if not mode.startswith("container:"):
            continue
        try:
            other = services.resolve(user, mode.split(":", 1)[1])
        except NotFound as exc:
            raise InvalidParameter(exc.message) from None
        check_permission(user, other.team, "operate")
        if not other.is_running:
            raise Conflict(f"cannot join the {what} namespace of container {other.id}: "
                           f"Container {other.id} is not running")
        joins[kind] = other.id
    return joins


def runtime_fields(container) -> dict:
    """The ContainerSpec fields for the modes the container was created with."""
    host_config = container.host_config
    joins = container.spec.get("Joins") or {}

    def mode(field, kind):
        value = host_config.get(field) or ""
        if value.startswith("container:"):
            return "container:" + joins.get(kind, "")
        return "" if value == "private" and kind == "pid" else value

    fields = {
        "init_path": INIT_PATH if host_config.get("Init") else "",
        "group_add": list(host_config.get("GroupAdd") or []),
        "pid_mode": mode("PidMode", "pid"),
        "uts_mode": host_config.get("UTSMode") or "",
        "ipc_mode": mode("IpcMode", "ipc"),
    }
    if fields["uts_mode"] == "host":
        fields["hostname"] = socket.gethostname()
    return fields
