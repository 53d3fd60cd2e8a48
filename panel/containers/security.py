"""HostConfig CapAdd/CapDrop, Privileged, SecurityOpt, ReadonlyRootfs, Sysctls, Devices, ShmSize
(the Resources and security issue): validation of a create request and the runtime spec's
fields. The runtime applies them (workers/runtime/security.py); who may ask for what is
``policy.check_security``. UsernsMode is ``userns.py``'s."""

from panel.errors import InvalidParameter
from workers.runtime import seccomp
from workers.runtime import security as runtime_security


def _list(host_config: dict, field: str) -> list:
    value = host_config.get(field) or []
    if not isinstance(value, list):
        raise InvalidParameter(f"{field} must be a list")
    return value


def capabilities(host_config: dict, field: str) -> list[str]:
    """CapAdd/CapDrop normalized ('net_raw' -> 'CAP_NET_RAW'), with Docker's error words."""
    out = []
    for name in _list(host_config, field):
        try:
            out.append(runtime_security.normalize_cap(name))
        except ValueError as e:
            raise InvalidParameter(f"invalid {field}: {e}") from None
    return out


def security_options(host_config: dict) -> dict:
    """SecurityOpt -> {"no_new_privileges": bool, "seccomp_profile": str}, as dockerd parses
    it: ``no-new-privileges[:true|false]``, ``seccomp=unconfined|<profile JSON>`` (the CLI
    sends a file's content); ``label=...`` and ``apparmor=...`` are accepted and ignored
    (this node has neither SELinux nor AppArmor)."""
    out = {"no_new_privileges": False, "seccomp_profile": ""}
    for opt in _list(host_config, "SecurityOpt"):
        if not isinstance(opt, str):
            raise InvalidParameter("SecurityOpt must be a list of strings")
        if opt == "no-new-privileges":
            out["no_new_privileges"] = True
            continue
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")
        if not sep:
            raise InvalidParameter(f'invalid --security-opt 1: "{opt}"')
        if key == "no-new-privileges":
            if value not in ("true", "false"):
                raise InvalidParameter(f'invalid --security-opt 2: "{opt}"')
            out["no_new_privileges"] = value == "true"
        elif key == "seccomp":
            if value != "unconfined":
                try:
                    seccomp.parse(value)
                except seccomp.ProfileError as e:
                    raise InvalidParameter(str(e)) from None
            out["seccomp_profile"] = value
        elif key not in ("label", "apparmor"):
            raise InvalidParameter(f'invalid --security-opt 2: "{opt}"')
    return out


def devices(host_config: dict) -> list[dict]:
    """Devices -> the runtime's entries (path_on_host, path_in_container, permissions)."""
    out = []
    for d in _list(host_config, "Devices"):
        if not isinstance(d, dict):
            raise InvalidParameter("Devices must be a list of objects")
        entry = {"path_on_host": d.get("PathOnHost"),
                 "path_in_container": d.get("PathInContainer") or d.get("PathOnHost"),
                 "permissions": d.get("CgroupPermissions") or "rwm"}
        try:
            runtime_security.check_device(entry)
        except ValueError as e:
            raise InvalidParameter(f"invalid device {d.get('PathOnHost')!r}: {e}") from None
        out.append(entry)
    return out


def sysctls(host_config: dict) -> dict[str, str]:
    value = host_config.get("Sysctls") or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter("Sysctls must be an object of strings")
    host_network = host_config.get("NetworkMode") == "host"
    for key, val in value.items():
        try:
            runtime_security.check_sysctl(key, val, host_network)
        except ValueError as e:
            raise InvalidParameter(str(e)) from None
    return dict(value)


def shm_size(host_config: dict) -> int:
    value = host_config.get("ShmSize") or 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter("ShmSize must be a number of bytes")
    if value < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    return value


def validate(config: dict, host_config: dict) -> None:
    """The shape of the fields (no database access); raise InvalidParameter."""
    for flag in ("Privileged", "ReadonlyRootfs"):
        if not isinstance(host_config.get(flag) or False, bool):
            raise InvalidParameter(f"{flag} must be a boolean")
    capabilities(host_config, "CapAdd")
    capabilities(host_config, "CapDrop")
    security_options(host_config)
    devices(host_config)
    sysctls(host_config)
    shm_size(host_config)


def runtime_fields(container) -> dict:
    """The ContainerSpec fields for what the container was created with."""
    hc = container.host_config
    return {"privileged": bool(hc.get("Privileged")),
            "cap_add": capabilities(hc, "CapAdd"), "cap_drop": capabilities(hc, "CapDrop"),
            **security_options(hc),
            "readonly_rootfs": bool(hc.get("ReadonlyRootfs")),
            "sysctls": sysctls(hc), "devices": devices(hc), "shm_size": shm_size(hc)}


def beyond_default(host_config: dict) -> list[str]:
    """What a request asks for beyond an ordinary Docker container, as flags (for the
    policy's message), e.g. ['--privileged', '--cap-add CAP_SYS_ADMIN']."""
    asked = []
    if host_config.get("Privileged"):
        asked.append("--privileged")
    for entry in devices(host_config):
        asked.append(f"--device {entry['path_on_host']}")
    for cap in capabilities(host_config, "CapAdd"):
        if cap not in runtime_security.DEFAULT_CAPS:
            asked.append(f"--cap-add {cap}")
    profile = security_options(host_config)["seccomp_profile"]
    if profile == "unconfined":
        asked.append("--security-opt seccomp=unconfined")
    elif profile:
        asked.append("--security-opt seccomp=<custom profile>")
    return asked


def describe(container) -> dict:
    """What the container page's Security card shows."""
    fields = runtime_fields(container)
    profile = fields["seccomp_profile"]
    return {
        "privileged": fields["privileged"],
        "cap_add": [c.removeprefix("CAP_") for c in fields["cap_add"]],
        "cap_drop": [c.removeprefix("CAP_") for c in fields["cap_drop"]],
        "seccomp": ("unconfined" if fields["privileged"] or profile == "unconfined"
                    else "custom profile" if profile else "Docker's default profile"),
        "no_new_privileges": fields["no_new_privileges"],
        "readonly_rootfs": fields["readonly_rootfs"],
        "devices": [f"{d['path_on_host']} → {d['path_in_container']} ({d['permissions']})"
                    for d in fields["devices"]],
        "sysctls": [f"{k}={v}" for k, v in sorted(fields["sysctls"].items())],
        "shm_mib": (fields["shm_size"] or 64 << 20) / (1 << 20),
    }
