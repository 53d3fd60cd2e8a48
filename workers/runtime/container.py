"""The container runtime API used by the worker: create/start/state/kill/stop/wait/remove.

Every method is idempotent where that makes sense (a retried job must not create a
second container). The long-lived part of a running container is its shim
(``workers.runtime.shim``), detached from the caller; all state lives in
``<root>/containers/<id>/``.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass

from . import launcher as _launcher
from . import linux, userns
from . import shim as _shim
from . import volumes as _volumes
from .spec import ContainerSpec, SpecError, signal_number, validate

_PKG_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START_TIMEOUT = 10.0
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
_precompiled: set[str] = set()
# Same as ``python -S -m workers.runtime.shim ...`` but without runpy and the importlib
# machinery it pulls in (about 1 MB of RSS for the shim's whole life).
SHIM_BOOT = "import sys;from workers.runtime.shim import main;sys.exit(main(sys.argv[1:]))"
LAUNCHER_BOOT = \
    "import sys;from workers.runtime.launcher import main;sys.exit(main(sys.argv[1:]))"
LAUNCHER_READY_TIMEOUT = 3.0  # a launcher slower than this to fork is bypassed
LAUNCHER_RESPAWN_SECONDS = 2.0
_launcher_spawned: dict[str, float] = {}  # state root -> time of our last launcher spawn


class RuntimeError_(Exception):
    """Base class of runtime errors (named to avoid shadowing the builtin)."""


class StartError(RuntimeError_):
    pass


class NotFound(RuntimeError_):
    pass


class Conflict(RuntimeError_):
    pass


class NotRunning(Conflict):
    pass


@dataclass
class ContainerState:
    id: str
    status: str  # created | running | paused | restarting | exited
    pid: int = 0
    exit_code: int = 0
    started_at: str = ""
    finished_at: str = ""
    shim_pid: int = 0
    error: str = ""
    restart_count: int = 0
    manual_stop: bool = False  # stopped (or killed) via Dockyard since its last start
    oom_killed: bool = False  # the kernel's OOM killer killed a process of its last run

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def alive(self) -> bool:
        """Its shim serves it: running, paused or restarting."""
        return self.status in LIVE_STATES


LIVE_STATES = ("running", "paused", "restarting")


def _proc_start(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def _alive(pid: int, start: int | None) -> bool:
    """pid exists, is not a zombie, and (when known) started at ``start``."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return False
    return start is None or int(fields[19]) == start


class _Trash:
    """Deletes removed containers' directories (renamed to ``containers/.rm-<id>-<pid>``)
    in a background thread: unlinking a container's files costs milliseconds of ext4
    work that ``remove`` need not wait for (like containerd's async snapshot removal).
    Also deletes what a dead process left. ``drain_trash()`` waits for it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.queue: list[str] = []
        self.thread: threading.Thread | None = None
        self.swept: set[str] = set()

    def add(self, path: str, containers: str) -> None:
        with self.lock:
            self.queue.append(path)
            if containers not in self.swept:
                self.swept.add(containers)
                self.queue += self._orphans(containers)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="dockyard-trash",
                                               daemon=True)
                self.thread.start()

    @staticmethod
    def _orphans(containers: str) -> list[str]:
        found = []
        try:
            names = os.listdir(containers)
        except OSError:
            return found
        for name in names:
            if name.startswith(".rm-"):
                pid = name.rsplit("-", 1)[-1]
                if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid), None):
                    found.append(os.path.join(containers, name))
        return found

    def _run(self) -> None:
        while True:
            with self.lock:
                if not self.queue:
                    self.thread = None
                    return
                path = self.queue.pop(0)
            shutil.rmtree(path, ignore_errors=True)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued is deleted (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                t = self.thread
            if t is None:
                return
            t.join(0.05)


_trash = _Trash()
atexit.register(_trash.drain, 10.0)  # a short-lived caller: finish before the interpreter ends


def drain_trash(timeout: float = 30.0) -> None:
    """Wait until the files of the containers removed by this process are deleted."""
    _trash.drain(timeout)


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d}Z"


def _write_atomic(path: str, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# what a start may change as the container's networks change: its addresses, --link
# entries and their environment variables, the embedded resolver (written anew each time)
NAME_FIELDS = ("addresses", "links", "env", "embedded_dns")


def _write_name_files(cdir: str, spec: ContainerSpec) -> None:
    """hostname, hosts and resolv.conf, rewritten in place: a running container's bind
    mounts keep showing them."""
    for name, text in (("hostname", spec.hostname + "\n"), ("hosts", hosts_file(spec)),
                       ("resolv.conf", resolv_conf(spec))):
        path = os.path.join(cdir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(path, 0o644)


def _renamed_only(old_config: str, new_config: str) -> bool:
    """The two configs differ in the container's name (docker rename), in what docker
    update changes (limits, restart policy) or in NAME_FIELDS only."""
    try:
        a, b = json.loads(old_config), json.loads(new_config)
    except ValueError:
        return False
    for changeable in ("name", "resources", "restart_policy", "restart_max_retries",
                       *NAME_FIELDS):
        a.pop(changeable, None)
        b.pop(changeable, None)
    return a == b


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def hosts_file(spec: ContainerSpec, host_file: str = "/etc/hosts") -> str:
    """Docker's /etc/hosts: the defaults, --add-host entries, --link entries ("<ip>\t<alias>
    <hostname> [<name>]") and the container's own "<ip>\t<hostname>" per address ("<fqdn>
    <short>" for an FQDN; 127.0.1.1 without an address). With --network host and no
    --add-host: the host's file."""
    if spec.netns == "host" and not spec.extra_hosts:
        return _read_text(host_file)
    lines = ["127.0.0.1\tlocalhost",
             "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet",
             "ff00::0\tip6-mcastprefix",
             "ff02::1\tip6-allnodes",
             "ff02::2\tip6-allrouters"]
    for entry in spec.extra_hosts:
        host, _, addr = entry.partition(":")
        lines.append(f"{addr}\t{host}")
    for link in spec.links:
        lines.append(f"{link['ip']}\t{' '.join(link['names'])}")
    own = spec.hostname
    if "." in own:  # an FQDN: the short name too
        own += " " + own.split(".", 1)[0]
    for addr in spec.addresses or ["127.0.1.1"]:
        lines.append(f"{addr}\t{own}")
    return "\n".join(lines) + "\n"


def resolv_conf(spec: ContainerSpec, host_file: str = "/etc/resolv.conf") -> str:
    """Docker's rules. On a user network: the embedded resolver 127.0.0.11 with the search
    and options (plus ndots:0 unless set), and the servers it forwards to in a comment as
    Docker writes it. Elsewhere: the host's resolv.conf without loopback nameservers (they
    are unreachable from the container's network namespace); defaults when none is left.
    --dns/--dns-search/--dns-option replace the respective lines. With --network host and
    none of them: the host's file as it is."""
    overridden = spec.dns or spec.dns_search or spec.dns_options
    if spec.netns == "host" and not overridden:
        return _read_text(host_file)
    nameservers, search, options, other = [], [], [], []
    for line in _read_text(host_file).splitlines():
        words = line.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            nameservers.append(words[1])
        elif words[0] in ("search", "domain"):
            search = words[1:]
        elif words[0] == "options":
            options += words[1:]
        else:
            other.append(line)
    if spec.dns_search:
        search = [] if spec.dns_search == ["."] else list(spec.dns_search)
    if spec.dns_options:
        options = list(spec.dns_options)
    if spec.embedded_dns:
        from .network.dns import EMBEDDED_DNS

        forwarders = list(spec.dns) or [f"host({ns})" for ns in nameservers]
        if any(o.startswith("ndots:") for o in options):
            ndots_from = "config" if spec.dns_options else "host"
        else:
            ndots_from = "internal"  # names in the view win over the search domains
            options.append("ndots:0")
        overrides = [what for what, value in (("nameservers", spec.dns), ("search",
                     spec.dns_search), ("options", spec.dns_options)) if value]
        comment = ["", f"# Based on host file: '{host_file}' (internal resolver)",
                   f"# ExtServers: [{' '.join(forwarders)}]",
                   f"# Overrides: [{' '.join(overrides)}]",
                   f"# Option ndots from: {ndots_from}"]
        nameservers, other = [EMBEDDED_DNS], other + comment
    else:
        nameservers = list(spec.dns) or [
            ns for ns in nameservers if not (ns.startswith("127.") or ns == "::1")
        ] or list(DEFAULT_NAMESERVERS)
    out = [f"nameserver {ns}" for ns in nameservers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out + other) + "\n"


def _detached_exec(argv: list[str], env: dict, stdout_fd: int, stderr_fd: int,
                   status_fd: int = -1, cwd: str = "/") -> None:
    """Run ``argv`` in a new session, reparented away from us (double fork): /dev/null
    on stdin, ``stdout_fd``/``stderr_fd`` on 1/2 and ``status_fd`` (if any) on 3."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setsid()
            if os.fork():
                os._exit(0)
            null_fd = os.open("/dev/null", os.O_RDWR)
            os.dup2(null_fd, 0)
            os.dup2(stdout_fd, 1)
            os.dup2(stderr_fd, 2)
            if status_fd >= 0:
                os.dup2(status_fd, 3)
            os.closerange(3 if status_fd < 0 else 4, 65536)
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    os.waitpid(pid, 0)


def _shim_env() -> dict:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "PYTHONPATH": _PKG_PARENT, "LANG": "C.UTF-8"}
    return env


def _recv_line(s: socket.socket) -> str:
    """One line from ``s`` (its timeout applies to each recv); "" on EOF."""
    buf = b""
    while b"\n" not in buf:
        data = s.recv(4096)
        if not data:
            return ""
        buf += data
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def launcher_pid(root: str) -> int:
    """Pid of the shim launcher serving state root ``root``, or 0."""
    root = os.path.abspath(root)
    try:
        with open(os.path.join(root, _launcher.LOCK), "rb") as f:
            pid = int(f.read().strip() or 0)
        if pid <= 0 or not _alive(pid, None):
            return 0
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")
    except (OSError, ValueError):
        return 0
    if b"workers.runtime.launcher" not in b" ".join(cmd) or os.fsencode(root) not in cmd:
        return 0  # the pid is not (any more) this root's launcher
    return pid


def stop_launcher(root: str, timeout: float = 5.0) -> bool:
    """Stop the shim launcher of state root ``root`` (its shims keep running). True if
    none runs any more."""
    pid = launcher_pid(root)
    if not pid:
        return True
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return True
    try:
        if launcher_pid(root) != pid:
            return True
        os.kill(pid, signal.SIGTERM)
        return bool(select.select([pidfd], [], [], timeout)[0])
    except OSError:
        return True
    finally:
        os.close(pidfd)


class Runtime:
    def __init__(self, root: str, node: str = "local",
                 redis_url: str = "redis://127.0.0.1:6379/0", python: str = sys.executable,
                 launcher: bool = True, cgroup_parent: str | None = None,
                 userns_remap: str = ""):
        """``launcher``: start shims through the state root's shim launcher (spawned on
        demand, see ``workers.runtime.launcher``); False: always spawn them directly.
        ``userns_remap``: the node's user namespace remap (``userns.parse_remap``)."""
        self.root = os.path.abspath(root)
        if any(c in self.root for c in ",:\n"):
            raise ValueError(f"state root {self.root!r} must not contain ',', ':' or newlines")
        self.node = node
        self.redis_url = redis_url
        self.python = python
        self.launcher = launcher
        # the parent cgroup of this node's containers (cgroups.parent_name()); None: none
        # (no pause, no limits)
        self.cgroup_parent = cgroup_parent
        self.userns_remap = userns.parse_remap(userns_remap)
        self.containers = os.path.join(self.root, "containers")
        os.makedirs(self.containers, mode=0o711, exist_ok=True)

    # -- paths -------------------------------------------------------------------------
    def _dir(self, cid: str) -> str:
        if not isinstance(cid, str) or len(cid) != 64 or any(
                c not in "0123456789abcdef" for c in cid):
            raise NotFound(f"No such container: {cid}")
        return os.path.join(self.containers, cid)

    def _existing_dir(self, cid: str) -> str:
        d = self._dir(cid)
        if not os.path.isfile(os.path.join(d, "config.json")):
            raise NotFound(f"No such container: {cid}")
        return d

    def logs_path(self, cid: str) -> str:
        return os.path.join(self._dir(cid), "container.log")

    def spec(self, cid: str) -> ContainerSpec:
        with open(os.path.join(self._existing_dir(cid), "config.json"), encoding="utf-8") as f:
            return ContainerSpec.from_json(f.read())

    def list_ids(self) -> list[str]:
        out = []
        for name in sorted(os.listdir(self.containers)):
            if len(name) == 64 and os.path.isfile(
                    os.path.join(self.containers, name, "config.json")):
                out.append(name)
        return out

    # -- create ------------------------------------------------------------------------
    def create(self, spec: ContainerSpec) -> str:
        if self.cgroup_parent and not spec.cgroup_parent:
            spec.cgroup_parent = self.cgroup_parent
        if self.userns_remap and not spec.userns_mode and not spec.uid_map:
            spec.uid_map = userns.id_map(self.userns_remap)
            spec.gid_map = userns.id_map(self.userns_remap)
        validate(spec)
        config = spec.to_json()
        final = self._dir(spec.id)
        if os.path.exists(final):
            try:
                with open(os.path.join(final, "config.json"), encoding="utf-8") as f:
                    existing = f.read()
            except OSError:
                existing = None
            if existing == config:
                return final
            if existing is not None and _renamed_only(existing, config):
                _write_atomic(os.path.join(final, "config.json"), config)  # docker rename
                _write_name_files(final, spec)
                return final
            raise Conflict(f"container {spec.id} already exists with another config")
        work = tempfile.mkdtemp(dir=self.containers, prefix=".new-")
        try:
            os.chmod(work, 0o711)
            for sub in ("upper", "work", "rootfs"):
                os.mkdir(os.path.join(work, sub), 0o755)
            _write_name_files(work, spec)
            with open(os.path.join(work, "container.log"), "w"):
                pass
            os.chmod(os.path.join(work, "container.log"), 0o640)
            with open(os.path.join(work, "config.json"), "w", encoding="utf-8") as f:
                f.write(config)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.rename(work, final)
            except OSError:
                if os.path.isdir(final):  # created concurrently: same config or conflict
                    shutil.rmtree(work, ignore_errors=True)
                    work = None
                    return self.create(spec)
                raise
            work = None
        finally:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)
        return final

    # -- state -------------------------------------------------------------------------
    def _read_state(self, d: str) -> dict:
        try:
            with open(os.path.join(d, "state.json"), encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def state(self, cid: str) -> ContainerState:
        d = self._existing_dir(cid)
        raw = self._read_state(d)
        status = raw.get("status") or "created"
        if status in LIVE_STATES:
            shim_ok = _alive(raw.get("shim_pid") or 0, raw.get("shim_start"))
            proc_ok = _alive(raw.get("pid") or 0, raw.get("pid_start"))
            if not shim_ok and not proc_ok:
                raw2 = self._read_state(d)  # the shim may have just finished
                if raw2.get("status") in LIVE_STATES:
                    raw2.update(status="exited", exit_code=255, finished_at=_now(),
                                error="container shim disappeared")
                    _write_atomic(os.path.join(d, "state.json"), json.dumps(raw2) + "\n")
                raw = raw2
                status = raw.get("status") or "created"
        return ContainerState(
            id=cid, status=status,
            pid=int(raw.get("pid") or 0) if status in ("running", "paused") else 0,
            exit_code=int(raw.get("exit_code") or 0), started_at=raw.get("started_at") or "",
            finished_at=raw.get("finished_at") or "", shim_pid=int(raw.get("shim_pid") or 0),
            error=raw.get("error") or "", restart_count=int(raw.get("restart_count") or 0),
            manual_stop=bool(raw.get("manual_stop")), oom_killed=bool(raw.get("oom_killed")))

    def _shim_alive(self, d: str) -> bool:
        raw = self._read_state(d)
        return _alive(raw.get("shim_pid") or 0, raw.get("shim_start"))

    # -- start -------------------------------------------------------------------------
    def start(self, cid: str) -> int:
        d = self._existing_dir(cid)
        lock = os.open(os.path.join(d, "config.json"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two concurrent starts: one shim
            return self._start_locked(cid, d)
        finally:
            os.close(lock)

    def _start_locked(self, cid: str, d: str) -> int:
        _shim.open_trace(os.environ.get("DOCKYARD_SHIM_TRACE"))  # benchmarks only
        _shim.mark(b"> start: locked")
        st = self.state(cid)
        if st.alive:
            return st.pid
        spec = self.spec(cid)
        validate(spec)  # layers may have disappeared since create
        try:  # the volumes' driver mounts (tmpfs, a host directory) on the node
            _volumes.activate_all(self.root, spec.mounts)
        except (OSError, ValueError) as e:
            raise StartError(f"error while mounting volume: {e}") from None
        cg = self.cgroup(cid, spec)
        if cg is not None:  # made before PID 1 runs (its init enters it before exec)
            cg.create()
            if cg.frozen():  # left frozen by a container that died paused
                cg.thaw()
            self._apply_resources(cg, spec.resources)  # --memory, --cpus... (cgroups/)
            self._apply_devices(cg, spec)  # --device, --privileged (cgroups/devices.py)
        if os.path.exists(os.path.join(d, "state.json")):
            # restart of an exited container: fresh overlay work dir, keep upper
            shutil.rmtree(os.path.join(d, "work"), ignore_errors=True)
            os.mkdir(os.path.join(d, "work"), 0o755)
        userns.prepare_container(self.root, d, spec)
        self._write_seccomp(spec, d)  # the compiled profile its init loads (seccomp.py)
        self._precompile()
        _shim.mark(b"> start: state, spec checked")
        line = self._start_via_launcher(d) if self.launcher else None
        if line is None:
            line = self._spawn_shim(d)
        if line.startswith("ok "):
            _, _shim_pid, cpid = line.split()
            return int(cpid)
        if line.startswith("error "):
            _, shim_pid, msg = line.split(" ", 2)
            self._wait_gone(int(shim_pid), 5.0)
            raise StartError(msg)
        raise StartError(f"container shim failed to start: {line or self._shim_log_tail(d)}")

    @staticmethod
    def _apply_resources(cg, resources: dict) -> None:
        from .cgroups import CgroupError
        from .cgroups.config import Resources

        try:
            cg.apply(Resources.from_dict(resources))
        except (CgroupError, ValueError) as e:
            raise StartError(f"cgroup limits: {e}") from None

    def update(self, cid: str, resources: dict) -> None:
        """``docker update``: new limits (``ContainerSpec.resources``) in config.json, for
        the next start, and in the cgroup of a running container at once."""
        d = self._existing_dir(cid)
        lock = os.open(os.path.join(d, "config.json"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # not while a start reads the config
            spec = self.spec(cid)
            spec.resources = dict(resources)
            validate(spec)
            cg = self.cgroup(cid, spec)
            if cg is not None and self.state(cid).alive:
                try:
                    self._apply_resources(cg, spec.resources)
                except StartError as e:
                    raise RuntimeError_(str(e).replace("cgroup limits: ", "", 1)) from None
            _write_atomic(os.path.join(d, "config.json"), spec.to_json())
        finally:
            os.close(lock)

    @staticmethod
    def _apply_devices(cg, spec: ContainerSpec) -> None:
        from .cgroups import devices

        try:
            devices.apply(cg, asdict(spec))
        except devices.DeviceError as e:
            raise StartError(str(e)) from None
        except OSError as e:
            raise StartError(f"devices cgroup: {e.strerror or e}") from None

    def _write_seccomp(self, spec: ContainerSpec, d: str) -> None:
        from . import seccomp

        try:
            seccomp.write_filter(asdict(spec), d, self.root)
        except (seccomp.ProfileError, OSError) as e:
            raise StartError(f"seccomp: {e}") from None

    def _spawn_shim(self, d: str) -> str:
        """Spawn the shim as a fresh interpreter; returns its status line."""
        argv = [self.python, "-S", "-c", SHIM_BOOT, d, self.redis_url, self.node,
                "--status-fd", "3"]
        env = _shim_env()
        if os.environ.get("DOCKYARD_SHIM_TRACE"):
            env["DOCKYARD_SHIM_TRACE"] = os.environ["DOCKYARD_SHIM_TRACE"]
        r, w = os.pipe()
        try:
            log_fd = os.open(os.path.join(d, "shim.log"),
                             os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
            try:
                _detached_exec(argv, env, log_fd, log_fd, status_fd=w)
            finally:
                os.close(w)
                os.close(log_fd)
            return self._read_status(r, START_TIMEOUT)
        finally:
            os.close(r)

    def _start_via_launcher(self, d: str) -> str | None:
        """Have the state root's launcher fork the shim; returns the shim's status line,
        or None when no launcher took the request (then no shim was started: the caller
        spawns one itself). A missing, dead or outdated launcher is respawned."""
        fields = ["start", _launcher.code_token(self.python), d, self.redis_url, self.node,
                  os.environ.get("DOCKYARD_SHIM_TRACE", "")]
        if any("\0" in f or "\n" in f for f in fields):
            return None
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(LAUNCHER_READY_TIMEOUT)
            try:
                # sun_path is limited to 107 bytes: connect through an O_PATH fd
                path_fd = os.open(os.path.join(self.root, _launcher.SOCK),
                                  os.O_PATH | os.O_CLOEXEC)
                try:
                    s.connect(f"/proc/self/fd/{path_fd}")
                finally:
                    os.close(path_fd)
            except OSError:  # none, or a stale socket (ECONNREFUSED)
                self._spawn_launcher()
                return None
            _shim.mark(b"> start: launcher connected")
            try:
                s.sendall(("\0".join(fields) + "\n").encode("utf-8", "surrogateescape"))
                reply = _recv_line(s)
            except TimeoutError:  # wedged: bypass it, and replace it for the next start
                pid = launcher_pid(self.root)
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)  # its shims keep running
                    except OSError:
                        pass
                self._spawn_launcher(force=True)
                return None
            except OSError:  # it died meanwhile
                return None
            if reply != "ready":
                if reply == "stale":  # it runs older code and is exiting: replace it
                    self._spawn_launcher(force=True)
                return None
            _shim.mark(b"> start: launcher child ready")
            s.sendall(b"go\n")  # from here on the launcher's child is the shim
            s.settimeout(START_TIMEOUT)
            try:
                return _recv_line(s)
            except OSError:
                return ""
        finally:
            s.close()

    def _spawn_launcher(self, force: bool = False) -> None:
        now = time.monotonic()
        last = _launcher_spawned.get(self.root)
        if not force and last is not None and now - last < LAUNCHER_RESPAWN_SECONDS:
            return
        _launcher_spawned[self.root] = now
        log_fd = os.open(os.path.join(self.root, _launcher.LOG),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        try:
            _detached_exec([self.python, "-S", "-c", LAUNCHER_BOOT, self.root], _shim_env(),
                           log_fd, log_fd)
        finally:
            os.close(log_fd)

    def start_launcher(self, timeout: float = 5.0) -> int:
        """Make sure the state root's shim launcher runs (e.g. when the worker starts, so
        that even the first container start is fast); returns its pid, 0 if it did not
        come up within ``timeout`` (``start`` then keeps spawning shims directly)."""
        pid = launcher_pid(self.root)
        if pid and os.path.exists(os.path.join(self.root, _launcher.SOCK)):
            return pid
        self._precompile()
        self._spawn_launcher(force=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = launcher_pid(self.root)
            if pid and os.path.exists(os.path.join(self.root, _launcher.SOCK)):
                return pid  # it renames its socket into place once it listens
            time.sleep(0.005)
        return 0

    def stop_launcher(self) -> bool:
        """Stop this state root's shim launcher, if one runs (shims keep running)."""
        return stop_launcher(self.root)

    def _precompile(self) -> None:
        """Make sure the shim's modules have .pyc files for the shim's python: compiling
        from source inside the shim would cost it ~2 MB of RSS for its whole life."""
        if self.python in _precompiled:
            return
        here = os.path.dirname(os.path.abspath(__file__))
        files = [os.path.join(_PKG_PARENT, "workers", "__init__.py")] + [
            os.path.join(here, f) for f in _launcher.CODE_FILES]
        try:
            subprocess.run([self.python, "-S", "-m", "compileall", "-q", *files],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60, check=False)
        except (OSError, subprocess.SubprocessError):
            return  # not fatal: the shim compiles from source
        _precompiled.add(self.python)

    @staticmethod
    def _read_status(fd: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                break
            data = os.read(fd, 4096)
            if not data:
                break
            buf += data
        return buf.decode("utf-8", "replace").strip()

    @staticmethod
    def _shim_log_tail(d: str) -> str:
        try:
            with open(os.path.join(d, "shim.log"), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 2000))
                tail = f.read().decode("utf-8", "replace").strip().splitlines()
            return tail[-1] if tail else "no output"
        except OSError:
            return "no output"

    @staticmethod
    def _wait_gone(pid: int, timeout: float, start: int | None = None) -> bool:
        """Wait until ``pid`` (started at ``start``, when known) has exited; a pidfd
        becomes readable when the process exits (no sleep loop)."""
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        except OSError:  # no pidfd_open (kernel < 5.3): poll /proc
            deadline = time.monotonic() + timeout
            while _alive(pid, start):
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.005)
            return True
        try:
            if not _alive(pid, start):  # exited, or the pid was reused before pidfd_open
                return True
            p = select.poll()
            p.register(pidfd, select.POLLIN)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if p.poll(left * 1000):
                    return True
        finally:
            os.close(pidfd)

    # -- signals -----------------------------------------------------------------------
    def _shim_request(self, d: str, line: str, timeout: float | None = 5.0) -> str:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        path_fd = -1
        try:
            # sun_path is limited to 107 bytes: connect through an O_PATH fd
            path_fd = os.open(os.path.join(d, "shim.sock"), os.O_PATH | os.O_CLOEXEC)
            s.connect(f"/proc/self/fd/{path_fd}")
            s.sendall(line.encode() + b"\n")
            buf = b""
            while b"\n" not in buf:
                data = s.recv(4096)
                if not data:
                    break
                buf += data
            return buf.decode("utf-8", "replace").strip()
        finally:
            s.close()
            if path_fd >= 0:
                os.close(path_fd)

    def connect(self, cid: str, command: str, timeout: float = 5.0) -> socket.socket:
        """Open the shim's control socket and send ``command`` (``attach``, ``stdin``,
        ``stdin-once``, ``wait``, ...); returns the socket after the shim's ``ok`` for
        streaming commands. See the protocol in ``workers.runtime.shim``."""
        d = self._existing_dir(cid)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            path_fd = os.open(os.path.join(d, "shim.sock"), os.O_PATH | os.O_CLOEXEC)
            try:
                s.connect(f"/proc/self/fd/{path_fd}")
            finally:
                os.close(path_fd)
            s.sendall(command.encode() + b"\n")
            if command.split(" ", 1)[0] in ("attach", "stdin", "stdin-once"):
                reply = b""
                while not reply.endswith(b"\n"):
                    ch = s.recv(1)
                    if not ch:
                        break
                    reply += ch
                if reply.strip() != b"ok":
                    raise RuntimeError_(reply.decode("utf-8", "replace").strip()
                                        or "shim closed the connection")
        except FileNotFoundError:
            s.close()
            raise NotRunning(f"Container {cid} is not running") from None
        except BaseException:
            s.close()
            raise
        return s

    def kill(self, cid: str, sig: str | int = "SIGKILL") -> None:
        d = self._existing_dir(cid)
        num = signal_number(sig)
        st = self.state(cid)
        if not st.alive:
            raise NotRunning(f"Container {cid} is not running")
        try:
            reply = self._shim_request(d, f"kill {num}")
        except OSError:
            reply = None
        if reply == "ok":
            return
        if reply and "restarting" in reply:
            raise Conflict(f"Container {cid} is restarting, wait until the container is running")
        if reply and "not running" not in reply:
            raise RuntimeError_(f"cannot kill container {cid}: {reply}")
        # shim unreachable: signal the process directly if it is still the same one
        raw = self._read_state(d)
        if raw.get("status") == "running" and _alive(raw.get("pid") or 0, raw.get("pid_start")):
            os.kill(raw["pid"], num)
            return
        raise NotRunning(f"Container {cid} is not running")

    def wait(self, cid: str, timeout: float | None = None) -> int:
        """Block until the container has exited; return its exit code.

        Blocks on the shim's ``wait`` command (answered once state.json says exited);
        polls state.json only while the shim cannot be reached."""
        d = self._existing_dir(cid)
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.0
        while True:
            st = self.state(cid)
            if not st.alive:
                return st.exit_code
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"container {cid} still running after {timeout}s")
            try:
                reply = self._shim_request(d, "wait", timeout=left)
            except TimeoutError:
                continue  # the deadline check above raises
            except OSError:
                reply = ""
            if reply.startswith("exit "):
                return int(reply.split()[1])
            # shim unreachable: it has just finished (state.json says so: no sleep the
            # first time), or it is dead (state() corrects the status) or wedged
            time.sleep(delay)
            delay = min(max(delay * 2, 0.005), 0.05)

    def stop(self, cid: str, timeout: int | None = None) -> ContainerState:
        spec = self.spec(cid)
        if timeout is None:
            timeout = spec.stop_timeout
        if self.state(cid).alive:
            self._request_stop(cid)  # the restart policy must not undo this stop
            try:
                self.kill(cid, spec.stop_signal)
            except (NotRunning, Conflict):
                pass
            try:
                self.wait(cid, None if timeout < 0 else timeout)
            except TimeoutError:
                try:
                    self.kill(cid, signal.SIGKILL)
                except NotRunning:
                    pass
                self.wait(cid, 30)
        return self.state(cid)

    def _request_stop(self, cid: str) -> None:
        try:
            self._shim_request(self._existing_dir(cid), "stop")
        except OSError:
            pass  # no shim: nothing would restart it either

    # -- pause (the container's cgroup frozen by its shim) ------------------------------
    def cgroup(self, cid: str, spec: ContainerSpec | None = None):
        """The container's cgroup manager (workers.runtime.cgroups), or None."""
        parent = (spec or self.spec(cid)).cgroup_parent
        if not parent:
            return None
        from . import cgroups

        return cgroups.open_manager(parent, cid)

    def pause(self, cid: str) -> None:
        self._pause_request(cid, "pause")

    def unpause(self, cid: str) -> None:
        self._pause_request(cid, "unpause")

    def _pause_request(self, cid: str, what: str) -> None:
        d = self._existing_dir(cid)
        st = self.state(cid)
        if st.status == "restarting":
            raise Conflict(f"Container {cid} is restarting, wait until the container is running")
        if what == "pause" and st.status == "paused":
            raise Conflict(f"Container {cid} is already paused")
        if what == "unpause" and st.status != "paused":
            raise Conflict(f"Container {cid} is not paused")
        if not st.alive:
            raise NotRunning(f"Container {cid} is not running")
        try:
            reply = self._shim_request(d, what, timeout=15.0)
        except OSError:
            reply = "error not running"
        if reply == "ok":
            return
        if "already paused" in reply:
            raise Conflict(f"Container {cid} is already paused")
        if "not paused" in reply:
            raise Conflict(f"Container {cid} is not paused")
        if "restarting" in reply:
            raise Conflict(f"Container {cid} is restarting, wait until the container is running")
        if "not running" in reply:
            raise NotRunning(f"Container {cid} is not running")
        raise RuntimeError_(f"cannot {what} container {cid}: {reply.removeprefix('error ')}")

    # -- processes and sizes (docker top, ps -s) -----------------------------------------
    def top(self, cid: str, ps_args: str = "") -> dict:
        """``docker top``: the container's processes as ``ps <ps_args>`` would list them
        (emulated with psutil); raises NotRunning, or procs.PsError for unknown options."""
        from . import procs

        st = self.state(cid)
        if st.status != "running" or not st.pid:
            raise NotRunning(f"Container {cid} is not running")
        return procs.top(procs.container_pids(st.pid), ps_args)

    def size(self, cid: str) -> int:
        """Bytes in the container's writable layer (Docker's SizeRw)."""
        from . import procs

        return procs.size_rw(os.path.join(self._existing_dir(cid), "upper"))

    # -- remove ------------------------------------------------------------------------
    def remove(self, cid: str, force: bool = False) -> None:
        """Remove the container (``force``: kill it first). On return its shim is gone
        and ``containers/<id>`` no longer exists; its files are deleted in the background
        (``drain_trash()`` waits for that, e.g. before deleting the whole state root)."""
        try:
            d = self._existing_dir(cid)
        except NotFound:
            d = self._dir(cid)
            if not os.path.exists(d):
                return  # already removed: idempotent
        else:
            st = self.state(cid)
            if st.alive:
                if not force:
                    raise Conflict(f"You cannot remove a running container {cid}. Stop the "
                                   "container before attempting removal or force remove")
                try:
                    self.kill(cid, signal.SIGKILL)
                except NotRunning:
                    pass
                self.wait(cid, 30)
            raw = self._read_state(d)
            if raw.get("shim_pid"):  # it may still be writing its last bytes
                self._wait_gone(raw["shim_pid"], 10, raw.get("shim_start"))
            try:
                cg = self.cgroup(cid)
            except (OSError, SpecError):
                cg = None
            if cg is not None:
                cg.destroy()  # kills what is left in it (e.g. a process that escaped PID 1)
        # the overlay lives in the container's own mount namespace; make sure nothing of
        # ours is mounted in this one either (deepest first)
        mounts = linux.mounts_under(d)
        if mounts:
            for mnt in sorted(mounts, key=len, reverse=True):
                linux.umount2(mnt, linux.MNT_DETACH)
            leftover = linux.mounts_under(d)
            if leftover:
                raise RuntimeError_(f"mounts left after removing {cid}: {leftover}")
        # gone from containers/ at once; the files are deleted in the background
        trash = os.path.join(self.containers, f".rm-{cid}-{os.getpid()}")
        os.rename(d, trash)
        _trash.add(trash, self.containers)


__all__ = ["ContainerSpec", "ContainerState", "Conflict", "NotFound", "NotRunning", "Runtime",
           "RuntimeError_", "SpecError", "StartError", "drain_trash", "launcher_pid",
           "stop_launcher"]
