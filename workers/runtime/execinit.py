"""The exec'd process's side of ``docker exec``: runs only in children forked by the shim.

Who runs an exec'd process? The container's shim. It already owns the container (its
PID 1 is the shim's child, so the pid it joins cannot be recycled under it), holds the
container's stdio and serves a control socket; an exec is one more process with its own
pipes or PTY on that same event loop, and the shim reaps it and knows its exit status
first hand. A per-exec helper process would have to relay I/O and the exit status a
second time and could outlive the container unnoticed. The shim stays small: it only
forks; ctypes and this module are imported in the forked child.

``spawn()`` runs in E1, forked from the shim. E1 joins the container's cgroups (by writing
itself to each ``cgroup.procs`` of the container's PID 1, e.g. the per-container cgroup
under the ``dockyard`` parent, when there is one), then every namespace of the container
(net first, then user, mount last: setns(mnt) also sets our root and cwd to the
container's root, which is the container's pivoted root). Joining a PID namespace takes
effect for children only, so E1 clones E2 with ``CLONE_PARENT``: E2 lives in the
container's PID namespace and is the shim's own child (the shim reaps it and gets its
exit status); E1 writes E2's pid to ``pid_w`` and exits. E2 resolves the user in the
container's /etc/passwd and /etc/group, opens a PTY from the container's devpts (tty),
gets the container's capabilities, no_new_privs and seccomp filter (``security.Process``;
all capabilities for ``docker exec --privileged``), changes to the working directory and
execs the command.

Failures before exec are written to the CLOEXEC error pipe as ``<exit code> <message>``,
with Docker's words: 127 for a missing executable, 126 otherwise (permission denied,
unknown user, bad working directory). A successful exec closes the pipe (EOF).
"""

from __future__ import annotations

import _signal
import fcntl  # everything must be imported before setns(mnt) hides the host's stdlib
import os
import stat

from . import linux as L
from . import nsinit, security

# order of setns: the network namespace first (the node makes it, so the node's user
# namespace owns it: once in the container's user namespace we could not join it), then the
# user namespace (it grants the rights for the rest), the mount namespace last (it changes
# our root, and /proc/<pid> must stay reachable before)
NS_ORDER = (("net", L.CLONE_NEWNET), ("user", L.CLONE_NEWUSER), ("cgroup", L.CLONE_NEWCGROUP),
            ("ipc", L.CLONE_NEWIPC), ("uts", L.CLONE_NEWUTS), ("pid", L.CLONE_NEWPID),
            ("mnt", L.CLONE_NEWNS))
TIOCSWINSZ = 0x5414
OCI_PREFIX = "OCI runtime exec failed: exec failed: unable to start container process: "


class ExecError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _oci(message: str) -> str:
    return OCI_PREFIX + message + ": unknown"


def _same_ns(pid: int, name: str) -> bool:
    try:
        a = os.stat(f"/proc/self/ns/{name}")
        b = os.stat(f"/proc/{pid}/ns/{name}")
    except OSError:
        return True  # the kernel has no such namespace type
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _cgroup_mounts() -> tuple[str, dict]:
    """-> (a cgroup2 mount point or "", {v1 controller or name=X: mount point})."""
    v2, v1 = "", {}
    for line in nsinit._read_file("/proc/self/mountinfo").decode("utf-8", "replace").split("\n"):
        left, _, right = line.partition(" - ")
        parts = right.split()
        if len(parts) < 3:
            continue
        point = L._unescape(left.split()[4])
        if parts[0] == "cgroup2" and not v2:
            v2 = point
        elif parts[0] == "cgroup":
            for opt in parts[2].split(","):
                v1.setdefault(opt, point)
    return v2, v1


def join_cgroups(pid: int) -> None:
    """Put ourselves in every cgroup the container's PID 1 is in (v2 and v1 hierarchies,
    e.g. its own cgroup under the ``dockyard`` parent); a no-op for a hierarchy where we
    already share its cgroup or that is not mounted here."""
    mine = {}
    for line in nsinit._read_file("/proc/self/cgroup").decode().split("\n"):
        if line:
            hid, ctrl, path = line.split(":", 2)
            mine[(hid, ctrl)] = path
    v2, v1 = _cgroup_mounts()
    for line in nsinit._read_file(f"/proc/{pid}/cgroup").decode().split("\n"):
        if not line:
            continue
        hid, ctrl, path = line.split(":", 2)
        if mine.get((hid, ctrl)) == path:
            continue
        if hid == "0":
            base = v2
        else:
            base = next((v1[c] for c in ctrl.split(",") if c in v1), "")
        if not base:
            continue
        try:
            fd = os.open(base + path.rstrip("/") + "/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def spawn(pid: int, spec: dict, cfg: dict, stdio: tuple[int, int, int], console_sock,
          err_w: int, pid_w: int) -> None:
    """In E1 (forked from the shim). ``pid``: the container's PID 1; ``spec``: the exec
    (args, env, user, cwd, tty, rows, cols); ``cfg``: the container's config.json. Never
    returns."""
    try:
        _signal.set_wakeup_fd(-1)
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        # the shim's cwd is the container's directory: its seccomp filter is read from there
        process = security.Process(cfg, ".", privileged=bool(spec.get("privileged")))
        join_cgroups(pid)
        fds = []
        for name, flag in NS_ORDER:
            if not _same_ns(pid, name):
                fds.append((os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC),
                            flag))
        for fd, flag in fds:
            L.setns(fd, flag)
            os.close(fd)
        child = L.clone(L.CLONE_PARENT)  # E2: in the container's PID namespace, the shim's child
        if child:
            os.write(pid_w, b"%d" % child)
            os._exit(0)
        os.close(pid_w)
        run(spec, cfg, stdio, console_sock, process)
    except ExecError as e:
        _report(err_w, e.code, e.message)
    except (nsinit.InitError, security.SecurityError) as e:
        _report(err_w, 126, _oci(str(e)))
    except BaseException as e:  # noqa: B036 - report anything, then die
        _report(err_w, 126, _oci(nsinit.errmsg(e)))
    os._exit(127)


def _report(err_w: int, code: int, message: str) -> None:
    try:
        os.write(err_w, f"{code} {message}".encode("utf-8", "replace")[:4000])
    finally:
        os._exit(code)


def merge(base: list[str], extra: list[str]) -> list[str]:
    """Docker's ReplaceOrAppendEnvValues: ``extra`` overrides ``base`` by key."""
    out = list(base)
    index = {e.split("=", 1)[0]: i for i, e in enumerate(out)}
    for e in extra:
        key = e.split("=", 1)[0]
        if key in index:
            out[index[key]] = e
        else:
            index[key] = len(out)
            out.append(e)
    return out


def run(spec: dict, cfg: dict, stdio, console_sock, process: security.Process) -> None:
    """In E2 (inside every namespace of the container). Never returns."""
    os.setsid()
    try:
        uid, gid, gids, home = nsinit.resolve_user(spec.get("user") or cfg.get("user") or "")
    except nsinit.InitError as e:
        raise ExecError(126, str(e)) from None
    if console_sock is not None:
        slave = nsinit.open_pty(uid, console_sock)
        rows, cols = int(spec.get("rows") or 0), int(spec.get("cols") or 0)
        if rows and cols:
            fcntl.ioctl(slave, TIOCSWINSZ,
                        rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4))
        stdio = (slave, slave, slave)
    env = list(cfg.get("env") or [])
    if spec.get("tty"):
        env = merge(env, ["TERM=xterm"])
    env = merge(env, list(spec.get("env") or []))
    if not any(e.startswith("HOME=") for e in env):
        env.append("HOME=" + home)
    process.before_user_switch()
    os.setgroups(gids)
    os.setgid(gid)
    os.setuid(uid)
    workdir = spec.get("cwd") or cfg.get("working_dir") or "/"
    try:
        os.chdir(workdir)
    except OSError as e:
        raise ExecError(126, _oci(f'chdir to cwd ("{workdir}") set in config.json failed: '
                                  f'{(e.strerror or str(e)).lower()}')) from None
    args = spec["args"]
    try:
        exe = nsinit.find_executable(args[0], env)
    except nsinit.InitError as e:
        code = 127 if "not found" in str(e) or "no such file" in str(e) else 126
        raise ExecError(code, _oci(str(e))) from None
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGCHLD, _signal.SIGINT,
                _signal.SIGTERM, _signal.SIGQUIT, _signal.SIGHUP):
        _signal.signal(sig, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    os.umask(0o022)
    for target, fd in enumerate(stdio):
        os.dup2(fd, target)
    process.apply(uid)
    try:
        os.execve(exe, args, dict(e.split("=", 1) for e in env if "=" in e))
    except OSError as e:
        st = None
        try:
            st = os.stat(exe)
        except OSError:
            pass
        code = 126 if st is not None and stat.S_ISREG(st.st_mode) else 127
        raise ExecError(code, _oci(f'exec: "{args[0]}": {(e.strerror or str(e)).lower()}')) \
            from None
