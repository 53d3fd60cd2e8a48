"""The node's volume store: ``<state root>/volumes/<name>/_data`` (Docker's layout).

A volume of the local driver is a directory; with driver options it is a mount made on
the node at its first use (``activate``: before a container that uses it starts) and
undone by ``remove``:

- ``type=tmpfs,device=tmpfs[,o=size=64m,mode=1777,...]``: a tmpfs on ``_data``;
- ``type=none,o=bind,device=/path``: the host directory ``/path`` bind-mounted on ``_data``.

Other filesystem types (nfs, cifs, ...) are refused: nothing on this node tests them.
``<name>/opts.json`` keeps the options, so that the runtime can activate a volume without
the panel (e.g. a container restarted by reconciliation after a reboot).
"""

from __future__ import annotations

import os
import stat

from . import linux

# json, re and shutil are imported where they are used: the shim launcher preloads this module
# (through mounts) and every idle shim would carry them
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
OPTION_KEYS = ("type", "o", "device", "size")
# Docker's local driver: an option that needs another one
REQUIRED_WITH = {"device": ("type",), "type": ("device",), "o": ("device",)}
TMPFS_DATA_KEYS = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "huge", "mpol")
# mount(2) flags as mount(8) spells them: word -> (flags set, flags cleared)
FLAG_WORDS = {
    "ro": (linux.MS_RDONLY, 0), "rw": (0, linux.MS_RDONLY),
    "nosuid": (linux.MS_NOSUID, 0), "suid": (0, linux.MS_NOSUID),
    "nodev": (linux.MS_NODEV, 0), "dev": (0, linux.MS_NODEV),
    "noexec": (linux.MS_NOEXEC, 0), "exec": (0, linux.MS_NOEXEC),
    "noatime": (linux.MS_NOATIME, 0), "atime": (0, linux.MS_NOATIME),
    "strictatime": (linux.MS_STRICTATIME, 0), "relatime": (0, linux.MS_STRICTATIME),
    "nodiratime": (2048, 0), "diratime": (0, 2048),
}


def _json():
    import json

    return json


class VolumeError(ValueError):
    """Invalid volume options, or a volume the node cannot provide."""


def valid_name(name) -> bool:
    """Docker's rule for a local volume name: [a-zA-Z0-9][a-zA-Z0-9_.-]+."""
    return (isinstance(name, str) and len(name) >= 2 and name[0].isascii()
            and name[0].isalnum() and NAME_CHARS.issuperset(name))


def validate_name(name: str) -> None:
    if not valid_name(name):
        raise VolumeError(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host '
            "directory, use absolute path")


def mount_words(text: str) -> tuple[int, list[str]]:
    """'size=64m,noexec,uid=1000' -> (flags, ['size=64m', 'uid=1000']); raises VolumeError
    for a word that is neither a known flag nor a tmpfs data option."""
    flags, data = 0, []
    for word in (w.strip() for w in (text or "").split(",")):
        if not word:
            continue
        if word in FLAG_WORDS:
            on, off = FLAG_WORDS[word]
            flags = (flags | on) & ~off
        elif word.split("=", 1)[0] in TMPFS_DATA_KEYS and "=" in word:
            data.append(word)
        else:
            raise VolumeError(f"invalid mount option: {word!r}")
    return flags, data


def validate_options(options: dict) -> None:
    """The local driver's options (``--opt``), with Docker's words where it has them."""
    if not isinstance(options, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in options.items()):
        raise VolumeError("volume options must be a mapping of strings to strings")
    for key in options:
        if key not in OPTION_KEYS:
            raise VolumeError(f'invalid option: "{key}"')
    for key, needs in REQUIRED_WITH.items():
        for other in needs:
            if key in options and other not in options:
                raise VolumeError(f'missing required option: "{other}"')
    if "size" in options:
        raise VolumeError("quota size requested but no quota support")
    kind = options.get("type")
    if kind is None:
        return
    words = [w for w in options.get("o", "").split(",") if w]
    if kind == "tmpfs":
        mount_words(options.get("o", ""))
    elif kind == "none":
        if not {"bind", "rbind"} & set(words):
            raise VolumeError('type=none needs o=bind (a bind of a host directory)')
        device = options["device"]
        if not os.path.isabs(device) or ".." in device.split("/"):
            raise VolumeError(f"invalid device {device!r}: want an absolute host path")
        mount_words(",".join(w for w in words if w not in ("bind", "rbind")))
    else:
        raise VolumeError(f"volume type {kind!r} is not supported by this node's local "
                          "driver (only tmpfs, and none with o=bind)")


class VolumeStore:
    def __init__(self, root: str):
        self.root = os.path.join(os.path.abspath(root), "volumes")

    def path(self, name: str) -> str:
        validate_name(name)
        return os.path.join(self.root, name)

    def data(self, name: str) -> str:
        """The volume's mountpoint (Docker's ``Mountpoint``)."""
        return os.path.join(self.path(name), "_data")

    def names(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root) if valid_name(n))
        except FileNotFoundError:
            return []

    def exists(self, name: str) -> bool:
        return os.path.isdir(self.data(name))

    def create(self, name: str, options: dict | None = None) -> str:
        """Make the volume's directory (idempotent); returns its mountpoint."""
        options = options or {}
        validate_options(options)
        os.makedirs(self.root, mode=0o701, exist_ok=True)
        path = self.path(name)
        os.makedirs(os.path.join(path, "_data"), mode=0o755, exist_ok=True)
        opts = os.path.join(path, "opts.json")
        if options and not os.path.exists(opts):
            tmp = opts + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(_json().dumps(options))
            os.rename(tmp, opts)
        return os.path.join(path, "_data")

    def options(self, name: str) -> dict:
        try:
            with open(os.path.join(self.path(name), "opts.json"), encoding="utf-8") as f:
                return _json().loads(f.read())
        except FileNotFoundError:
            return {}

    def activate(self, name: str, options: dict | None = None) -> str:
        """Create the volume if needed and make its driver's mount (tmpfs, bind of a host
        directory) on the node if it has one and it is not there yet. Returns its data dir."""
        data = self.create(name, options)
        options = self.options(name)
        kind = options.get("type")
        if kind is None or os.path.ismount(data):
            return data
        if kind == "tmpfs":
            flags, words = mount_words(options.get("o", ""))
            linux.mount(options.get("device") or "tmpfs", data, "tmpfs", flags,
                        ",".join(words) or None)
        else:  # none + bind, checked by validate_options
            words = [w for w in options.get("o", "").split(",") if w]
            flags, _ = mount_words(",".join(w for w in words if w not in ("bind", "rbind")))
            device = options["device"]
            if not os.path.isdir(device):
                raise VolumeError(f"error while mounting volume '{data}': failed to mount "
                                  f"local volume: {device}: no such directory")
            rec = linux.MS_REC if "rbind" in words else 0
            linux.mount(device, data, None, linux.MS_BIND | rec)
            if flags:
                linux.mount(device, data, None,
                            linux.MS_BIND | linux.MS_REMOUNT | rec | flags)
        linux.mount(None, data, None, linux.MS_PRIVATE)  # nothing propagates to the host
        return data

    def deactivate(self, name: str) -> None:
        data = self.data(name)
        for mnt in sorted(linux.mounts_under(data), key=len, reverse=True):
            linux.umount2(mnt, linux.MNT_DETACH)

    def remove(self, name: str) -> None:
        """Unmount what the driver mounted and delete the volume (idempotent). The host
        directory of a ``type=none`` volume is unmounted first, so it is never deleted."""
        path = self.path(name)
        if not os.path.isdir(path):
            return
        self.deactivate(name)
        if linux.mounts_under(path):
            raise VolumeError(f"remove {name}: still mounted on the node")
        import shutil

        shutil.rmtree(path)

    def size(self, name: str) -> int:
        """Bytes of the files in the volume, hard links counted once (Docker's
        UsageData.Size)."""
        seen, total = set(), 0
        for dirpath, _dirs, files in os.walk(self.data(name)):
            for entry in files:
                try:
                    st = os.lstat(os.path.join(dirpath, entry))
                except OSError:
                    continue
                if st.st_size and (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_size
        return total


def is_empty_dir(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except FileNotFoundError:
        return True


def copy_tree(src: str, dst: str) -> None:
    """Copy ``src``'s content into the existing directory ``dst`` keeping owners, modes,
    times and symlinks (Docker's copy-up of an image path into a new volume); ``dst``
    itself takes ``src``'s owner and mode. Does not follow symlinks, stays on one tree."""
    st = os.lstat(src)
    for entry in os.scandir(src):
        s, d = entry.path, os.path.join(dst, entry.name)
        est = os.lstat(s)
        if stat.S_ISDIR(est.st_mode):
            os.mkdir(d, 0o700)
            copy_tree(s, d)
            continue
        if stat.S_ISLNK(est.st_mode):
            os.symlink(os.readlink(s), d)
        elif stat.S_ISREG(est.st_mode):
            _copy_file(s, d)
        elif stat.S_ISFIFO(est.st_mode):
            os.mkfifo(d, 0o600)
        elif stat.S_ISCHR(est.st_mode) or stat.S_ISBLK(est.st_mode):
            linux.mknod(d, est.st_mode, os.major(est.st_rdev), os.minor(est.st_rdev))
        else:
            continue  # sockets: nothing to copy
        _copy_meta(d, est)
    _copy_meta(dst, st)


def _copy_file(src: str, dst: str) -> None:
    fin = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                       0o600)
        try:
            while os.sendfile(fout, fin, None, 1 << 20):
                pass
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_meta(path: str, st: os.stat_result) -> None:
    os.chown(path, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def activate_all(root: str, mounts: list[dict]) -> None:
    """Before a container starts: its volumes exist, with their driver's mounts made."""
    store = VolumeStore(root)
    for m in mounts:
        if m.get("type") == "volume":
            store.activate(m["volume"], m.get("volume_options") or {})
