"""The container's side of the shim: runs only in the shim's forked children.

``spawn()`` is called in C1 (forked from the shim): it clones C2 into new namespaces
(mount, UTS, IPC, network unless it joins a netns file or the node's (ContainerSpec.netns),
PID; and user with a userns-remap, see userns.py) with
``CLONE_PARENT``, so C2, the PID 1 of the new PID namespace, is a child of the shim
itself; C2 sets up the root filesystem and execs the container's command. Any failure
before exec is written to the CLOEXEC error pipe and the child exits with 127; a
successful exec closes the pipe (EOF).
"""

from __future__ import annotations

import _signal
import _socket  # everything must be imported before pivot_root hides the host's stdlib
import fcntl
import os
import stat
import struct

from . import linux as L
from . import mounts, security, userns
from .shim import loads, mark, proc_start_time

DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
           ("urandom", 1, 9), ("tty", 5, 0))

TIOCSCTTY = 0x540E
TIOCGPTN = 0x80045430
TIOCSPTLCK = 0x40045431
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class InitError(Exception):
    """A failure with a user-facing message."""


def errmsg(e: BaseException) -> str:
    if isinstance(e, InitError | security.SecurityError | mounts.MountError):
        return str(e)
    if isinstance(e, OSError) and e.strerror:
        msg = e.strerror
        if e.filename is not None:
            msg = f"{e.filename}: {msg}"
        return msg
    return f"{type(e).__name__}: {e}"


NAMESPACES = (L.CLONE_NEWNS | L.CLONE_NEWUTS | L.CLONE_NEWIPC | L.CLONE_NEWNET
              | L.CLONE_NEWPID)
INIT_TARGET = "/sbin/docker-init"


def namespace_flags(cfg: dict) -> int:
    """The clone flags: no new namespace where the container shares the node's or joins
    another container's (--pid/--uts/--ipc host|container:<id>)."""
    flags = NAMESPACES
    if cfg.get("pid_mode"):
        flags &= ~L.CLONE_NEWPID
    if cfg.get("uts_mode"):
        flags &= ~L.CLONE_NEWUTS
    if cfg.get("ipc_mode") == "host" or str(cfg.get("ipc_mode")).startswith("container:"):
        flags &= ~L.CLONE_NEWIPC
    if cfg.get("netns"):  # "host", or a netns file joined before the clone (_netns_fd)
        flags &= ~L.CLONE_NEWNET
    if userns.wants_userns(cfg):  # userns-remap: the other namespaces are owned by it
        flags |= L.CLONE_NEWUSER
    return flags


def joined(cdir: str, mode, kind: str) -> tuple[int, str] | None:
    """For ``container:<id>``: (pid of that running container, its directory); else None."""
    if not isinstance(mode, str) or not mode.startswith("container:"):
        return None
    other = mode.split(":", 1)[1]
    odir = os.path.join(os.path.dirname(cdir), other)
    try:
        st = loads(_read_file(os.path.join(odir, "state.json")).decode("utf-8", "replace"))
    except (OSError, ValueError):
        st = {}
    pid = st.get("pid") or 0 if isinstance(st, dict) else 0
    if st.get("status") != "running" or not pid or proc_start_time(pid) != st.get("pid_start"):
        raise InitError(f"cannot join the {kind} namespace of container {other}: "
                        f"Container {other} is not running")
    return pid, odir


def _ns_fd(cdir: str, cfg: dict, kind: str) -> int:
    """An fd of the namespace to join for ``kind`` ('pid', 'ipc'), or -1."""
    target = joined(cdir, cfg.get(kind + "_mode"), kind)
    if target is None:
        return -1
    return os.open(f"/proc/{target[0]}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)


def _netns_fd(cfg: dict) -> int:
    """An fd of the netns file PID 1 joins (ContainerSpec.netns, made by the network layer),
    or -1 ("" a new netns, "host" the node's). Joined by the parent before the clone: with a
    user namespace PID 1 could not join a netns owned by the node's user namespace."""
    path = cfg.get("netns") or ""
    if path in ("", "host"):
        return -1
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise InitError(f"cannot join the network namespace {path}: {errmsg(e)}") from None


def _joined_ns_fds(cdir: str, cfg: dict) -> list[tuple[int, int]]:
    """(fd, nstype) of the namespaces the parent enters before cloning PID 1."""
    out = []
    try:
        for fd, nstype in ((_ns_fd(cdir, cfg, "pid"), L.CLONE_NEWPID),
                           (_netns_fd(cfg), L.CLONE_NEWNET)):
            if fd >= 0:
                out.append((fd, nstype))
    except BaseException:
        for fd, _ in out:
            os.close(fd)
        raise
    return out


def spawn(cfg: dict, cdir: str, stdio: tuple[int, int, int], console_sock, err_w: int,
          pid_w: int) -> None:
    """In C1 (forked from a shim that has not imported this module). Never returns."""
    try:
        mark(b"C1: nsinit imported")
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        ensure_shm(cfg, cdir)
        for fd, nstype in _joined_ns_fds(cdir, cfg):  # C2 is created in these namespaces
            L.setns(fd, nstype)
            os.close(fd)
        sync = userns.sync_pair(cfg)
        mark(b"C1: clone C2")
        pid = L.clone(namespace_flags(cfg) | L.CLONE_PARENT)  # PID 1 is the shim's child
        if pid:
            if sync is not None:
                sync[1].close()
                userns.release_child(cfg, pid, sync[0], enter_cgroup)
            os.write(pid_w, b"%d" % pid)
            os._exit(0)
        os.close(pid_w)
        init(cfg, cdir, stdio, console_sock, sync)
    except BaseException as e:  # noqa: B036 - report anything, then die
        try:
            os.write(err_w, errmsg(e).encode("utf-8", "replace")[:4000])
        finally:
            os._exit(127)
    os._exit(127)


def clone_init(cfg: dict, cdir: str, stdio: tuple[int, int, int], console_sock, err_w: int,
               shim_console=None) -> int:
    """In a shim that has this module preloaded: clone the container's PID 1 (C2) in its
    new namespaces as our own child; returns its pid (raises OSError if clone fails).
    ``shim_console``: the shim's end of the console socket pair (closed in C2)."""
    try:
        ensure_shm(cfg, cdir)
        targets = _joined_ns_fds(cdir, cfg)
    except InitError as e:
        raise OSError(3, str(e)) from None
    # only our next child is created in the joined PID/net namespaces: switch back after
    own = []
    try:
        for fd, nstype in targets:
            kind = "pid" if nstype == L.CLONE_NEWPID else "net"
            own.append((os.open(f"/proc/self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC), nstype))
            L.setns(fd, nstype)
    except OSError:
        _leave(own)
        raise
    finally:
        for fd, _ in targets:
            os.close(fd)
    sync = userns.sync_pair(cfg)
    try:
        pid = L.clone(namespace_flags(cfg))
    except OSError:
        pid = -1
        raise
    finally:
        if pid != 0:  # the shim's own later children: back to its own namespaces
            _leave(own)
        if sync is not None and pid != 0:
            sync[1].close()
            if pid < 0:
                sync[0].close()
    if pid:
        if sync is not None:  # PID 1 waits for its id maps, cgroup and layers
            try:
                userns.release_child(cfg, pid, sync[0], enter_cgroup)
            except InitError as e:
                raise OSError(3, str(e)) from None
        return pid
    for fd, _ in own:
        os.close(fd)
    try:
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        if shim_console is not None:
            shim_console.close()
        init(cfg, cdir, stdio, console_sock, sync)
    except BaseException as e:  # noqa: B036 - report anything, then die
        try:
            os.write(err_w, errmsg(e).encode("utf-8", "replace")[:4000])
        finally:
            os._exit(127)
    os._exit(127)


def _leave(own: list[tuple[int, int]]) -> None:
    """Back into the shim's own namespaces (fds from /proc/self/ns), closing them."""
    for fd, nstype in reversed(own):
        try:
            L.setns(fd, nstype)
        finally:
            os.close(fd)


def _walk(root: str, rel: str, make: str | None) -> str:
    """Resolve ``rel`` under ``root`` refusing symlinks in any component.

    ``make``: None (must exist), "dir" or "file" (create the last component if missing).
    """
    parts = [p for p in rel.split("/") if p]
    cur = root
    for i, part in enumerate(parts):
        cur = os.path.join(cur, part)
        last = i == len(parts) - 1
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            if make is None:
                raise
            if last and make == "file":
                os.close(os.open(cur, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644))
            else:
                os.mkdir(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            if last and make == "file":
                os.unlink(cur)  # e.g. /etc/resolv.conf -> ../run/...: replace by a file
                os.close(os.open(cur, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644))
                continue
            raise InitError(f"rootfs: /{'/'.join(parts[:i + 1])} is a symlink, "
                            f"cannot mount on /{rel.strip('/')}")
        if not last and not stat.S_ISDIR(st.st_mode):
            raise InitError(f"rootfs: /{'/'.join(parts[:i + 1])} is not a directory")
    return cur


def setup_rootfs(cfg: dict, cdir: str, userns_fds: list[int] | None = None) -> None:
    """``userns_fds``: with a user namespace, what ``userns.wait_parent`` returned."""
    rootfs = os.path.join(cdir, "rootfs")
    L.mount(None, "/", None, mounts.root_propagation(cfg))  # rslave for slave/shared mounts
    in_userns = userns_fds is not None
    layers = list(reversed(userns.lower_dirs(cfg, userns_fds) if in_userns else cfg["layers"]))
    opts = "lowerdir={},upperdir={},workdir={}".format(
        ":".join(layers), os.path.join(cdir, "upper"), os.path.join(cdir, "work"))
    if len(opts) > 4000:  # mount data is limited to one page: use relative paths
        base = os.path.commonpath(layers + [cdir])
        os.chdir(base)
        opts = "lowerdir={},upperdir={},workdir={}".format(
            ":".join(os.path.relpath(p, base) for p in layers),
            os.path.relpath(os.path.join(cdir, "upper"), base),
            os.path.relpath(os.path.join(cdir, "work"), base))
    mark(b"C2: mount overlay")
    if in_userns:
        opts += userns.OVERLAY_OPTION
    L.mount("overlay", rootfs, "overlay", 0, opts)
    mark(b"C2: mount proc sys dev")

    nsx = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC
    L.mount("proc", _walk(rootfs, "proc", "dir"), "proc", nsx)
    # --privileged: a writable /sys (read-only and masked paths: security.harden_rootfs)
    sysfs = _walk(rootfs, "sys", "dir")
    if in_userns and cfg.get("netns"):
        # the netns belongs to the node's user namespace, so the kernel refuses a sysfs
        # mount from ours: bind the node's /sys read-only instead, as runc does
        L.mount("/sys", sysfs, None, L.MS_BIND | L.MS_REC)
        L.mount(None, sysfs, None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | nsx)
    else:
        L.mount("sysfs", sysfs, "sysfs", nsx if cfg.get("privileged") else nsx | L.MS_RDONLY)
    dev = _walk(rootfs, "dev", "dir")
    L.mount("tmpfs", dev, "tmpfs", L.MS_NOSUID | L.MS_STRICTATIME, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        path = os.path.join(dev, name)
        if in_userns:  # mknod is refused in a user namespace
            userns.bind_node_device(path, "/dev/" + name)
            continue
        L.mknod(path, stat.S_IFCHR | 0o666, major, minor)
        os.chmod(path, 0o666)
    security.make_devices(cfg, rootfs, dev)  # --device, --privileged: the node's
    os.mkdir(os.path.join(dev, "pts"), 0o755)
    L.mount("devpts", os.path.join(dev, "pts"), "devpts", L.MS_NOSUID | L.MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    mount_shm(cfg, cdir, os.path.join(dev, "shm"))
    os.mkdir(os.path.join(dev, "mqueue"), 0o755)
    L.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", nsx)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                         ("core", "/proc/kcore")):
        os.symlink(target, os.path.join(dev, name))

    mark(b"C2: user mounts")
    mounts.mount_all(cfg, rootfs)

    mark(b"C2: etc binds")
    for name in ("hostname", "hosts", "resolv.conf"):
        target = _walk(rootfs, "etc/" + name, "file")
        L.mount(os.path.join(cdir, name), target, None, L.MS_BIND)

    if cfg.get("init_path"):  # --init: the node's static tini, read-only
        target = _init_target(rootfs)
        L.mount(cfg["init_path"], target, None, L.MS_BIND)
        L.mount(cfg["init_path"], target, None,
                L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | L.MS_NOSUID | L.MS_NODEV)

    mark(b"C2: pivot_root")
    os.chdir(rootfs)
    L.pivot_root(".", ".")
    L.umount2(".", L.MNT_DETACH)
    os.chdir("/")
    mark(b"C2: sysctls, ro proc, masks")
    security.harden_rootfs(cfg)


def _init_target(rootfs: str) -> str:
    """The file to bind the init on: /sbin/docker-init in the rootfs, following a symlinked
    /sbin (usrmerge images: /sbin -> usr/sbin) inside the rootfs only."""
    sbin = "sbin"
    for _ in range(8):
        path = os.path.join(rootfs, sbin)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            break
        if not stat.S_ISLNK(st.st_mode):
            break
        link = os.readlink(path)
        sbin = os.path.normpath(os.path.join("/", os.path.dirname(sbin), link)).lstrip("/")
        if sbin.startswith(".."):
            raise InitError("rootfs: /sbin points outside the root filesystem")
    return _walk(rootfs, sbin + "/docker-init", "file")


def shm_opts(cfg: dict) -> str:
    """The /dev/shm tmpfs options: --shm-size (bytes; Docker's default 64 MiB)."""
    return f"mode=1777,size={int(cfg.get('shm_size') or 64 << 20) // 1024}k"


def ensure_shm(cfg: dict, cdir: str) -> None:
    """--ipc shareable: the container's /dev/shm is a tmpfs on the node at <cdir>/shm, so
    that containers joining its IPC namespace can bind-mount it too (like Docker's
    containers/<id>/mounts/shm). Called in the node's mount namespace, before the clone;
    unmounted when the container is removed."""
    if cfg.get("ipc_mode") != "shareable":
        return
    path = os.path.join(cdir, "shm")
    if os.path.ismount(path):
        return
    try:
        os.mkdir(path, 0o1777)
    except FileExistsError:
        pass
    L.mount("shm", path, "tmpfs", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC, shm_opts(cfg))
    L.mount(None, path, None, L.MS_PRIVATE)


def mount_shm(cfg: dict, cdir: str, shm: str) -> None:
    """/dev/shm as --ipc asks: a private tmpfs, the node's, the shareable one of this
    container or the one of the container whose IPC namespace it joins; none for none."""
    os.mkdir(shm, 0o1777)
    mode = cfg.get("ipc_mode") or ""
    if mode == "host":
        L.mount("/dev/shm", shm, None, L.MS_BIND | L.MS_REC)
    elif mode == "shareable":
        L.mount(os.path.join(cdir, "shm"), shm, None, L.MS_BIND)
    elif mode.startswith("container:"):
        _, odir = joined(cdir, mode, "ipc")
        src = os.path.join(odir, "shm")
        if not os.path.ismount(src):
            raise InitError(f"container {mode.split(':', 1)[1]}: non-shareable IPC (hint: use "
                            "IpcMode:shareable for the donor container)")
        L.mount(src, shm, None, L.MS_BIND)
    elif mode != "none":
        L.mount("shm", shm, "tmpfs", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC, shm_opts(cfg))


def loopback_up() -> None:
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        res = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH22x", b"lo", 0))
        flags = struct.unpack_from("16sH", res)[1] | IFF_UP
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags))
    finally:
        s.close()


def _read_file(path: str) -> bytes:
    """Plain os.read: cheaper than open() (no io stack) on this hot path."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            data = os.read(fd, 65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)
    finally:
        os.close(fd)


def _read_db(path: str) -> list[list[str]]:
    try:
        text = _read_file(path).decode("utf-8", "replace")
    except OSError:
        return []
    return [line.split(":") for line in text.split("\n")
            if line.strip() and not line.startswith("#")]


def resolve_user(user: str, group_add=()) -> tuple[int, int, list[int], str]:
    """-> (uid, gid, supplementary gids, home), looked up in the container's files.
    ``group_add``: more supplementary groups (--group-add), by name or gid."""
    name, _, group = user.partition(":")
    passwd = [e for e in _read_db("/etc/passwd") if len(e) >= 7]
    groups = [e for e in _read_db("/etc/group") if len(e) >= 3]
    if not name:
        name = "0"
    entry = None
    if name.isdigit():
        uid = int(name)
        entry = next((e for e in passwd if e[2] == name), None)
    else:
        entry = next((e for e in passwd if e[0] == name), None)
        if entry is None:
            raise InitError(f"unable to find user {name}: no matching entries in passwd file")
        uid = int(entry[2])
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    home = entry[5] if entry is not None and entry[5] else "/"
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in groups if e[0] == group), None)
            if g is None:
                raise InitError(f"unable to find group {group}: no matching entries in group file")
            gid = int(g[2])
    extra = []
    if entry is not None:
        for g in groups:
            if entry[0] in g[3].split(",") if len(g) > 3 else False:
                if g[2].isdigit() and int(g[2]) != gid:
                    extra.append(int(g[2]))
    for name in group_add:
        if name.isdigit():
            num = int(name)
        else:
            g = next((e for e in groups if e[0] == name), None)
            if g is None or not g[2].isdigit():
                raise InitError(f"Unable to find group {name}: no matching entries in group file")
            num = int(g[2])
        if num != gid and num not in extra:
            extra.append(num)
    return uid, gid, [gid] + extra, home


def find_executable(name: str, env: list[str]) -> str:
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as e:
            raise InitError(f'exec: "{name}": stat {name}: {e.strerror.lower()}') from None
        if stat.S_ISDIR(st.st_mode):
            raise InitError(f'exec: "{name}": is a directory')
        return name
    path = next((e[5:] for e in env if e.startswith("PATH=")), "")
    for d in path.split(":"):
        candidate = os.path.join(d or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return candidate
    raise InitError(f'exec: "{name}": executable file not found in $PATH')


def open_pty(uid: int, console_sock) -> int:
    """Allocate a PTY from the container's own devpts; send the master to the shim
    (SCM_RIGHTS over ``console_sock``); return the slave, our controlling terminal."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    num = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
    slave = os.open(f"/dev/pts/{num}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    os.fchown(slave, uid, 5)
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    console_sock.sendmsg([b"m"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                   master.to_bytes(4, "little"))])
    console_sock.close()
    os.close(master)
    return slave


def enter_cgroup(cfg: dict, pid: int = 0) -> None:
    """Join the container's cgroup (made by Runtime.start; re-made if it is gone) while the
    host's cgroupfs is still visible: PID 1 runs in it from its first instruction. ``pid``:
    PID 1 moved in by its parent (with a user namespace PID 1 has no right to)."""
    if not cfg.get("cgroup_parent"):
        return
    from . import cgroups

    try:
        cgroups.open_manager(cfg["cgroup_parent"], cfg["id"]).enter(pid)
    except OSError as e:
        raise InitError(f"cannot enter the container's cgroup: {errmsg(e)}") from None


def init(cfg: dict, cdir: str, stdio: tuple[int, int, int], console_sock, sync=None) -> None:
    """In C2 (PID 1 of the new PID namespace). Never returns.

    ``console_sock``: None, or (tty) the socket to pass the PTY master to the shim.
    ``sync``: with a user namespace, the socket pair to wait on for the parent's set-up.
    """
    os.setsid()
    mark(b"C2: forked")
    userns_fds = None
    if sync is None:
        enter_cgroup(cfg)
    else:
        sync[0].close()
        userns_fds = userns.wait_parent(sync[1], cfg)
    ipc_ns = _ns_fd(cdir, cfg, "ipc")  # --ipc container:<id>
    if ipc_ns >= 0:
        L.setns(ipc_ns, L.CLONE_NEWIPC)
        os.close(ipc_ns)
    process = security.Process(cfg, cdir)  # its seccomp filter: read before pivot_root
    setup_rootfs(cfg, cdir, userns_fds)
    mark(b"C2: hostname, lo, user, caps")
    if not cfg.get("uts_mode"):  # --uts host: the node's hostname, never changed
        L.sethostname(cfg["hostname"])
    if not cfg.get("netns"):  # a joined netns has lo up already (network/netns.py)
        loopback_up()

    env = list(cfg["env"])
    uid, gid, gids, home = resolve_user(cfg.get("user") or "", cfg.get("group_add") or ())
    if console_sock is not None:
        slave = open_pty(uid, console_sock)
        stdio = (slave, slave, slave)
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + home)
    workdir = cfg.get("working_dir") or "/"
    if not os.path.isdir(workdir):
        os.makedirs(workdir, 0o755, exist_ok=True)
        if uid:
            os.chown(workdir, uid, gid)
    process.before_user_switch()
    os.setgroups(gids)
    os.setgid(gid)
    os.setuid(uid)
    try:
        os.chdir(workdir)
    except OSError as e:
        raise InitError(f'chdir to cwd ("{workdir}") set in config.json failed: '
                        f'{e.strerror.lower()}') from None
    args = cfg["args"]
    if cfg.get("init_path"):  # the init runs the command (and reaps orphans)
        args = [INIT_TARGET, "--", *args]
    exe = find_executable(args[0], env)

    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGCHLD, _signal.SIGINT,
                _signal.SIGTERM):
        _signal.signal(sig, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    os.umask(0o022)
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    process.apply(uid)
    mark(b"C2: execve")
    try:
        os.execve(exe, args, dict(e.split("=", 1) for e in env))
    except OSError as e:
        raise InitError(f'exec: "{args[0]}": {e.strerror.lower()}') from None
