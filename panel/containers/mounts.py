"""HostConfig.Binds (``-v``), Mounts (``--mount``), Tmpfs (``--tmpfs``), VolumesFrom
(``--volumes-from``) and Config.Volumes (``-v /path``, and the image's VOLUME).

``validate`` checks a create request's shape (no database); ``resolve`` (at create) adds
``--volumes-from`` and the image's volumes, checks the host-bind policy and names the
volumes; ``make_volumes`` (in create's transaction) creates the named volumes that do not
exist yet and the anonymous ones, as Docker does at create. The result is stored as
``Container.spec["Mounts"]``: Docker's inspect entries (Type, Name, Source, Destination,
Driver, Mode, RW, Propagation) plus ``Anonymous`` (a volume made for this container, gone
with ``docker rm -v``), ``NoCopy`` (no copy-up of the image's content), ``CreateSource``
(``-v /host:/ctr``: a missing host directory is made), ``Options`` (tmpfs mount words) and
``FromTmpfs`` (``--tmpfs``, which inspect does not list, as in Docker).
"""

import os
import secrets

from django.conf import settings

from panel.errors import InvalidParameter

from . import policy

PROPAGATIONS = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
CONSISTENCY = ("consistent", "cached", "delegated")
TYPES = ("bind", "volume", "tmpfs")
INTERNAL_KEYS = ("Anonymous", "NoCopy", "CreateSource", "Options", "FromTmpfs", "Create")


def _invalid_spec(raw: str, why: str = "") -> InvalidParameter:
    return InvalidParameter(f"invalid volume specification: '{raw}'" + (f": {why}" if why
                                                                         else ""))


def _check_path(path, raw: str, kind: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise _invalid_spec(raw, f'invalid mount config for type "{kind}": invalid mount '
                                 f"path: '{path}' mount path must be absolute")
    if ".." in path.split("/") or "\x00" in path:
        raise _invalid_spec(raw, f"invalid mount path: '{path}'")
    path = os.path.normpath(path)
    if path == "/":
        raise InvalidParameter("invalid specification: destination can't be '/'")
    return path


def _check_volume_name(name: str) -> None:
    from workers.runtime.volumes import VolumeError, validate_name

    try:
        validate_name(name)
    except VolumeError as exc:
        raise InvalidParameter(str(exc)) from None


def mountpoint(name: str) -> str:
    return os.path.join(str(settings.STATE_ROOT), "volumes", name, "_data")


def _volume(name: str | None, target: str, rw: bool, mode: str = "",
            nocopy: bool = False) -> dict:
    """A volume entry; no name: an anonymous volume (its 64-hex name is chosen here)."""
    anonymous = not name
    name = name or secrets.token_hex(32)
    return {"Type": "volume", "Name": name, "Source": mountpoint(name), "Destination": target,
            "Driver": "local", "Mode": mode, "RW": rw, "Propagation": "",
            "Anonymous": anonymous, "NoCopy": nocopy}


def _bind(source: str, target: str, rw: bool, mode: str, propagation: str,
          create_source: bool) -> dict:
    return {"Type": "bind", "Source": source, "Destination": target, "Mode": mode, "RW": rw,
            "Propagation": propagation or "rprivate", "CreateSource": create_source}


_MODE_GROUPS = (("ro", "rw"), ("z", "Z"), PROPAGATIONS, ("nocopy",), CONSISTENCY)


def _valid_mode(mode: str) -> bool:
    """Docker's ValidMountMode: known words, at most one of each group."""
    words = [w for w in mode.split(",") if w]
    return all(any(w in group for group in _MODE_GROUPS) for w in words) and all(
        sum(w in group for w in words) <= 1 for group in _MODE_GROUPS)


def parse_bind(raw) -> dict:
    """One ``-v`` value (HostConfig.Binds): ``/host:/ctr[:mode]`` (a bind),
    ``name:/ctr[:mode]`` (a named volume) or ``/ctr`` (an anonymous volume)."""
    if not isinstance(raw, str) or not raw:
        raise InvalidParameter("Binds must be a list of strings")
    parts = raw.split(":")
    if len(parts) == 1:
        return _volume(None, _check_path(parts[0], raw, "volume"), True)
    if len(parts) == 2 and _valid_mode(parts[1]):  # /ctr:mode, an anonymous volume
        source, target, mode = "", parts[0], parts[1]
    elif len(parts) in (2, 3):
        source, target, mode = parts[0], parts[1], (parts[2] if len(parts) == 3 else "")
    else:
        raise _invalid_spec(raw)
    if not _valid_mode(mode):
        raise InvalidParameter(f"invalid mode: {mode}")
    words = [w for w in mode.split(",") if w]
    rw = "ro" not in words
    propagation = next((w for w in words if w in PROPAGATIONS), "")
    if not source:
        return _volume(None, _check_path(target, raw, "volume"), rw, mode,
                       "nocopy" in words)
    if source.startswith("/"):
        if "nocopy" in words:
            raise InvalidParameter(f"invalid mode: {mode}")
        return _bind(_check_path(source, raw, "bind") if source != "/" else "/",
                     _check_path(target, raw, "bind"), rw, mode, propagation, True)
    _check_volume_name(source)
    if propagation:
        raise InvalidParameter(f"invalid mode: {mode}")
    return _volume(source, _check_path(target, raw, "volume"), rw, mode or "z",
                   "nocopy" in words)


def _mount_error(kind, message: str) -> InvalidParameter:
    return InvalidParameter(f'invalid mount config for type "{kind}": {message}')


def _tmpfs_words(size, mode) -> list[str]:
    """Docker's ConvertTmpfsOptions: mode in octal, the size with the largest unit that
    divides it."""
    words = []
    if mode:
        words.append(f"mode={mode:o}")
    if size:
        suffix = ""
        for unit, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
            if size % divisor == 0:
                size, suffix = size // divisor, unit
                break
        words.append(f"size={size}{suffix}")
    return words


def parse_mount(m) -> dict:
    """One ``--mount`` (HostConfig.Mounts entry), checked as Docker's daemon checks it."""
    if not isinstance(m, dict):
        raise InvalidParameter("Mounts must be a list of objects")
    kind = m.get("Type") or ""
    if kind not in TYPES:
        raise _mount_error(kind, "mount type unknown")
    if not m.get("Target"):
        raise _mount_error(kind, "field Target must not be empty")
    target = m["Target"]
    if not isinstance(target, str) or not target.startswith("/") or ".." in target.split("/"):
        raise _mount_error(kind, f"invalid mount path: '{target}' mount path must be absolute")
    target = os.path.normpath(target)
    if target == "/":
        raise InvalidParameter("invalid specification: destination can't be '/'")
    rw = not m.get("ReadOnly")
    source = m.get("Source") or ""
    for field, allowed in (("BindOptions", "bind"), ("VolumeOptions", "volume"),
                           ("TmpfsOptions", "tmpfs")):
        if m.get(field) and kind != allowed:
            raise _mount_error(kind, f"field {field} must not be specified")
    if kind == "tmpfs":
        if source:
            raise _mount_error(kind, "field Source must not be specified")
        opts = m.get("TmpfsOptions") or {}
        size, mode = opts.get("SizeBytes") or 0, opts.get("Mode") or 0
        if not isinstance(size, int) or size < 0:
            raise _mount_error(kind, f"invalid tmpfs size: {size}")
        if not isinstance(mode, int) or not 0 <= mode <= 0o7777:
            raise _mount_error(kind, f"invalid tmpfs mode: {mode}")
        return {"Type": "tmpfs", "Source": "", "Destination": target, "Mode": "", "RW": rw,
                "Propagation": "", "Options": _tmpfs_words(size, mode)}
    if kind == "bind":
        if not source:
            raise _mount_error(kind, "field Source must not be empty")
        if not isinstance(source, str) or not source.startswith("/") or ".." in \
                source.split("/"):
            raise _mount_error(kind, f"invalid mount path: '{source}' mount path must be "
                                     "absolute")
        source = os.path.normpath(source)
        if not os.path.exists(source):
            raise _mount_error(kind, f"bind source path does not exist: {source}")
        propagation = ((m.get("BindOptions") or {}).get("Propagation") or "").lower()
        if propagation and propagation not in PROPAGATIONS:
            raise _mount_error(kind, f"invalid propagation mode: {propagation}")
        return _bind(source, target, rw, "", propagation, False)
    opts = m.get("VolumeOptions") or {}
    driver = (opts.get("DriverConfig") or {}).get("Name") or "local"
    if driver != "local":
        raise _mount_error(kind, f'volume driver "{driver}" is not available on this node')
    if source:
        _check_volume_name(source)
    entry = _volume(source or None, target, rw, "", bool(opts.get("NoCopy")))
    if opts.get("Labels") or (opts.get("DriverConfig") or {}).get("Options"):
        entry["Create"] = {"Labels": opts.get("Labels") or {},
                           "Options": (opts.get("DriverConfig") or {}).get("Options") or {}}
    return entry


def parse_tmpfs(target, options) -> dict:
    """One ``--tmpfs /path[:options]`` (HostConfig.Tmpfs entry)."""
    from workers.runtime.volumes import VolumeError, mount_words

    raw = f"{target}:{options}" if options else str(target)
    target = _check_path(target, raw, "tmpfs")
    if not isinstance(options, str):
        raise InvalidParameter("Tmpfs must map paths to option strings")
    try:
        mount_words(options)
    except VolumeError as exc:
        raise InvalidParameter(f"invalid tmpfs options for {target}: {exc}") from None
    words = [w for w in options.split(",") if w]
    return {"Type": "tmpfs", "Source": "", "Destination": target, "Mode": options,
            "RW": "ro" not in words, "Propagation": "", "Options": words, "FromTmpfs": True}


def parse_volumes_from(raw) -> tuple[str, str]:
    """``container[:ro|rw]`` -> (container, mode)."""
    if not isinstance(raw, str) or not raw or raw.startswith(":"):
        raise InvalidParameter("VolumesFrom must be a list of container[:ro|rw]")
    ref, _, mode = raw.partition(":")
    if mode not in ("", "ro", "rw"):
        raise InvalidParameter(f"invalid mode for volumes-from: {mode}")
    return ref, mode


def _listed(host_config: dict, key: str) -> list:
    value = host_config.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidParameter(f"{key} must be a list")
    return value


def parse(config: dict, host_config: dict) -> list[dict]:
    """The mounts a request names itself, in Docker's order (binds, mounts, tmpfs, then
    Config.Volumes' anonymous volumes for paths nothing else covers)."""
    entries = [parse_bind(raw) for raw in _listed(host_config, "Binds")]
    entries += [parse_mount(m) for m in _listed(host_config, "Mounts")]
    tmpfs = host_config.get("Tmpfs") or {}
    if not isinstance(tmpfs, dict):
        raise InvalidParameter("Tmpfs must be an object")
    entries += [parse_tmpfs(target, options) for target, options in tmpfs.items()]
    seen = set()
    for entry in entries:
        if entry["Destination"] in seen:
            raise InvalidParameter(f"Duplicate mount point: {entry['Destination']}")
        seen.add(entry["Destination"])
    volumes = config.get("Volumes") or {}
    if not isinstance(volumes, dict):
        raise InvalidParameter("Volumes must be an object")
    for path in volumes:
        target = _check_path(path, path, "volume")
        if target not in seen:
            seen.add(target)
            entries.append(_volume(None, target, True))
    for raw in _listed(host_config, "VolumesFrom"):
        parse_volumes_from(raw)
    return entries


def validate(config: dict, host_config: dict) -> None:
    """The shape of the fields (no database access); raise InvalidParameter."""
    parse(config, host_config)


def resolve(*, acting_user, team, config: dict, host_config: dict, image) -> list[dict]:
    """The container's mounts (``Container.spec["Mounts"]``): the request's, then those of
    ``--volumes-from`` containers and the image's VOLUMEs at paths nothing else covers.
    Raises Forbidden for a host bind the user may not make (before anything is made)."""
    from . import services

    entries = parse(config, host_config)
    taken = {e["Destination"] for e in entries}
    for raw in _listed(host_config, "VolumesFrom"):
        ref, mode = parse_volumes_from(raw)
        donor = services.resolve(acting_user, ref)
        for entry in donor.spec.get("Mounts") or []:
            if entry["Type"] == "tmpfs" or entry["Destination"] in taken:
                continue
            copied = {k: v for k, v in entry.items() if k != "Create"}
            if mode:
                copied["RW"] = mode == "rw"
            taken.add(copied["Destination"])
            entries.append(copied)
    for path in (image.run_config.get("Volumes") or {}) if image is not None else ():
        target = os.path.normpath(path)
        if target.startswith("/") and target != "/" and target not in taken:
            taken.add(target)
            entries.append(_volume(None, target, True))
    policy.check_host_binds(acting_user, team,
                            [e["Source"] for e in entries if e["Type"] == "bind"])
    return entries


def make_volumes(*, acting_user, container, source: str = "api") -> None:
    """Create the container's volumes that do not exist yet (named ones as a user's
    ``docker volume create`` with the ``--mount`` volume options, anonymous ones marked
    so). Called in create's transaction."""
    from panel.volumes import services as volumes

    for entry in container.spec.get("Mounts") or []:
        if entry["Type"] != "volume":
            continue
        create = entry.pop("Create", {})
        volumes.ensure_for_container(acting_user=acting_user, team=container.team,
                                     name=entry["Name"], anonymous=bool(entry.get("Anonymous")),
                                     labels=create.get("Labels"),
                                     options=create.get("Options"), source=source)
    container.save(update_fields=["spec"])


def runtime_fields(container) -> dict:
    """The ContainerSpec's ``mounts`` (workers/runtime/mounts.py) for the container."""
    from panel.volumes.models import Volume

    entries = container.spec.get("Mounts") or []
    names = [e["Name"] for e in entries if e["Type"] == "volume"]
    options = dict(Volume.objects.filter(name__in=names).values_list("name", "options"))
    mounts = []
    for e in entries:
        base = {"type": e["Type"], "target": e["Destination"], "readonly": not e["RW"]}
        if e["Type"] == "tmpfs":
            mounts.append({**base, "options": list(e.get("Options") or [])})
        elif e["Type"] == "bind":
            mounts.append({**base, "source": e["Source"], "propagation": e["Propagation"],
                           "create_source": bool(e.get("CreateSource"))})
        else:
            mounts.append({**base, "source": mountpoint(e["Name"]), "volume": e["Name"],
                           "volume_options": options.get(e["Name"]) or {},
                           "copy_up": not e.get("NoCopy")})
    return {"mounts": mounts}


def describe(container) -> list[dict]:
    """Docker's inspect ``Mounts`` entries of the container."""
    out = []
    for e in container.spec.get("Mounts") or []:
        if e.get("FromTmpfs"):
            continue
        out.append({k: v for k, v in e.items() if k not in INTERNAL_KEYS})
    return out
