"""User namespaces: a node's userns-remap (like dockerd's ``--userns-remap``).

With a remap, a container's PID 1 is cloned with ``CLONE_NEWUSER`` as well: root inside is
an unprivileged uid on the node (``default``: 0 -> 100000 for 65536 ids, uids and gids).
The parent of PID 1 (the shim, or C1 forked from it) writes ``/proc/<pid>/uid_map`` and
``gid_map`` while PID 1 waits on a socket, puts it into its cgroup and sends it idmapped
mounts of the image layers (``open_tree`` + ``mount_setattr(MOUNT_ATTR_IDMAP)``: a file
owned by uid 0 in the image shows as root inside); PID 1 then becomes root of its namespace,
moves them over the layer dirs in its own mount namespace and mounts the overlay itself
(``userxattr``: the overlay of a user namespace keeps its xattrs in ``user.overlay.*``).
Where the layers' filesystem cannot idmap, shifted copies of the layers are used instead.
``Runtime.start`` (``prepare_container``) gives the overlay's upper and work dirs, the /etc
files and new volumes to the remapped root.

Spec fields (``ContainerSpec``): ``userns_mode`` ("" or "host": no user namespace),
``uid_map`` / ``gid_map`` (lists of ``[inside, outside, count]``; empty: none).
"""

from __future__ import annotations

import _socket  # not socket: PID 1's path stays light (see nsinit)
import ctypes
import os
import stat
import struct  # not array: it imports collections (idle shims stay small)

from . import linux as L

DEFAULT_REMAP = (100000, 65536)
MAX_ID = 2**32 - 1
USERNS_MODES = ("", "host")

SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442
OPEN_TREE_CLONE = 1
AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_IDMAP = 0x00100000
OVERLAY_OPTION = ",userxattr"
LAYER_MARKER = "userxattr"  # next to a layer's diff/: its opaque dirs have the user xattr too


class RemapError(ValueError):
    """An invalid userns-remap setting or id map."""


def parse_remap(value: str) -> tuple[int, int] | None:
    """The node setting: "" (off), "default" (100000:65536) or "<first>:<count>"."""
    value = (value or "").strip()
    if not value:
        return None
    if value == "default":
        return DEFAULT_REMAP
    first, sep, count = value.partition(":")
    if not sep or not first.isdigit() or not count.isdigit():
        raise RemapError(f"invalid userns-remap {value!r}: want '', 'default' or "
                         "'<first host id>:<count>'")
    first, count = int(first), int(count)
    if first < 1 or count < 1 or first + count - 1 > MAX_ID:
        raise RemapError(f"invalid userns-remap {value!r}: the host ids must be in "
                         f"1..{MAX_ID} (0 is the node's root)")
    return first, count


def id_map(remap: tuple[int, int] | None) -> list[list[int]]:
    """Container ids 0.. onto the remapped range: [[0, first, count]], or [] (off)."""
    return [[0, remap[0], remap[1]]] if remap else []


def validate_maps(spec) -> None:
    """The spec's user namespace fields (raises spec.SpecError)."""
    from .spec import SpecError

    if spec.userns_mode not in USERNS_MODES:
        raise SpecError(f"invalid USER mode: {spec.userns_mode}")
    for what in ("uid_map", "gid_map"):
        entries = getattr(spec, what)
        if not isinstance(entries, list) or not all(
                isinstance(e, list) and len(e) == 3 and all(
                    isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_ID
                    for n in e) and e[2] >= 1 for e in entries):
            raise SpecError(f"{what} must be a list of [inside, outside, count] id ranges")
    if spec.userns_mode == "host" and (spec.uid_map or spec.gid_map):
        raise SpecError("userns_mode host takes no uid_map or gid_map")
    if bool(spec.uid_map) != bool(spec.gid_map):
        raise SpecError("uid_map and gid_map go together")
    if spec.uid_map and host_id(spec.uid_map, 0) is None:
        raise SpecError("uid_map must map the container's root (uid 0)")


def host_id(entries: list[list[int]], inside: int) -> int | None:
    """The node's id for ``inside`` under the map (None: unmapped)."""
    for start, outside, count in entries:
        if start <= inside < start + count:
            return outside + inside - start
    return None


def _maps(cfg) -> tuple[list, list]:
    """(uid_map, gid_map) of a config.json dict or a ContainerSpec."""
    if isinstance(cfg, dict):
        return cfg.get("uid_map") or [], cfg.get("gid_map") or []
    return cfg.uid_map, cfg.gid_map


def remapped_root(cfg) -> tuple[int, int] | None:
    """(uid, gid) on the node of the container's root, or None without a user namespace."""
    uid_map, gid_map = _maps(cfg)
    if not uid_map:
        return None
    return host_id(uid_map, 0), host_id(gid_map, 0)


# -- the node side, before the start ---------------------------------------------------

def prepare_container(root: str, cdir: str, spec) -> None:
    """Make what the container's root needs its own (overlay upper and work dirs, /etc
    files, new volumes), the paths to the state root's layers traversable by it, and
    shifted copies of the layers where idmapped mounts are not available. Idempotent
    (also before each restart, which makes a fresh work dir)."""
    owner = remapped_root(spec)
    if owner is None:
        return
    for name in ("upper", "work", "hostname", "hosts", "resolv.conf"):
        path = os.path.join(cdir, name)
        if os.path.exists(path):
            os.chown(path, *owner)
    _traversable(root, cdir)
    for layer in spec.layers:
        _traversable(root, os.path.dirname(layer))
        _mark_opaque_dirs(layer)
    if not all(idmap_supported(layer, spec) for layer in spec.layers):
        for layer in spec.layers:
            shifted_copy(layer, spec)
    for m in spec.mounts:
        if m.get("type") == "volume":
            _own_new_volume(m["source"], owner)


def _own_new_volume(data: str, owner: tuple[int, int]) -> None:
    """A volume's data dir still empty and the node root's (just made, never used) becomes
    the remapped root's, as Docker's are on a remapping daemon; a driver's mount (tmpfs,
    a host directory) is left as it is."""
    st = os.stat(data)
    if (st.st_uid, st.st_gid) == (0, 0) and not os.listdir(data) and not os.path.ismount(data):
        os.chown(data, *owner)


def _traversable(root: str, path: str) -> None:
    """o+x on ``path`` and every directory between it and ``root`` (inclusive): the
    remapped root is "other" to the node's root-owned dirs (like Docker's 0711 root)."""
    root = os.path.abspath(root)
    path = os.path.abspath(path)
    if os.path.commonpath([root, path]) != root:
        return
    while True:
        st = os.stat(path)
        if not st.st_mode & 0o001:
            os.chmod(path, (st.st_mode & 0o7777) | 0o001)
        if path == root:
            return
        path = os.path.dirname(path)


def _mark_opaque_dirs(layer: str) -> None:
    """Once per layer: its opaque dirs (``trusted.overlay.opaque``, set at unpack) get
    ``user.overlay.opaque`` too, which is what a ``userxattr`` overlay reads."""
    marker = os.path.join(os.path.dirname(layer), LAYER_MARKER)
    if os.path.exists(marker):
        return
    for dirpath, _dirs, _files in os.walk(layer):
        try:
            value = os.getxattr(dirpath, "trusted.overlay.opaque", follow_symlinks=False)
        except OSError:
            continue
        os.setxattr(dirpath, "user.overlay.opaque", value, follow_symlinks=False)
    with open(marker, "w"):
        pass


_idmap_by_dev: dict[int, bool] = {}


def idmap_supported(layer: str, spec) -> bool:
    """Whether the kernel can idmap a mount of ``layer``'s filesystem (probed once per
    filesystem with a throwaway user namespace)."""
    dev = os.stat(layer).st_dev
    if dev not in _idmap_by_dev:
        _idmap_by_dev[dev] = _probe_idmap(layer, spec)
    return _idmap_by_dev[dev]


def _probe_idmap(layer: str, spec) -> bool:
    r, w = os.pipe()
    pid = L.clone(L.CLONE_NEWUSER)
    if pid == 0:  # holds the user namespace until the probe is done
        os.close(w)
        os.read(r, 1)
        os._exit(0)
    os.close(r)
    try:
        write_maps(pid, spec)
        userns_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.close(idmapped_tree(layer, userns_fd))
            return True
        except OSError:
            return False
        finally:
            os.close(userns_fd)
    finally:
        os.close(w)
        os.waitpid(pid, 0)


def shifted_path(layer: str, cfg) -> str:
    """Where the shifted copy of ``layer`` for these id maps lives (next to its diff/)."""
    uid_map, gid_map = _maps(cfg)
    key = "-".join(str(n) for entry in uid_map + gid_map for n in entry)
    return os.path.join(os.path.dirname(layer), "userns-" + key)


def shifted_copy(layer: str, spec) -> str:
    """The layer copied with every owner shifted into the remapped range (made once per
    layer and maps, cached under the layer's dir, removed with it)."""
    import shutil  # node side only: not in PID 1's imports
    import tempfile

    target = shifted_path(layer, spec)
    if os.path.isdir(target):
        return target
    tmp = tempfile.mkdtemp(prefix=".userns-", dir=os.path.dirname(layer))
    try:
        _copy_shifted(layer, os.path.join(tmp, "diff"), *_maps(spec))
        try:
            os.rename(os.path.join(tmp, "diff"), target)
        except OSError:
            if not os.path.isdir(target):  # else: made concurrently
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _shift(entries: list[list[int]], inside: int) -> int:
    """An id outside the map becomes the container's nobody (65534), as the kernel shows."""
    outside = host_id(entries, inside)
    if outside is None:
        outside = host_id(entries, 65534)
    return entries[0][1] if outside is None else outside


def _copy_shifted(src: str, dst: str, uid_map: list, gid_map: list) -> None:
    links: dict[tuple[int, int], str] = {}
    dirs = []
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        out_dir = os.path.normpath(os.path.join(dst, rel))
        os.mkdir(out_dir, 0o700)
        dirs.append((dirpath, out_dir, os.lstat(dirpath)))
        for name in dirnames + filenames:
            path, out = os.path.join(dirpath, name), os.path.join(out_dir, name)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                continue  # made by the walk
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                first = links.setdefault((st.st_dev, st.st_ino), out)
                if first != out:
                    os.link(first, out)
                    continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(path), out)
            elif stat.S_ISREG(st.st_mode):
                _copy_file(path, out)
            else:  # devices (the 0/0 whiteouts), fifos, sockets
                os.mknod(out, st.st_mode, st.st_rdev)
            _copy_meta(path, out, st, uid_map, gid_map)
    for dirpath, out_dir, st in reversed(dirs):  # children first: their times stay
        _copy_meta(dirpath, out_dir, st, uid_map, gid_map)


def _copy_file(src: str, dst: str) -> None:
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(1 << 20):
            fout.write(chunk)


def _copy_meta(src: str, dst: str, st, uid_map: list, gid_map: list) -> None:
    os.chown(dst, _shift(uid_map, st.st_uid), _shift(gid_map, st.st_gid),
             follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        _copy_xattrs(src, dst)  # after chown, which drops security.capability
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))  # after chown, which drops set-id bits
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_xattrs(src: str, dst: str) -> None:
    for name in os.listxattr(src, follow_symlinks=False):
        os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False),
                    follow_symlinks=False)


# -- syscalls --------------------------------------------------------------------------

class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _syscall(nr: int, what: str, *args) -> int:
    return L._check(L._libc.syscall(ctypes.c_long(nr), *args), what)


def idmapped_tree(path: str, userns_fd: int) -> int:
    """A detached clone of the mount at ``path``, idmapped through the user namespace."""
    fd = _syscall(SYS_OPEN_TREE, f"open_tree({path})", ctypes.c_int(AT_FDCWD),
                  ctypes.c_char_p(os.fsencode(path)),
                  ctypes.c_uint(OPEN_TREE_CLONE | os.O_CLOEXEC))
    attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
    try:
        _syscall(SYS_MOUNT_SETATTR, f"mount_setattr({path}, MOUNT_ATTR_IDMAP)",
                 ctypes.c_int(fd), ctypes.c_char_p(b""), ctypes.c_uint(AT_EMPTY_PATH),
                 ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))
    except OSError:
        os.close(fd)
        raise
    return fd


def move_mount(fd: int, target: str) -> None:
    _syscall(SYS_MOVE_MOUNT, f"move_mount({target})", ctypes.c_int(fd), ctypes.c_char_p(b""),
             ctypes.c_int(AT_FDCWD), ctypes.c_char_p(os.fsencode(target)),
             ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH))


# -- the parent of PID 1 and PID 1 -----------------------------------------------------

def wants_userns(cfg: dict) -> bool:
    return bool(cfg.get("uid_map"))


def sync_pair(cfg: dict):
    """Before the clone: (parent end, child end) of the socket PID 1 waits on, or None."""
    if not wants_userns(cfg):
        return None
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)


def write_maps(pid: int, cfg) -> None:
    """/proc/<pid>/uid_map and gid_map. setgroups stays "allow": a privileged parent
    writes them, as runc does, so the container may still set its groups."""
    for name, entries in zip(("uid_map", "gid_map"), _maps(cfg), strict=True):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, "".join(f"{a} {b} {c}\n" for a, b, c in entries).encode())
        finally:
            os.close(fd)


def release_child(cfg: dict, pid: int, sock, enter_cgroup) -> None:
    """In the parent, right after the clone: write PID 1's id maps, put it into its cgroup
    (``enter_cgroup(cfg, pid)``: PID 1 has no right to the node's cgroupfs) and send the
    go: ``g`` with the idmapped layers, or ``c`` when shifted copies of the layers are to
    be used (``Runtime.start`` made them: no idmapped mounts here). Closes ``sock``."""
    try:
        write_maps(pid, cfg)
        enter_cgroup(cfg, pid)
        if all(os.path.isdir(shifted_path(layer, cfg)) for layer in cfg["layers"]):
            sock.sendall(b"c")
            return
        userns_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        fds = []
        try:
            for layer in cfg["layers"]:
                fds.append(idmapped_tree(layer, userns_fd))
            sock.sendmsg([b"g"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                   struct.pack(f"{len(fds)}i", *fds))])
        finally:
            for fd in fds + [userns_fd]:
                os.close(fd)
    finally:
        sock.close()


def wait_parent(sock, cfg: dict) -> list[int]:
    """In PID 1: wait for the parent's go and become root of the user namespace. Returns
    the idmapped layers' fds, or [] for the shifted copies (see ``lower_dirs``)."""
    count = len(cfg["layers"])
    fds: list[int] = []
    msg, anc, _flags, _addr = sock.recvmsg(1, _socket.CMSG_SPACE(count * 4))
    sock.close()
    for level, kind, data in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(struct.unpack(f"{usable // 4}i", data[:usable]))
    if not (msg == b"c" and not fds or msg == b"g" and len(fds) == count):
        os._exit(127)  # the parent failed and reports why
    # our ids are still the node's root (unmapped here): take the namespace's root
    os.setresgid(0, 0, 0)
    os.setgroups([])
    os.setresuid(0, 0, 0)
    return fds


def lower_dirs(cfg: dict, fds: list[int]) -> list[str]:
    """In PID 1's own mount namespace, once its propagation is set: the overlay's lower
    dirs, ``cfg["layers"]`` covered by their idmapped clones, or their shifted copies."""
    if not fds:
        return [shifted_path(layer, cfg) for layer in cfg["layers"]]
    for layer, fd in zip(cfg["layers"], fds, strict=True):
        move_mount(fd, layer)
        os.close(fd)
    return list(cfg["layers"])


def bind_node_device(path: str, source: str) -> None:
    """mknod is refused in a user namespace: bind the node's device node (as runc does)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
    L.mount(source, path, None, L.MS_BIND)
