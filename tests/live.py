"""A complete, isolated Dockyard stack for one test session.

`LiveStack` starts its own redis-server (free loopback port), a temporary state root with a
fresh SQLite database, and the three processes (Celery worker as root, the Docker API server
on its own unix socket and TCP port, daphne on a free port), all with their own
`DOCKYARD_NODE` / `DOCKYARD_PREFIX`, so it never meets the dev stack (`make run`) nor another
test session.

Teardown (also on a failed start, a failed test, Ctrl-C or SIGTERM) stops the processes,
force-removes every container under the state root through the runtime, kills whatever
is left that belongs to this stack, checks that no mount remains under the temporary
directory, and deletes it. If the pytest process itself dies (SIGKILL), a small janitor
process started with the stack does the same cleanup.

This module imports only the standard library at the top so that it also runs as a script:
`python tests/live.py --janitor <pid> <dir>` (the janitor) and `python tests/live.py --up`
(start a stack by hand, print its coordinates, Ctrl-C to tear it down).
"""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
META = "stack.json"
SERVICES = ("worker", "dockerapi", "panel")
START_TIMEOUT = float(os.environ.get("DOCKYARD_TEST_START_TIMEOUT", "120"))


# ------------------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def docker_cli_path() -> str | None:
    override = os.environ.get("DOCKYARD_TEST_DOCKER_CLI")
    if override:
        return override
    for candidate in ("/usr/local/bin/docker", "/usr/bin/docker"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("docker")


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(path: Path | str) -> list[str]:
    """Mount points at or below `path` in this process's mount namespace."""
    path = os.path.realpath(str(path))
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            mnt = _unescape_mountinfo(line.split()[4])
            if mnt == path or mnt.startswith(path + "/"):
                found.append(mnt)
    return found


def _fs_type(path: str) -> str:
    path = os.path.realpath(path)
    best, fstype = "", ""
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            mnt = _unescape_mountinfo(left.split()[4])
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, fstype = mnt, right.split()[0]
    return fstype


_OVERLAY_PROBE = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x00020000) != 0:          # CLONE_NEWNS
    sys.exit(2)
libc.mount(b"none", b"/", None, 0x4000 | (1 << 18), None)   # MS_REC | MS_PRIVATE
d = sys.argv[1]
opts = f"lowerdir={d}/lower,upperdir={d}/upper,workdir={d}/work".encode()
if libc.mount(b"overlay", f"{d}/merged".encode(), b"overlay", 0, opts) != 0:
    sys.exit(1)
with open(f"{d}/merged/probe", "w") as f:
    f.write("x")
sys.exit(0 if os.path.exists(f"{d}/upper/probe") else 1)
"""


def overlay_works(base: str) -> bool:
    """Can an overlayfs with its upper dir on `base` be mounted? (Not if `base` is on overlayfs.)"""
    if _fs_type(base) in ("overlay", "aufs"):
        return False
    try:
        d = tempfile.mkdtemp(prefix=".dockyard-ovl-probe-", dir=base)
    except OSError:
        return False
    try:
        for sub in ("lower", "upper", "work", "merged"):
            os.mkdir(os.path.join(d, sub))
        # The mount lives only in the child's private mount namespace and dies with it.
        r = subprocess.run(
            [sys.executable, "-c", _OVERLAY_PROBE, d], capture_output=True, timeout=30
        )
        return r.returncode == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def pick_base_dir() -> str:
    """A directory for the temporary state root that supports overlayfs upper dirs."""
    candidates = [
        os.environ.get("DOCKYARD_TEST_TMPDIR"),
        "/var/tmp",
        "/tmp",
        str(REPO / "var" / "tmp"),
    ]
    for c in candidates:
        if not c:
            continue
        with contextlib.suppress(OSError):
            os.makedirs(c, exist_ok=True)
        if os.path.isdir(c) and os.access(c, os.W_OK) and overlay_works(c):
            return c
    raise RuntimeError(f"no directory among {candidates} supports overlayfs upper dirs")


def _read_proc(pid: int, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _proc_start_time(pid: int) -> float | None:
    """Process start time as a Unix timestamp (from /proc/<pid>/stat and the boot time)."""
    stat = _read_proc(pid, "stat").decode(errors="replace")
    if not stat:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        ticks = int(fields[19])
        with open("/proc/stat", encoding="ascii") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    except (IndexError, ValueError, OSError, StopIteration):
        return None
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def _kill_group_or_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
            return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child; otherwise just probe.
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return True
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if b") Z " in _read_proc(pid, "stat"):  # a zombie that is not ours to reap
            return True
        time.sleep(0.1)
    return False


def stop_pid(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM a service (its process group: prefork children too), then SIGKILL."""
    _kill_group_or_pid(pid, signal.SIGTERM)
    if not _wait_gone(pid, timeout):
        _kill_group_or_pid(pid, signal.SIGKILL)
        _wait_gone(pid, 5)
    # Children left in the group (a worker's pool). Shims run in their own sessions.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------ cleanup

_REMOVE_CONTAINERS = r"""
import json, os, sys
root, node, redis_url = sys.argv[1:4]
cdir = os.path.join(root, "containers")
ids = sorted(n for n in os.listdir(cdir) if len(n) == 64) if os.path.isdir(cdir) else []
try:
    from workers.runtime.container import Runtime, drain_trash, stop_launcher
except Exception as e:
    print(f"runtime not importable ({e!r}): containers are killed by pid instead", file=sys.stderr)
    sys.exit(3)
stop_launcher(root)
rt = Runtime(root, node=node, redis_url=redis_url)
failed = 0
for cid in ids:
    try:
        rt.remove(cid, force=True)
    except Exception as e:
        if os.path.exists(os.path.join(cdir, cid, "config.json")):
            failed += 1
            print(f"remove {cid[:12]} failed: {e!r}", file=sys.stderr)
drain_trash()
sys.exit(1 if failed else 0)
"""


def _belongs_to_stack(pid: int, tmp: str, state_root: str, since: float | None = None) -> bool:
    """Is `pid` a process of the stack in `tmp`? (Never this process, its parent or init.)

    By its command line, environment or working directory; with `since` (for pids the stack
    recorded itself), also by having started after the stack did: redis-server rewrites its
    title and environment, and a pid can only have been reused by a newer process.
    """
    if pid in (os.getpid(), os.getppid(), 1):
        return False
    if tmp.encode() in _read_proc(pid, "cmdline"):
        return True
    if f"DOCKYARD_STATE_ROOT={state_root}\0".encode() in _read_proc(pid, "environ"):
        return True
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        cwd = ""
    if cwd == tmp or cwd.startswith(tmp + "/"):
        return True
    if since is not None:
        started = _proc_start_time(pid)
        return started is not None and started >= since - 2
    return False


def _ns(pid: int, kind: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return ""


def _container_pids(state_root: str, since: float) -> list[int]:
    """Container (and shim) pids from state.json files, if they started after the stack did."""
    pids = []
    cdir = Path(state_root) / "containers"
    if not cdir.is_dir():
        return pids
    for state in cdir.glob("*/state.json"):
        try:
            data = json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        for key in ("pid", "shim_pid"):
            pid = data.get(key)
            if not isinstance(pid, int) or pid <= 1:
                continue
            started = _proc_start_time(pid)
            if started is None or started < since - 2:
                continue  # gone, or an older process that reuses the pid
            if key == "pid" and _ns(pid, "mnt") == _ns(os.getpid(), "mnt"):
                continue  # a container process lives in its own mount namespace
            pids.append(pid)
    return pids


def _kill_leftovers(
    tmp: str, state_root: str, since: float, prefix: str, exclude: set[int]
) -> list[str]:
    killed = []
    pids = set(_container_pids(state_root, since))
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _belongs_to_stack(int(entry), tmp, state_root):
            pids.add(int(entry))
    # Processes in cgroups named after this stack's unique prefix.
    for cg in _prefixed_cgroups(prefix):
        with contextlib.suppress(OSError), open(os.path.join(cg, "cgroup.procs")) as f:
            pids.update(int(x) for x in f.read().split())
    pids -= exclude | {os.getpid()}
    for pid in sorted(pids):
        cmd = _read_proc(pid, "cmdline").replace(b"\0", b" ").decode(errors="replace")[:120]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed.append(f"{pid} {cmd}")
    for pid in pids:
        _wait_gone(pid, 5)
    return killed


def _prefixed_cgroups(prefix: str) -> list[str]:
    """Cgroup directories (any hierarchy, a few levels deep) whose name contains `prefix`."""
    found = []
    base = "/sys/fs/cgroup"
    if not prefix or len(prefix) < 6 or not os.path.isdir(base):
        return found
    for dirpath, dirnames, _ in os.walk(base):
        depth = dirpath[len(base) :].count("/")
        if prefix in os.path.basename(dirpath):
            found.append(dirpath)
        if depth >= 3:
            dirnames[:] = []
    return found


def _remove_host_resources(prefix: str) -> list[str]:
    """Links, named netns, nft tables and cgroups that carry this stack's unique prefix."""
    leaked = []
    if not prefix or len(prefix) < 6:
        return leaked
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["ip", "-o", "link", "show"], capture_output=True, text=True, timeout=10
        ).stdout
        for line in out.splitlines():
            name = line.split(":", 2)[1].strip().split("@")[0] if ":" in line else ""
            if name.startswith(prefix):
                subprocess.run(["ip", "link", "delete", name], capture_output=True, timeout=10)
                leaked.append(f"link {name}")
    with contextlib.suppress(OSError):
        for name in os.listdir("/run/netns"):
            if prefix in name:
                subprocess.run(["ip", "netns", "delete", name], capture_output=True, timeout=10)
                leaked.append(f"netns {name}")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["nft", "list", "tables"], capture_output=True, text=True, timeout=10
        ).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "table" and prefix in parts[2]:
                subprocess.run(
                    ["nft", "delete", "table", parts[1], parts[2]], capture_output=True, timeout=10
                )
                leaked.append(f"nft table {parts[1]} {parts[2]}")
    for cg in sorted(_prefixed_cgroups(prefix), key=len, reverse=True):
        for dirpath, _dirs, _files in sorted(os.walk(cg), key=lambda t: len(t[0]), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)
        leaked.append(f"cgroup {cg}")
    return leaked


def _umount_detach(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(path.encode(), 2)  # MNT_DETACH


def cleanup_stack(tmp: Path, log=print) -> list[str]:
    """Tear down everything a stack made under `tmp` (from its stack.json). Idempotent.

    Returns a list of problems: things that were left behind and had to be forced away.
    Raises if a mount under `tmp` cannot be removed (the directory is then kept).
    """
    tmp = Path(tmp)
    problems: list[str] = []
    if not tmp.exists():
        return problems
    try:
        meta = json.loads((tmp / META).read_text())
    except (OSError, ValueError):
        meta = {}
    state_root = meta.get("state_root", str(tmp / "state"))
    since = float(meta.get("started_at", 0))
    prefix = meta.get("prefix", "")
    python = meta.get("python", sys.executable)
    env = meta.get("env") or dict(os.environ)

    # 1. The services (not redis yet: the runtime may publish while removing).
    for name in SERVICES:
        pid = meta.get("pids", {}).get(name)
        if pid and _belongs_to_stack(pid, str(tmp), state_root, since):
            stop_pid(pid)

    # 2. Every container, through the runtime.
    if (Path(state_root) / "containers").is_dir():
        try:
            r = subprocess.run(
                [
                    python,
                    "-c",
                    _REMOVE_CONTAINERS,
                    state_root,
                    meta.get("node", "local"),
                    meta.get("redis_url", ""),
                ],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            if r.returncode not in (0, 3):
                problems.append(f"runtime remove failed: {r.stderr.strip()[-2000:]}")
        except subprocess.TimeoutExpired:
            problems.append("runtime remove timed out")

    # 3. Whatever still runs for this stack (shims, container processes), then host resources.
    redis_pid = meta.get("pids", {}).get("redis") or 0
    killed = _kill_leftovers(str(tmp), state_root, since, prefix, {redis_pid})
    if killed:
        problems.append("killed leftover processes: " + "; ".join(killed))
    leaked = _remove_host_resources(prefix)
    if leaked:
        problems.append("removed leaked host resources: " + ", ".join(leaked))

    # 4. Redis last.
    pid = meta.get("pids", {}).get("redis")
    if pid and _belongs_to_stack(pid, str(tmp), state_root, since):
        stop_pid(pid, timeout=5)

    # 5. No mount may remain under the directory before it is deleted.
    mounts = mounts_under(tmp)
    if mounts:
        problems.append("mounts left under the state root: " + ", ".join(mounts))
        for m in sorted(mounts, key=len, reverse=True):
            _umount_detach(m)
        mounts = mounts_under(tmp)
        if mounts:
            raise RuntimeError(f"cannot unmount {mounts}; keeping {tmp}")
    shutil.rmtree(tmp, ignore_errors=True)
    if tmp.exists():
        # Files made read-only or immutable inside a container's upper dir: one more try.
        subprocess.run(["chattr", "-R", "-i", str(tmp)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if tmp.exists():
        problems.append(f"could not delete {tmp}")
    for p in problems:
        log(f"[live stack cleanup] {p}")
    return problems


def janitor(parent_pid: int, tmp: str) -> int:
    """Wait for the pytest process to die; if the stack's directory is still there, clean it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    path = Path(tmp)
    while path.exists():
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            time.sleep(0.5)
            if path.exists():
                cleanup_stack(path)
            return 0
        time.sleep(1)
    return 0


# ------------------------------------------------------------------------------ the stack


class StackError(RuntimeError):
    pass


class LiveStack:
    """A complete Dockyard stack in its own temporary directory. Use `start()` / `stop()`."""

    admin_username = "admin"

    def __init__(self, base_dir: str | None = None, extra_env: dict | None = None):
        """``extra_env``: more DOCKYARD_* settings for every process (e.g. a node setting)."""
        self.extra_env = dict(extra_env or {})
        token = secrets.token_hex(4)
        self.node = f"test{token}"
        # Short: it starts interface names, which have at most 15 characters.
        self.prefix = f"dt{token[:4]}"
        self.admin_password = "dy-test-" + secrets.token_urlsafe(9)
        self.base_dir = base_dir
        self.tmp: Path | None = None
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: dict[str, object] = {}
        self._janitor: subprocess.Popen | None = None
        self.started_at = time.time()
        self.python = sys.executable

    # -- coordinates ---------------------------------------------------------------
    @property
    def state_root(self) -> str:
        return str(self.tmp / "state")

    @property
    def docker_host(self) -> str:
        return f"unix://{self.api_socket}"

    @property
    def tcp_host(self) -> str:
        return f"tcp://127.0.0.1:{self.api_tcp_port}"

    @property
    def panel_url(self) -> str:
        return f"http://127.0.0.1:{self.panel_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def __repr__(self) -> str:
        return (
            f"<LiveStack {self.node} {self.tmp} panel={self.panel_url} docker={self.docker_host}>"
        )

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> LiveStack:
        if os.geteuid() != 0:
            raise StackError(
                "the live stack needs root (the worker makes namespaces, mounts, cgroups)"
            )
        base = self.base_dir or pick_base_dir()
        self.tmp = Path(tempfile.mkdtemp(prefix="dockyard-test-", dir=base))
        os.chmod(self.tmp, 0o755)
        for sub in ("state", "run", "logs", "redis", "docker-config"):
            (self.tmp / sub).mkdir(exist_ok=True)
        (self.tmp / "docker-config" / "config.json").write_text("{}\n")
        self.api_socket = str(self.tmp / "run" / "docker.sock")
        if len(self.api_socket) > 100:
            raise StackError(f"socket path too long for AF_UNIX: {self.api_socket}")
        self.redis_port = free_port()
        self.api_tcp_port = free_port()
        self.panel_port = free_port()
        self.env = self._make_env()
        self._write_meta()
        try:
            self._start_janitor()
            self._start_redis()
            self.manage("migrate", "--noinput", timeout=300)
            self.bootstrap_output = self.manage(
                "bootstrap",
                "--admin-username",
                self.admin_username,
                "--admin-password",
                self.admin_password,
                timeout=300,
            )
            self.manage("collectstatic", "--noinput", timeout=300)
            self._start_worker()
            self._start_service("dockerapi", [self.python, "manage.py", "dockerapi"])
            self._start_service(
                "panel",
                [
                    self.python,
                    "-m",
                    "daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.panel_port),
                    "panel.asgi:application",
                ],
            )
            self._wait(lambda: self._worker_ready(0), "worker")
            self._wait(self._api_ready, "dockerapi")
            self._wait(self._panel_ready, "panel")
        except BaseException as e:
            logs = self.logs()
            self.stop()
            if isinstance(
                e, StackError | subprocess.CalledProcessError | subprocess.TimeoutExpired
            ):
                raise StackError(f"the live stack did not start: {e}\n{logs}") from e
            raise
        return self

    def stop(self) -> list[str]:
        """Stop everything and delete the directory. Returns the problems found."""
        if self.tmp is None:
            return []
        if self._janitor is not None:
            with contextlib.suppress(ProcessLookupError):
                self._janitor.kill()
            with contextlib.suppress(Exception):
                self._janitor.wait(5)
            self._janitor = None
        for name in SERVICES:
            proc = self.procs.pop(name, None)
            if proc is not None and proc.poll() is None:
                stop_pid(proc.pid)
                with contextlib.suppress(Exception):
                    proc.wait(1)
        problems = cleanup_stack(self.tmp, log=lambda m: print(m, file=sys.stderr))
        for proc in self.procs.values():  # redis, normally already stopped by cleanup_stack
            if proc.poll() is None:
                stop_pid(proc.pid, timeout=5)
            with contextlib.suppress(Exception):
                proc.wait(1)
        self.procs.clear()
        for f in self._logs.values():
            with contextlib.suppress(Exception):
                f.close()
        self._logs.clear()
        self.tmp = None
        return problems

    def __enter__(self) -> LiveStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- public helpers ------------------------------------------------------------
    def stop_worker(self) -> None:
        """Stop the worker (SIGTERM: warm shutdown, like a deploy). Shims and containers live on."""
        proc = self.procs.pop("worker", None)
        if proc is not None and proc.poll() is None:
            stop_pid(proc.pid, timeout=30)
        if proc is not None:
            with contextlib.suppress(Exception):
                proc.wait(5)
        self._write_meta()

    def start_worker(self) -> None:
        """Start the worker (no-op if it runs) and wait until it consumes its queue."""
        proc = self.procs.get("worker")
        if proc is not None and proc.poll() is None:
            return
        path = self._log_path("worker")
        offset = path.stat().st_size if path.exists() else 0
        self._start_worker()
        self._wait(lambda: self._worker_ready(offset), "worker")

    def restart_worker(self) -> None:
        """Stop the worker and start it again; shims live on and are adopted."""
        self.stop_worker()
        self.start_worker()

    def manage(
        self, *args: str, input: str | None = None, timeout: float = 120, check: bool = True
    ) -> str:
        """Run `manage.py <args>` in this stack's environment; returns stdout."""
        r = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and r.returncode != 0:
            raise StackError(
                f"manage.py {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
            )
        return r.stdout

    def create_token(self, username: str | None = None, team: str | None = None) -> str:
        """A Docker API token for a user (default: the admin), scoped to `team` (default: the
        user's only team; none for the admin)."""
        args = ["--team", team] if team else []
        return (
            self.manage("createtoken", "--quiet", username or self.admin_username, *args)
            .strip()
            .splitlines()[-1]
        )

    def docker_cli(
        self,
        *args: str,
        input: str | bytes | None = None,
        tty: bool = False,
        timeout: float = 120,
        token: str | None = None,
        text: bool = True,
        env: dict | None = None,
    ) -> subprocess.CompletedProcess:
        """Run the real docker CLI against this stack (unix socket; TCP with `token`).

        Returns a CompletedProcess (check .returncode yourself). With tty=True the CLI runs
        on a pseudo-terminal (for -t / -it) and stdout holds the terminal output (\\r\\n).
        """
        cli = docker_cli_path()
        if cli is None:
            raise StackError("no docker CLI found (install docker.io)")
        cfg = self.tmp / "docker-config"
        host = self.docker_host
        if token is not None:
            cfg = self.tmp / f"docker-config-{secrets.token_hex(4)}"
            cfg.mkdir()
            (cfg / "config.json").write_text(
                json.dumps({"HttpHeaders": {"Authorization": f"Bearer {token}"}})
            )
            host = self.tcp_host
        run_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DOCKER_", "DOCKYARD_")) and k != "DATABASE_URL"
        }
        run_env.update(DOCKER_CONFIG=str(cfg), DOCKER_BUILDKIT="0", DOCKER_CLI_HINTS="false")
        run_env.update(env or {})
        argv = [cli, "-H", host, *args]
        if tty:
            return _run_on_pty(argv, run_env, input, timeout, text)
        if isinstance(input, str) and not text:
            input = input.encode()
        if isinstance(input, bytes) and text:
            input = input.decode()
        return subprocess.run(
            argv, env=run_env, input=input, capture_output=True, text=text, timeout=timeout
        )

    def logs(self, lines: int = 60) -> str:
        """The tails of the processes' logs, for failure messages."""
        if self.tmp is None:
            return "(the live stack is stopped)"
        out = []
        for name in ("redis", *SERVICES):
            p = self._log_path(name)
            try:
                data = p.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"----- {name} ({p}) -----")
            out.extend(data)
        return "\n".join(out)

    def info(self) -> dict:
        return {
            "panel_url": self.panel_url,
            "docker_host": self.docker_host,
            "tcp_host": self.tcp_host,
            "admin_username": self.admin_username,
            "admin_password": self.admin_password,
            "state_root": self.state_root,
            "redis_url": self.redis_url,
            "node": self.node,
            "prefix": self.prefix,
        }

    # -- internals -----------------------------------------------------------------
    def _make_env(self) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DOCKYARD_", "DOCKER_", "CELERY_")) and k != "DATABASE_URL"
        }
        pythonpath = [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env.update(
            DJANGO_SETTINGS_MODULE="panel.settings",
            PYTHONPATH=os.pathsep.join(pythonpath),
            PYTHONUNBUFFERED="1",
            DOCKYARD_STATE_ROOT=self.state_root,
            DOCKYARD_DB_PATH=str(self.tmp / "state" / "dockyard.sqlite3"),
            DOCKYARD_NODE=self.node,
            DOCKYARD_PREFIX=self.prefix,
            DOCKYARD_REDIS_URL=self.redis_url,
            DOCKYARD_API_SOCKET=self.api_socket,
            DOCKYARD_API_TCP=f"127.0.0.1:{self.api_tcp_port}",
            DOCKYARD_SECRET_KEY=secrets.token_urlsafe(40),
            DOCKYARD_DEBUG="0",
            # Stacks run side by side: each default bridge gets its own /24 (no route clash).
            DOCKYARD_BRIDGE_SUBNET=f"172.31.{secrets.randbelow(256)}.0/24",
        )
        env.update(self.extra_env)
        return env

    def _write_meta(self) -> None:
        meta = {
            "state_root": self.state_root,
            "node": self.node,
            "prefix": self.prefix,
            "redis_url": self.redis_url,
            "started_at": self.started_at,
            "python": self.python,
            "env": self.env,
            "pids": {n: p.pid for n, p in self.procs.items()},
        }
        tmp = self.tmp / (META + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds the secret key
        with os.fdopen(fd, "w") as f:
            json.dump(meta, f)
        os.replace(tmp, self.tmp / META)

    def _log_path(self, name: str) -> Path:
        return self.tmp / "logs" / f"{name}.log"

    def _popen(self, name: str, argv: list[str]) -> subprocess.Popen:
        f = self._logs.get(name)
        if f is None:
            f = self._logs[name] = open(self._log_path(name), "ab", buffering=0)  # noqa: SIM115
        f.write(f"\n===== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stopped as a group, deaf to Ctrl-C
        )
        self.procs[name] = proc
        self._write_meta()
        return proc

    def _start_janitor(self) -> None:
        log = open(self._log_path("janitor"), "ab")  # noqa: SIM115
        self._janitor = subprocess.Popen(
            [
                self.python,
                str(Path(__file__).resolve()),
                "--janitor",
                str(os.getpid()),
                str(self.tmp),
            ],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()

    def _start_redis(self) -> None:
        server = shutil.which("redis-server") or "/usr/bin/redis-server"
        self._popen(
            "redis",
            [
                server,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp / "redis"),
                "--daemonize",
                "no",
                "--databases",
                "16",
            ],
        )
        self._wait(self._redis_ready, "redis", timeout=30)

    def _start_worker(self) -> None:
        self._popen(
            "worker",
            [
                self.python,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "-Q",
                f"node.{self.node}",
                "-n",
                f"{self.node}@%h",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
            ],
        )

    def _start_service(self, name: str, argv: list[str]) -> None:
        self._popen(name, argv)

    def _wait(self, ready, name: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        proc = self.procs.get(name)
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode} during start")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if ready():
                    return
            time.sleep(0.2)
        raise StackError(f"{name} not ready after {timeout:.0f}s")

    def _redis_ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    def _worker_ready(self, offset: int) -> bool:
        with open(self._log_path("worker"), "rb") as f:
            f.seek(offset)
            return b" ready." in f.read()

    def _api_ready(self) -> bool:
        conn = _UnixHTTPConnection(self.api_socket, timeout=3)
        try:
            conn.request("GET", "/_ping")
            resp = conn.getresponse()
            return resp.status == 200
        finally:
            conn.close()

    def _panel_ready(self) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.panel_port, timeout=3)
        try:
            conn.request("GET", "/login/")
            return conn.getresponse().status < 500
        finally:
            conn.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def _run_on_pty(argv, env, input, timeout, text) -> subprocess.CompletedProcess:
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def _ctty() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=_ctty,
    )
    os.close(slave)
    if input:
        os.write(master, input.encode() if isinstance(input, str) else input)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                proc.wait()
                raise subprocess.TimeoutExpired(argv, timeout, output=b"".join(chunks))
            r, _, _ = select.select([master], [], [], min(left, 0.5))
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                # Drain what is left, then stop.
                r, _, _ = select.select([master], [], [], 0.2)
                if not r:
                    break
    finally:
        os.close(master)
    rc = proc.wait(timeout=10)
    out = b"".join(chunks)
    return subprocess.CompletedProcess(argv, rc, out.decode(errors="replace") if text else out, "")


# ------------------------------------------------------------------------------ script


def _main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "--janitor":
        return janitor(int(argv[1]), argv[2])
    if argv == ["--up"]:
        stack = LiveStack()
        stack.start()
        print(json.dumps(stack.info(), indent=2), flush=True)
        print("Ctrl-C to stop", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            stack.stop()
        return 0
    print(f"usage: {sys.argv[0]} --up | --janitor <pid> <dir>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
