"""The container spec: what the runtime needs to create and start one container.

Pure data and pure helpers (no syscalls). ``ContainerSpec.to_json()`` is what
``Runtime.create`` writes to ``containers/<id>/config.json`` and what the shim reads.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal as _signal
from dataclasses import asdict, dataclass, field, fields

from . import security, userns

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                          r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_ENV_KEY_RE = re.compile(r"^[^=\x00]+$")
_USER_PART_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$")


class SpecError(ValueError):
    """A container spec (or a part of it) is invalid."""


@dataclass
class ContainerSpec:
    id: str
    name: str
    layers: list[str]
    args: list[str]
    env: list[str] = field(default_factory=list)
    working_dir: str = "/"
    user: str = ""
    hostname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stop_signal: str = "SIGTERM"
    stop_timeout: int = 10
    labels: dict[str, str] = field(default_factory=dict)
    # optional extras (Docker's --dns, --dns-search, --dns-option, --add-host)
    dns: list[str] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    dns_options: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    # --init: host path of a static init (tini), bind-mounted read-only at
    # /sbin/docker-init and run as ["/sbin/docker-init", "--", *args]; "" for none
    init_path: str = ""
    # --group-add: supplementary groups (names from the image's /etc/group, or gids)
    group_add: list[str] = field(default_factory=list)
    # namespaces: "" (a new one), "host" (the node's), "container:<id>" (join that running
    # container's); ipc also "private", "shareable" (its /dev/shm is a tmpfs on the node,
    # <container dir>/shm, that containers joining its IPC namespace bind-mount) and "none"
    pid_mode: str = ""
    uts_mode: str = ""
    ipc_mode: str = ""
    # the node's cgroup parent ("" = no cgroup: no pause); the container's cgroup is
    # <parent>/<id> (workers.runtime.cgroups)
    cgroup_parent: str = ""
    # restart policy, applied by the shim: no | on-failure | always | unless-stopped;
    # max_retries only with on-failure (0 = unlimited); back-off base and cap in seconds
    restart_policy: str = "no"
    restart_max_retries: int = 0
    restart_backoff_base: float = 1.0
    restart_backoff_cap: float = 60.0
    # -- storage: bind mounts, tmpfs and volumes, mounted in this order after /dev
    # (workers/runtime/mounts.py documents the entries)
    mounts: list[dict] = field(default_factory=list)
    # -- cgroup limits: the fields of cgroups.config.Resources by name (absent: no limit)
    resources: dict = field(default_factory=dict)
    # -- security (workers/runtime/security.py): capabilities, seccomp, read-only paths...
    # --privileged: all capabilities and the node's devices, writable /sys, no seccomp
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)  # capability names, or ALL
    cap_drop: list[str] = field(default_factory=list)
    no_new_privileges: bool = False
    # "" (Docker's default profile), "unconfined", or a profile's JSON
    seccomp_profile: str = ""
    readonly_rootfs: bool = False
    sysctls: dict[str, str] = field(default_factory=dict)  # namespaced keys only
    # --device: {"path_on_host", "path_in_container", "permissions" (letters of rwm)}
    devices: list[dict] = field(default_factory=list)
    shm_size: int = 0  # bytes of /dev/shm (0: Docker's 64 MiB)
    # -- user namespace (workers/runtime/userns.py): userns_mode "" or "host" (none even
    # on a remapping node); uid_map/gid_map: [[inside, outside, count], ...], [] for none
    userns_mode: str = ""
    uid_map: list[list[int]] = field(default_factory=list)
    gid_map: list[list[int]] = field(default_factory=list)
    # -- network (workers/runtime/network): "" a new private netns with only lo (--network
    # none), "host" the node's, or the absolute path of a netns file to join (a bridge
    # network's <state root>/netns/<id>, also another container's for container:<id>)
    netns: str = ""
    # -- names (workers/runtime/network/dns.py): the container's own addresses (one
    # "<ip>\t<hostname>" line each in /etc/hosts), --link entries {"ip", "names": [alias,
    # hostname, name]} (/etc/hosts lines), and whether resolv.conf names the embedded
    # resolver 127.0.0.11 (a user network)
    addresses: list[str] = field(default_factory=list)
    links: list[dict] = field(default_factory=list)
    embedded_dns: bool = False

    def __post_init__(self) -> None:
        if not self.hostname and isinstance(self.id, str):
            self.hostname = self.id[:12]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ContainerSpec:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise SpecError(f"invalid container config JSON: {e}") from None
        if not isinstance(data, dict):
            raise SpecError("invalid container config: not a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"invalid container config: unknown field(s) {', '.join(unknown)}")
        try:
            spec = cls(**data)
        except TypeError as e:
            raise SpecError(f"invalid container config: {e}") from None
        return spec


def signal_number(sig: str | int) -> int:
    """'SIGTERM', 'TERM', 'term', '15', 15 -> 15. Raises SpecError."""
    if isinstance(sig, bool):
        raise SpecError(f"invalid signal: {sig!r}")
    if isinstance(sig, int):
        num = sig
    elif isinstance(sig, str) and sig.strip().isdigit():
        num = int(sig.strip())
    elif isinstance(sig, str) and sig.strip():
        name = sig.strip().upper()
        if not name.startswith("SIG"):
            name = "SIG" + name
        member = getattr(_signal.Signals, name, None) if name.isidentifier() else None
        if member is None:
            raise SpecError(f"invalid signal: {sig}")
        return int(member)
    else:
        raise SpecError(f"invalid signal: {sig!r}")
    if not 1 <= num <= 64:
        raise SpecError(f"invalid signal: {sig}")
    return num


def _str_list(value, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{what} must be a list of strings")
    if any("\x00" in v for v in value):
        raise SpecError(f"{what} must not contain NUL bytes")
    return value


def validate(spec: ContainerSpec) -> ContainerSpec:
    """Check every field; raise SpecError with a clear message. Returns the spec."""
    if not isinstance(spec, ContainerSpec):
        raise SpecError("not a ContainerSpec")
    if not isinstance(spec.id, str) or not _ID_RE.match(spec.id):
        raise SpecError(f"invalid container id {spec.id!r}: want 64 lowercase hex characters")
    if not isinstance(spec.name, str) or not _NAME_RE.match(spec.name):
        raise SpecError(f"Invalid container name ({spec.name}), only [a-zA-Z0-9][a-zA-Z0-9_.-]"
                        " are allowed")
    _str_list(spec.layers, "layers")
    if not spec.layers:
        raise SpecError("layers: at least one layer is required")
    for layer in spec.layers:
        if not os.path.isabs(layer) or ":" in layer or "," in layer:
            raise SpecError(f"invalid layer dir {layer!r}: want an absolute path without , or :")
        if not os.path.isdir(layer):
            raise SpecError(f"layer dir {layer} does not exist")
    _str_list(spec.args, "args")
    if not spec.args or not spec.args[0]:
        raise SpecError("No command specified")
    for entry in _str_list(spec.env, "env"):
        key = entry.split("=", 1)[0]
        if "=" not in entry or not _ENV_KEY_RE.match(key):
            raise SpecError(f"invalid environment variable: {entry!r}")
    if not isinstance(spec.working_dir, str) or (
            spec.working_dir and not spec.working_dir.startswith("/")):
        raise SpecError(f"the working directory '{spec.working_dir}' is invalid,"
                        " it needs to be an absolute path")
    if "\x00" in spec.working_dir:
        raise SpecError("invalid working directory")
    parse_user(spec.user)
    if not isinstance(spec.hostname, str) or len(spec.hostname) > 63 or not (
            _HOSTNAME_RE.match(spec.hostname)):
        raise SpecError(f"invalid hostname {spec.hostname!r}")
    for flag in ("tty", "open_stdin"):
        if not isinstance(getattr(spec, flag), bool):
            raise SpecError(f"{flag} must be a boolean")
    signal_number(spec.stop_signal)
    if (not isinstance(spec.stop_timeout, int) or isinstance(spec.stop_timeout, bool)
            or spec.stop_timeout < -1):
        raise SpecError("stop_timeout must be an integer >= -1 (seconds; -1 waits forever)")
    if not isinstance(spec.labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in spec.labels.items()):
        raise SpecError("labels must be a mapping of strings to strings")
    for what in ("dns", "dns_search", "dns_options", "extra_hosts"):
        for v in _str_list(getattr(spec, what), what):
            if not v or any(c in v for c in "\n\r"):
                raise SpecError(f"invalid {what} entry {v!r}")
    for entry in spec.extra_hosts:
        host, sep, addr = entry.partition(":")
        if not sep or not host or not addr:
            raise SpecError(f"invalid extra host {entry!r}: want host:ip")
    validate_process_extras(spec)
    validate_lifecycle(spec)
    validate_mounts(spec)
    validate_resources(spec)
    validate_security(spec)
    userns.validate_maps(spec)
    validate_netns(spec.netns)
    if spec.netns == "host":  # they would be the node's own (runc's words)
        for key in spec.sysctls:
            if key.startswith("net."):
                raise SpecError(f'sysctl "{key}" not allowed in host network namespace')
    validate_names(spec)
    return spec


def validate_names(spec: ContainerSpec) -> None:
    """The container's addresses, its --link entries and the embedded resolver flag."""
    if not isinstance(spec.embedded_dns, bool):
        raise SpecError("embedded_dns must be a boolean")
    if not isinstance(spec.links, list) or not all(isinstance(e, dict) for e in spec.links):
        raise SpecError("links must be a list of objects")
    for entry in spec.links:
        if set(entry) != {"ip", "names"} or not entry["names"] or not all(
                _NAME_RE.match(n) for n in _str_list(entry["names"], "link names")):
            raise SpecError(f"invalid link entry {entry!r}: want {{\"ip\", \"names\"}}")
    _str_list(spec.addresses, "addresses")
    for ip in _str_list(spec.addresses + [e["ip"] for e in spec.links], "link addresses"):
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise SpecError(f"invalid IP address {ip!r}") from None


def validate_netns(netns) -> None:
    """ContainerSpec.netns: "", "host" or an absolute, normalised path."""
    if not isinstance(netns, str) or "\x00" in netns:
        raise SpecError("netns must be a string")
    if netns not in ("", "host") and (
            not os.path.isabs(netns) or os.path.normpath(netns) != netns):
        raise SpecError(f"invalid netns {netns!r}: want \"\", \"host\" or an absolute path")


def validate_mounts(spec: ContainerSpec) -> None:
    """Bind mounts, tmpfs and volumes (the entries are documented in mounts.py)."""
    from .mounts import validate as check

    try:
        check(spec.mounts)
    except ValueError as e:
        raise SpecError(str(e)) from None


def validate_resources(spec: ContainerSpec) -> None:
    """The cgroup limits (workers/runtime/cgroups/config.py names the fields)."""
    from .cgroups.config import Resources
    from .cgroups.validate import validate_resources as check

    if not isinstance(spec.resources, dict):
        raise SpecError("resources must be an object")
    try:
        check(Resources.from_dict(spec.resources))
    except TypeError as e:
        raise SpecError(f"invalid resources: {e}") from None
    except ValueError as e:
        raise SpecError(str(e)) from None


_CGROUP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")


def validate_restart(name: str, max_retries: int) -> None:
    """Docker's rules (and words, as daemon 24 has them) for a restart policy."""
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise SpecError("maximum retry count must be an integer")
    if name in ("always", "unless-stopped", "no"):
        if max_retries != 0:
            raise SpecError(f"maximum retry count cannot be used with restart policy '{name}'")
    elif name == "on-failure":
        if max_retries < 0:
            raise SpecError("maximum retry count cannot be negative")
    else:
        raise SpecError(f"invalid restart policy '{name}'")


def validate_security(spec: ContainerSpec) -> None:
    """Capabilities, seccomp, sysctls, devices, /dev/shm (workers/runtime/security.py)."""
    for flag in ("privileged", "no_new_privileges", "readonly_rootfs"):
        if not isinstance(getattr(spec, flag), bool):
            raise SpecError(f"{flag} must be a boolean")
    if not isinstance(spec.seccomp_profile, str):
        raise SpecError("seccomp_profile must be a string")
    if not isinstance(spec.sysctls, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in spec.sysctls.items()):
        raise SpecError("sysctls must be a mapping of strings to strings")
    if not isinstance(spec.devices, list) or not all(isinstance(d, dict) for d in spec.devices):
        raise SpecError("devices must be a list of objects")
    if isinstance(spec.shm_size, bool) or not isinstance(spec.shm_size, int) or (
            spec.shm_size < 0):
        raise SpecError("shm_size must be a number of bytes >= 0")
    try:
        for what in ("cap_add", "cap_drop"):
            for name in _str_list(getattr(spec, what), what):
                security.normalize_cap(name)
        for key, value in spec.sysctls.items():
            security.check_sysctl(key, value)
        for device in spec.devices:
            security.check_device(device)
    except ValueError as e:
        raise SpecError(str(e)) from None


def validate_lifecycle(spec: ContainerSpec) -> None:
    """The cgroup parent and the restart policy with its back-off."""
    if not isinstance(spec.cgroup_parent, str) or (
            spec.cgroup_parent and not _CGROUP_RE.match(spec.cgroup_parent)):
        raise SpecError(f"invalid cgroup parent {spec.cgroup_parent!r}")
    validate_restart(spec.restart_policy, spec.restart_max_retries)
    for what in ("restart_backoff_base", "restart_backoff_cap"):
        value = getattr(spec, what)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 3600:
            raise SpecError(f"{what} must be a number of seconds in (0, 3600]")
    if spec.restart_backoff_cap < spec.restart_backoff_base:
        raise SpecError("restart_backoff_cap must not be less than restart_backoff_base")


PID_MODES = ("", "host")
UTS_MODES = ("", "host")
IPC_MODES = ("", "private", "shareable", "none", "host")
INIT_TARGET = "/sbin/docker-init"


def joined_container(mode: str) -> str | None:
    """'container:<id>' -> '<id>'; anything else -> None."""
    if isinstance(mode, str) and mode.startswith("container:"):
        return mode.split(":", 1)[1]
    return None


def validate_process_extras(spec: ContainerSpec) -> None:
    """--init, --group-add and the namespace modes (--pid, --uts, --ipc)."""
    if not isinstance(spec.init_path, str) or (spec.init_path and (
            not os.path.isabs(spec.init_path) or not os.path.isfile(spec.init_path))):
        raise SpecError(f"init binary {spec.init_path!r} not found on this node")
    for g in _str_list(spec.group_add, "group_add"):
        if not g or not _USER_PART_RE.match(g):
            raise SpecError(f"invalid group {g!r} in group_add")
    for what, mode, allowed, join in (("pid", spec.pid_mode, PID_MODES, True),
                                      ("uts", spec.uts_mode, UTS_MODES, False),
                                      ("ipc", spec.ipc_mode, IPC_MODES, True)):
        if not isinstance(mode, str):
            raise SpecError(f"{what}_mode must be a string")
        other = joined_container(mode)
        if other is not None and join:
            if not _ID_RE.match(other):
                raise SpecError(f"invalid {what} mode {mode!r}: want container:<64 hex id>")
            if other == spec.id:
                raise SpecError(f"cannot join the {what} namespace of the container itself")
        elif mode not in allowed:
            raise SpecError(f"invalid {what.upper()} mode: {mode}")


def init_argv(spec_or_cfg, args: list[str]) -> list[str]:
    """The argv the container execs: behind the init when --init was asked for."""
    init_path = (spec_or_cfg.get("init_path") if isinstance(spec_or_cfg, dict)
                 else spec_or_cfg.init_path)
    return [INIT_TARGET, "--", *args] if init_path else list(args)


def parse_user(user: str) -> tuple[str, str]:
    """'' | name | uid | uid:gid | name:group -> (user, group); raises SpecError."""
    if not isinstance(user, str):
        raise SpecError("user must be a string")
    if not user:
        return "", ""
    name, sep, group = user.partition(":")
    if not name or not _USER_PART_RE.match(name) or (sep and (
            not group or not _USER_PART_RE.match(group))):
        raise SpecError(f"invalid user {user!r}: want name, uid, uid:gid or name:group")
    return name, group


def combine_command(image_entrypoint: list[str] | None, image_cmd: list[str] | None,
                    entrypoint: list[str] | None, cmd: list[str] | None) -> list[str]:
    """Docker's rule: the final argv is Entrypoint + Cmd.

    ``entrypoint``/``cmd`` are the run-time values (None when not given). A non-empty
    entrypoint given at run replaces the image's and drops the image's Cmd; an empty
    one (``--entrypoint ""``, i.e. ``[]`` or ``[""]``) clears the image's entrypoint and
    keeps the usual Cmd fallback. A Cmd given at run replaces the image's Cmd.
    """
    for what, value in (("image entrypoint", image_entrypoint), ("image cmd", image_cmd),
                        ("entrypoint", entrypoint), ("cmd", cmd)):
        if value is not None:
            _str_list(value, what)
    if entrypoint is not None and entrypoint == [""]:
        entrypoint = []
    if entrypoint:
        argv = list(entrypoint) + list(cmd or [])
    else:
        ep = [] if entrypoint is not None else list(image_entrypoint or [])
        argv = ep + list(cmd if cmd else (image_cmd or []))
    if not argv or argv == [""]:
        raise SpecError("No command specified")
    return argv


def merge_env(image_env: list[str] | None, env: list[str] | None, hostname: str | None = None,
              tty: bool = False) -> list[str]:
    """Image env, then run-time env (later keys override, first position kept).

    A run-time entry without ``=`` removes that variable. PATH gets Docker's default
    when absent; HOSTNAME is set when ``hostname`` is given; TERM=xterm with a tty.
    """
    merged: dict[str, str] = {}
    for source, what in ((image_env or [], "image env"), (env or [], "env")):
        for entry in _str_list(source, what):
            key, sep, value = entry.partition("=")
            if not key:
                raise SpecError(f"invalid environment variable: {entry!r}")
            if not sep:
                merged.pop(key, None)
                continue
            merged[key] = value
    out: dict[str, str] = {}
    if "PATH" not in merged:
        out["PATH"] = DEFAULT_PATH
    if hostname:
        out["HOSTNAME"] = hostname
    if tty and "TERM" not in merged:
        out["TERM"] = "xterm"
    for key, value in merged.items():
        out[key] = value
    return [f"{k}={v}" for k, v in out.items()]
