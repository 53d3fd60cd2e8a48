"""Bind mounts, tmpfs and volumes inside a container's root (the Storage issue).

``mount_all(cfg, rootfs)`` runs in the container's init (C2) in its own mount namespace,
after /proc, /sys and /dev and before /etc/hosts and pivot_root. ``ContainerSpec.mounts``
is a list of dicts, mounted in order:

- ``type``: ``bind`` | ``volume`` | ``tmpfs``
- ``target``: absolute path in the container; made inside the root (a directory, or a file
  when a file is bind-mounted); symlinks on the way resolve inside the root, one that leads
  outside it is refused
- ``source`` (bind, volume): the host path; for a volume its ``_data`` directory
- ``readonly``: bool; a read-only mount makes writes fail with EROFS
- ``propagation`` (bind, volume): ``""`` (= ``rprivate``), ``private``, ``rprivate``,
  ``shared``, ``rshared``, ``slave``, ``rslave``. A slave or shared mount receives the
  host's mounts below its source (the container's root is then ``rslave`` instead of
  ``rprivate``, as Docker does); the source must be on a shared or slave mount of the node.
  Mounts made in the container never propagate to the node.
- ``create_source`` (bind): make a missing host directory (``-v /host:/ctr``, as Docker
  20+ does); without it a missing source is an error
- ``volume`` (volume): the volume's name; ``volume_options``: its local driver's options
  (``Runtime.start`` makes the driver's mount on the node first, see volumes.py)
- ``copy_up`` (volume): a volume still empty gets the image's content at ``target``
  (owners, modes, times and symlinks kept), as Docker does unless ``volume-nocopy``
- ``options`` (tmpfs): mount words after Docker's defaults ``noexec,nosuid,nodev``
  (the kernel adds ``rw,relatime``), e.g. ``["size=64m", "mode=1777"]`` or ``["exec"]``

All mounts are recursive binds (``rbind``), as Docker's are.
"""

from __future__ import annotations

import fcntl
import os
import stat

from . import linux as L
from .volumes import copy_tree, is_empty_dir, mount_words

TYPES = ("bind", "volume", "tmpfs")
PROPAGATION = {
    "": L.MS_PRIVATE | L.MS_REC,
    "private": L.MS_PRIVATE, "rprivate": L.MS_PRIVATE | L.MS_REC,
    "shared": L.MS_SHARED, "rshared": L.MS_SHARED | L.MS_REC,
    "slave": L.MS_SLAVE, "rslave": L.MS_SLAVE | L.MS_REC,
}
TMPFS_DEFAULTS = "noexec,nosuid,nodev"
KEYS = {"type", "target", "source", "readonly", "propagation", "create_source", "volume",
        "volume_options", "copy_up", "options"}
MAX_SYMLINKS = 40
# statvfs flags that a read-only remount must keep (the kernel refuses to drop locked ones)
_KEPT_FLAGS = ((os.ST_NOSUID, L.MS_NOSUID), (os.ST_NODEV, L.MS_NODEV),
               (os.ST_NOEXEC, L.MS_NOEXEC), (os.ST_NOATIME, L.MS_NOATIME),
               (os.ST_NODIRATIME, 2048), (os.ST_RELATIME, 1 << 21))


class MountError(Exception):
    """A mount that cannot be made, with a user-facing message."""


def validate(mounts) -> None:
    """The entries' shape (spec.validate); raises ValueError with a clear message."""
    if not isinstance(mounts, list) or not all(isinstance(m, dict) for m in mounts):
        raise ValueError("mounts must be a list of objects")
    seen = set()
    for m in mounts:
        unknown = sorted(set(m) - KEYS)
        if unknown:
            raise ValueError(f"mount: unknown key(s) {', '.join(unknown)}")
        kind, target = m.get("type"), m.get("target")
        if kind not in TYPES:
            raise ValueError(f"mount: unknown type {kind!r} (want bind, volume or tmpfs)")
        if not isinstance(target, str) or not target.startswith("/") or ".." in \
                target.split("/") or "\x00" in target:
            raise ValueError(f"invalid mount path: {target!r} mount path must be absolute")
        norm = os.path.normpath(target)
        if norm == "/":
            raise ValueError("invalid specification: destination can't be '/'")
        if norm in seen:
            raise ValueError(f"Duplicate mount point: {norm}")
        seen.add(norm)
        for flag in ("readonly", "create_source", "copy_up"):
            if not isinstance(m.get(flag, False), bool):
                raise ValueError(f"mount {target}: {flag} must be a boolean")
        if kind == "tmpfs":
            opts = m.get("options", [])
            if not isinstance(opts, list) or not all(isinstance(o, str) for o in opts):
                raise ValueError(f"mount {target}: options must be a list of strings")
            mount_words(",".join(opts))
            continue
        source = m.get("source")
        if not isinstance(source, str) or not source.startswith("/") or ".." in \
                source.split("/") or "\x00" in source:
            raise ValueError(f"mount {target}: source must be an absolute host path")
        if m.get("propagation", "") not in PROPAGATION:
            raise ValueError(f"invalid propagation mode: {m.get('propagation')}")
        if kind == "volume" and not isinstance(m.get("volume"), str):
            raise ValueError(f"mount {target}: volume must name the volume")
        if not isinstance(m.get("volume_options", {}), dict):
            raise ValueError(f"mount {target}: volume_options must be an object")


def root_propagation(cfg: dict) -> int:
    """The propagation of the container's root before its mounts: ``rslave`` when a mount
    wants the host's mounts to reach it, ``rprivate`` otherwise."""
    wanted = {m.get("propagation") for m in cfg.get("mounts") or ()}
    if wanted & {"shared", "rshared", "slave", "rslave"}:
        return L.MS_SLAVE | L.MS_REC
    return L.MS_PRIVATE | L.MS_REC


def resolve_in_root(root: str, path: str, make: str | None) -> str:
    """``path`` under ``root``, symlinks resolved inside ``root`` (an absolute link is
    relative to the root; one that climbs above it is refused). ``make``: None (must
    exist), "dir" or "file" (create what is missing; the last component as ``make``)."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if not done:
                raise MountError(f"mount {path}: a path or symlink leads outside the "
                                 "container's root")
            done.pop()
            continue
        cur = os.path.join(root, *done, part)
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if make is None:
                raise
            if not parts and make == "file":
                os.close(os.open(cur, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o755))
            else:
                os.mkdir(cur, 0o755)
            done.append(part)
            continue
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise MountError(f"mount {path}: too many levels of symbolic links")
            link = os.readlink(cur)
            if link.startswith("/"):
                done = []
            parts = [p for p in link.split("/") if p not in ("", ".")] + parts
            continue
        if parts and not stat.S_ISDIR(st.st_mode):
            raise MountError(f"mount {path}: /{'/'.join(done + [part])} is not a directory")
        done.append(part)
    return os.path.join(root, *done)


def _mount_of(path: str) -> tuple[str, str]:
    """(mount point, optional fields) of the mount holding ``path`` in this namespace."""
    best, fields = "", ""
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            left = line.split(b" - ")[0].decode("utf-8", "surrogateescape").split(" ")
            mnt = L._unescape(left[4])
            inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
            if inside and len(mnt) >= len(best):
                best, fields = mnt, " ".join(left[6:])
    return best, fields


def _check_propagation(source: str, mode: str) -> None:
    """Docker's check: a shared mount needs a shared source, a slave one a shared or slave
    source (or nothing would ever propagate)."""
    if mode not in ("shared", "rshared", "slave", "rslave"):
        return
    mnt, fields = _mount_of(os.path.realpath(source))
    if "master:" in fields or (mode.endswith("shared") and "shared:" in fields):
        return
    kind = "shared" if mode.endswith("shared") else "shared or slave"
    raise MountError(f"path {source} is mounted on {mnt} but it is not a {kind} mount")


def _copy_up(source: str, image_path: str) -> None:
    """Fill an empty volume with the image's content, once (a lock on the volume's
    directory: two containers starting on a new volume copy once)."""
    lock = os.open(os.path.dirname(source.rstrip("/")), os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_empty_dir(source):
            copy_tree(image_path, source)
    finally:
        os.close(lock)


def _remount_readonly(dst: str) -> None:
    have = os.statvfs(dst).f_flag
    kept = 0
    for st_flag, ms_flag in _KEPT_FLAGS:
        if have & st_flag:
            kept |= ms_flag
    L.mount(None, dst, None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | kept)


def _bind(m: dict, rootfs: str) -> None:
    source, target = m["source"], m["target"]
    if m.get("create_source") and not os.path.exists(source):
        os.makedirs(source, 0o755, exist_ok=True)
    if not os.path.exists(source):
        raise MountError(f'invalid mount config for type "bind": bind source path does not '
                         f"exist: {source}")
    if m["type"] == "volume" and m.get("copy_up") and is_empty_dir(source):
        try:
            image_path = resolve_in_root(rootfs, target, None)
        except FileNotFoundError:
            image_path = ""
        if image_path and os.path.isdir(image_path) and not os.path.islink(image_path):
            _copy_up(source, image_path)
    mode = m.get("propagation") or ""
    _check_propagation(source, mode)
    dst = resolve_in_root(rootfs, target, "dir" if os.path.isdir(source) else "file")
    L.mount(source, dst, None, L.MS_BIND | L.MS_REC)
    L.mount(None, dst, None, PROPAGATION[mode])
    if m.get("readonly"):
        _remount_readonly(dst)


def _tmpfs(m: dict, rootfs: str) -> None:
    words = ",".join([TMPFS_DEFAULTS, *m.get("options", []), *(["ro"] if m.get("readonly")
                                                               else [])])
    flags, data = mount_words(words)
    dst = resolve_in_root(rootfs, m["target"], "dir")
    L.mount("tmpfs", dst, "tmpfs", flags, ",".join(data) or None)


def mount_all(cfg: dict, rootfs: str) -> None:
    """Mount ``cfg["mounts"]`` under ``rootfs``, in order."""
    for m in cfg.get("mounts") or ():
        try:
            if m["type"] == "tmpfs":
                _tmpfs(m, rootfs)
            else:
                _bind(m, rootfs)
        except OSError as e:
            raise MountError(f"error mounting {m.get('source') or 'tmpfs'} to rootfs at "
                             f"{m['target']}: {e.strerror or e}") from None
