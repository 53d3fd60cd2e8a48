"""The per-container shim: ``python -S -m workers.runtime.shim <container_dir> <redis_url> <node>
[--status-fd N]``.

It creates the container process (through ``nsinit`` in forked children), holds its
stdio or PTY, writes ``container.log`` (Docker json-file) and ``state.json``, publishes
output and state transitions to Redis, serves a control socket and exits once the
container's PID 1 has exited and its output is drained. It must stay small: only
cheap builtin modules here; ctypes and the namespace code are imported in the
forked child only. The container's PID 1 is created with ``CLONE_PARENT`` by that child,
so it is the shim's own child (no subreaper needed to reap it).

Two ways to get a shim: ``Runtime.start`` asks the node's shim launcher
(``workers.runtime.launcher``, a pre-started process with this module imported) to fork
one, which then calls ``serve()``; or, when no launcher answers, it runs
``python -S -c "$SHIM_BOOT" <args>`` (see container.SHIM_BOOT, equivalent to ``-m`` but
without runpy: about 1 MB less RSS).

``--status-fd N``: the shim writes one line there and closes it:
``ok <shim_pid> <container_pid>`` once the container process has exec'd, or
``error <shim_pid> <message>`` (then it has cleaned up and exits with status 1).

Control socket ``<container_dir>/shim.sock`` (unix stream). A client sends one
command line, terminated by ``\\n``:

``kill <SIGNAME|number>``   signal the container's PID 1; reply ``ok`` or ``error <msg>``.
                            SIGKILL and the stop signal count as a manual stop: the restart
                            policy does not undo it (and a paused container is thawed so
                            that it can act on it)
``stop``                    a manual stop is coming (sent before the signal): no restart;
                            while ``restarting`` the shim finishes at once. Reply ``ok``
``pause`` / ``unpause``     freeze / thaw the container's cgroup; reply ``ok`` or
                            ``error <msg>`` (state ``paused`` while frozen)
``state``                   reply: the state as one JSON line
``wait``                    reply ``exit <code>`` once the container has exited, its output
                            is in container.log and state.json says ``exited``
``resize <rows> <cols>``    set the PTY size (tty only); reply ``ok`` or ``error <msg>``
``attach``                  reply ``ok``, then frames of output produced from now on:
                            1 byte kind (``1`` stdout, ``2`` stderr, ``x`` exit code as
                            decimal) + 4 byte big-endian length + payload; closed after ``x``
``stdin`` / ``stdin-once``  reply ``ok``, then every byte the client sends goes to the
                            container's stdin (needs open_stdin); on client EOF,
                            ``stdin-once`` also closes the container's stdin
All replies end with ``\\n``; after a reply to kill/state/wait/resize the shim closes.

Restart policy (``restart_policy`` in config.json): when PID 1 exits and the policy says
so (``always``, ``unless-stopped``; ``on-failure`` on a non-zero code, at most
``restart_max_retries`` times if > 0), the shim goes ``restarting``, waits the back-off
(``restart_backoff_base`` doubled per restart up to ``restart_backoff_cap``; back to the
base once a run lasted 10 s) and starts a new PID 1 in fresh namespaces on the same root
(the overlay's upper dir is kept), counting ``restart_count``.

Redis (optional, never fatal): ``PUBLISH dockyard:output:<id>`` with ``1``/``2`` + data
and finally ``x<exit_code>``; ``XADD dockyard:events:<node>`` with fields container,
status, pid, exit_code, time, error, started_at, finished_at, restart_count, oom_killed
(1 when the cgroup's OOM killer struck during the run that ended) at each state
transition (created, running, paused, restarting, exited).
"""

import _json
import _signal
import _socket
import os
import select
import sys
import time

from .redisclient import Redis
from .shimexec import ExecMixin

CHUNK = 65536
MAX_LINE = 16 * 1024  # Docker splits log lines at 16K
DRAIN_SECONDS = 3.0
RETRY_SECONDS = 2.0  # first reconnect delay; doubles up to RETRY_MAX while Redis is down
RETRY_MAX = 30.0
EVENT_BACKLOG = 200
RESET_BACKOFF_AFTER = 10.0  # a run this long resets the restart back-off (as Docker does)
_trace = -1  # DOCKYARD_SHIM_TRACE (bench/bench_runtime.py): "<monotonic ns> <pid> <label>" lines


def mark(label):
    """Benchmark timestamp; a no-op unless DOCKYARD_SHIM_TRACE names a file."""
    if _trace >= 0:
        os.write(_trace, b"%d %d %s\n" % (time.monotonic_ns(), os.getpid(), label))


def open_trace(path):
    global _trace
    if path and _trace < 0:
        try:
            _trace = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        except OSError:
            pass


def _enc(s):
    return _json.encode_basestring_ascii(s)


def dumps(d):
    """JSON for a flat dict of str/int/bool/None (json imports re: too heavy here)."""
    out = []
    for k, v in d.items():
        if v is None:
            v = "null"
        elif v is True:
            v = "true"
        elif v is False:
            v = "false"
        elif isinstance(v, int):
            v = str(v)
        else:
            v = _enc(str(v))
        out.append(_enc(k) + ":" + v)
    return "{" + ",".join(out) + "}"


class _Ctx:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float
    memo = {}


def loads(text):
    obj, end = _json.make_scanner(_Ctx())(text.strip(), 0)
    return obj


def now():
    """RFC3339Nano UTC timestamp."""
    ns = time.time_ns()
    t = time.gmtime(ns // 1_000_000_000)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{ns % 1_000_000_000:09d}Z")


def proc_start_time(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def signum(name):
    name = name.strip()
    if name.isdigit():
        return int(name)
    name = name.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    num = getattr(_signal, name, None)
    if not isinstance(num, int) or name.startswith(("SIG_", "SIGBLOCK", "SIGSET", "SIGUNB")):
        raise ValueError("invalid signal: " + name)
    return num


def write_atomic(path, text, sync=True):
    """Replace ``path`` atomically (rename). ``sync=False``: no fsync yet; returns the
    open fd, for the caller to ``fsync`` and close once it has answered whoever waits."""
    tmp = path + ".shim.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, text.encode())
        if sync:
            os.fsync(fd)
        os.rename(tmp, path)
    except BaseException:
        os.close(fd)
        raise
    if sync:
        os.close(fd)
        return -1
    return fd


class Publisher:
    """Lazy Redis connection: output is dropped while Redis is down, events are kept
    (bounded) and sent when it comes back."""

    def __init__(self, url):
        self.url = url
        self.redis = None
        self.next_try = 0.0
        self.delay = RETRY_SECONDS
        self.events = []

    def _failed(self):
        self.next_try = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, RETRY_MAX)

    def _conn(self):
        if self.redis is not None and self.redis.sock is not None:
            return self.redis
        if time.monotonic() < self.next_try:
            return None
        try:
            if self.redis is None:
                self.redis = Redis(self.url)
            self.redis.connect()
            self.delay = RETRY_SECONDS
            return self.redis
        except Exception:
            self._failed()
            return None

    def _do(self, *args):
        r = self._conn()
        if r is None:
            return False
        try:
            r.command(*args)
            return True
        except Exception:
            r.close()
            self._failed()
            return False

    def publish(self, channel, payload):
        self._do("PUBLISH", channel, payload)

    def event(self, stream, fields):
        self.events.append((stream, fields))
        del self.events[:-EVENT_BACKLOG]
        self.flush()

    def flush(self):
        while self.events:
            stream, fields = self.events[0]
            args = ["XADD", stream, "MAXLEN", "~", "100000", "*"]
            for k, v in fields:
                args += [k, v]
            if not self._do(*args):
                return False
            self.events.pop(0)
        return True


class Shim(ExecMixin):
    def __init__(self, cdir, redis_url, node, status_fd, notify_fd=-1):
        self.cdir = cdir
        self.node = node
        self.status_fd = status_fd
        self.notify_fd = notify_fd
        fd = os.open(os.path.join(cdir, "config.json"), os.O_RDONLY | os.O_CLOEXEC)
        try:
            raw = b""
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                raw += chunk
        finally:
            os.close(fd)
        self.cfg = loads(raw.decode("utf-8"))
        self.id = self.cfg["id"]
        self.tty = bool(self.cfg.get("tty"))
        self.open_stdin = bool(self.cfg.get("open_stdin"))
        self.pub = Publisher(redis_url)
        self.out_channel = "dockyard:output:" + self.id
        self.state_path = os.path.join(cdir, "state.json")
        self.sock_path = os.path.join(cdir, "shim.sock")
        self.state = {"status": "created", "pid": 0, "exit_code": 0, "started_at": "",
                      "finished_at": "", "shim_pid": os.getpid(),
                      "shim_start": proc_start_time(os.getpid()), "pid_start": None,
                      "error": "", "restart_count": 0, "manual_stop": False,
                      "oom_killed": False}
        self.policy = self.cfg.get("restart_policy") or "no"
        self.max_retries = int(self.cfg.get("restart_max_retries") or 0)
        self.backoff_base = float(self.cfg.get("restart_backoff_base") or 1.0)
        self.backoff_cap = float(self.cfg.get("restart_backoff_cap") or 60.0)
        try:
            self.stop_signum = signum(str(self.cfg.get("stop_signal") or "SIGTERM"))
        except ValueError:
            self.stop_signum = 15
        self.stop_requested = False
        self.restart_at = None  # monotonic time of the next restart while "restarting"
        self.delay = 0.0  # the last back-off
        self.run_started = 0.0
        self.cgroup = None
        self.oom_kills = None  # the cgroup's OOM kill count before this run's PID 1
        self.pid = 0
        self.exit_code = None
        self.finished_at = ""
        self.outputs = {}  # fd -> stream kind b"1"/b"2"
        self.partial = {b"1": b"", b"2": b""}
        self.stdin_fd = -1
        self.clients = {}  # fd -> [socket, mode, buffer]
        self.waiters = []
        self.poller = select.poll()
        self.log_fd = -1
        self.unsynced = -1  # fd of a state.json not fsync'ed yet
        self.init_execs()

    # -- state and events --------------------------------------------------------------
    def set_state(self, **kw):
        self.write_state(**kw)
        self.publish_state()

    def write_state(self, sync=True, **kw):
        if self.unsynced >= 0:  # superseded before it needed to be durable
            os.close(self.unsynced)
            self.unsynced = -1
        self.state.update(kw)
        self.unsynced = write_atomic(self.state_path, dumps(self.state) + "\n", sync)

    def sync_state(self):
        """fsync a state.json written with ``sync=False``: its rename already made it
        visible; this makes it durable, off the path of whoever waited for it (the
        main loop does it once idle: a container that exits at once never waits for
        the fsync of its "running" state)."""
        if self.unsynced >= 0:
            try:
                os.fsync(self.unsynced)
            except OSError:
                pass
            os.close(self.unsynced)
            self.unsynced = -1

    def publish_state(self):
        st = self.state
        self.pub.event("dockyard:events:" + self.node, [
            ("container", self.id), ("status", st["status"]), ("pid", str(st["pid"])),
            ("exit_code", str(st["exit_code"])), ("time", now()), ("error", st["error"]),
            ("started_at", st["started_at"]), ("finished_at", st["finished_at"]),
            ("restart_count", str(st["restart_count"])),
            ("oom_killed", "1" if st["oom_killed"] else "0")])

    def report(self, line):
        if self.status_fd >= 0:
            try:
                os.write(self.status_fd, (line + "\n").encode("utf-8", "replace"))
            except OSError:
                pass
            os.close(self.status_fd)
            self.status_fd = -1
        if self.notify_fd >= 0:  # the launcher may fork its next spare now
            try:
                os.write(self.notify_fd, b"t")
            except OSError:
                pass
            os.close(self.notify_fd)
            self.notify_fd = -1

    # -- start -------------------------------------------------------------------------
    def start(self):
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        self.wake_r = wake_r
        _signal.signal(_signal.SIGCHLD, lambda s, f: None)
        _signal.set_wakeup_fd(wake_w)
        error = self.spawn()
        if error:
            self.fail(error)
            return False
        self.log_fd = os.open(os.path.join(self.cdir, "container.log"),
                              os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self.listen()
        self.run_started = time.monotonic()
        self.write_state(sync=False, status="running", pid=self.pid, exit_code=0,
                         started_at=now(), finished_at="", error="", oom_killed=False)
        mark(b"shim: state running written")
        self.report(f"ok {os.getpid()} {self.pid}")
        mark(b"shim: reported ok")
        self.publish_state()  # the caller need not wait for Redis
        return True

    def spawn(self):
        """Create the container's PID 1 (fresh pipes or PTY, fresh namespaces); sets
        ``self.pid``, the output fds and the stdin fd. Returns "" or the error."""
        devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        child_ends = []
        console = None
        if self.tty:
            # the PTY is allocated inside the container (its own devpts instance) and
            # the master comes back over this socket pair
            console, console_child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
            stdio = (devnull, devnull, devnull)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            if self.open_stdin:
                in_r, self.stdin_fd = os.pipe()
                child_ends.append(in_r)
            else:
                in_r = devnull
            stdio = (in_r, out_w, err_w)
            child_ends += [out_w, err_w]
            self.outputs[out_r] = b"1"
            self.outputs[err_r] = b"2"
        err_r, err_w = os.pipe()

        console_end = console_child if self.tty else None
        self.oom_kills = self._oom_kills()
        nsinit = sys.modules.get(__package__ + ".nsinit")
        pid_raw = b""
        if nsinit is not None:
            # preloaded (a shim forked by the launcher): clone the container's PID 1 from
            # here, no intermediate process
            mark(b"shim: clone C2")
            try:
                pid_raw = b"%d" % nsinit.clone_init(self.cfg, self.cdir, stdio, console_end,
                                                    err_w, console)
            except OSError as e:
                os.write(err_w, nsinit.errmsg(e).encode("utf-8", "replace"))
            c1 = 0
        else:
            # C1 imports the namespace code (ctypes: not in the shim's own memory) and
            # clones PID 1 as our child (CLONE_PARENT)
            pid_r, pid_w = os.pipe()
            mark(b"shim: fork C1")
            c1 = os.fork()
            if c1 == 0:
                try:
                    from . import nsinit
                    if console is not None:
                        console.close()
                    nsinit.spawn(self.cfg, self.cdir, stdio, console_end, err_w, pid_w)
                finally:
                    os._exit(127)
            os.close(pid_w)
        for fd in child_ends + [err_w, devnull]:
            os.close(fd)
        if console is not None:
            console_child.close()
        if c1:
            pid_raw = self._read_all(pid_r)
        error = self._read_all(err_r).decode("utf-8", "replace")
        mark(b"shim: container exec'd (err pipe EOF)")
        if c1:
            try:
                os.waitpid(c1, 0)
            except ChildProcessError:
                pass
        pid = int(pid_raw) if pid_raw.isdigit() else 0
        if not error and not pid:
            error = "container init failed before exec"
        if error:
            if pid:
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            self._drop_outputs()
            return error
        if console is not None:
            master = self._recv_fd(console)
            console.close()
            if master < 0:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
                self._drop_outputs()
                return "container init did not pass its console"
            self.outputs[master] = b"1"
            self.stdin_fd = master
        self.pid = pid
        self.state["pid_start"] = proc_start_time(pid)
        return ""

    def _drop_outputs(self):
        for fd in list(self.outputs):
            os.close(fd)
        self.outputs.clear()
        if self.stdin_fd >= 0:
            os.close(self.stdin_fd)
            self.stdin_fd = -1

    def fail(self, error):
        # state stays "created"; the error is recorded for the runtime and the panel
        self.state["error"] = error
        write_atomic(self.state_path, dumps(self.state) + "\n")
        sys.stderr.write(f"start failed: {error}\n")
        self.report(f"error {os.getpid()} " + error.replace("\n", " "))

    @staticmethod
    def _recv_fd(sock):
        sock.setblocking(False)
        try:
            _, anc, _, _ = sock.recvmsg(1, 64)
        except OSError:
            return -1
        for level, kind, data in anc:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS and len(data) >= 4:
                fd = int.from_bytes(data[:4], "little")
                os.set_inheritable(fd, False)
                return fd
        return -1

    @staticmethod
    def _read_all(fd):
        chunks = []
        while True:
            try:
                data = os.read(fd, 4096)
            except InterruptedError:
                continue
            if not data:
                break
            chunks.append(data)
        os.close(fd)
        return b"".join(chunks)

    def listen(self):
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        # relative to the cwd (the container dir): sun_path is limited to 107 bytes;
        # clients connect through /proc/self/fd/<O_PATH fd of the socket>
        s.bind("shim.sock")
        os.chmod(self.sock_path, 0o600)
        s.listen(16)
        s.setblocking(False)
        self.listener = s
        self.poller.register(s.fileno(), select.POLLIN)
        for fd in self.outputs:
            self.poller.register(fd, select.POLLIN)
        self.poller.register(self.wake_r, select.POLLIN)

    # -- main loop ---------------------------------------------------------------------
    def run(self):
        deadline = None
        while True:
            if self.restart_at is not None:  # "restarting": waiting out the back-off
                if self.stop_requested:
                    break
                left = self.restart_at - time.monotonic()
                if left <= 0:
                    if not self.respawn():
                        break
                    deadline = None
                    continue
                timeout = int(left * 1000) + 1
                if self.pub.events:
                    timeout = min(timeout, max(10, int((self.pub.next_try - time.monotonic())
                                                       * 1000) + 10))
            elif self.exit_code is not None:
                done = not self.outputs
                if not done:
                    if deadline is None:
                        deadline = time.monotonic() + DRAIN_SECONDS
                    timeout = max(0, int((deadline - time.monotonic()) * 1000))
                    done = timeout == 0
                if done:
                    if self.plan_restart():
                        deadline = None
                        continue
                    break
            else:
                timeout = None
                if self.pub.events:
                    timeout = max(10, int((self.pub.next_try - time.monotonic()) * 1000) + 10)
            if self.execs:  # an exited exec's output drain deadline
                t = self.exec_timeout()
                if t is not None:
                    timeout = t if timeout is None else min(timeout, t)
            try:
                ready = self.poller.poll(0 if self.unsynced >= 0 else timeout)
            except InterruptedError:
                continue
            if not ready and self.unsynced >= 0:
                self.sync_state()  # idle now
                continue
            for fd, _ev in ready:
                if fd == self.wake_r:
                    self._drain_wake()
                    self.reap()
                elif fd in self.outputs:
                    self.read_output(fd)
                elif fd == self.listener.fileno():
                    self.accept()
                elif fd in self.clients:
                    self.client_event(fd)
                elif fd in self.exec_fds:
                    self.exec_event(fd, _ev)
            if self.execs:
                self.exec_expire()
            if self.pub.events:
                self.pub.flush()
        self.finish()

    # -- restart policy ------------------------------------------------------------------
    def plan_restart(self):
        """PID 1 has exited and its output is drained: restart it if the policy says so
        (state "restarting" until the back-off has passed). False: the shim finishes."""
        code = self.exit_code
        if self.policy == "no" or self.stop_requested:
            return False
        if self.policy == "on-failure" and (code == 0 or (
                self.max_retries and self.state["restart_count"] >= self.max_retries)):
            return False
        if self.policy not in ("always", "unless-stopped", "on-failure"):
            return False
        if time.monotonic() - self.run_started >= RESET_BACKOFF_AFTER:
            self.delay = 0.0
        self.delay = self.backoff_base if not self.delay else min(self.delay * 2,
                                                                  self.backoff_cap)
        for kind in (b"1", b"2"):
            self.log(kind, b"", final=True)
        for fd in list(self.outputs):  # left after the drain deadline
            self.poller.unregister(fd)
            os.close(fd)
        self.outputs.clear()
        self.thaw_if_paused()
        self.restart_at = time.monotonic() + self.delay
        self.set_state(status="restarting", pid=0, exit_code=code, finished_at=self.finished_at,
                       restart_count=self.state["restart_count"] + 1)
        return True

    def respawn(self):
        """Start a new PID 1 after the back-off. False (state exited, with the error) if
        it cannot be started."""
        self.restart_at = None
        if self.tty and self.stdin_fd >= 0:  # the last run's PTY master
            os.close(self.stdin_fd)
            self.stdin_fd = -1
        error = self.spawn()
        if error:
            self.state["error"] = error
            sys.stderr.write(f"restart failed: {error}\n")
            return False
        self.exit_code = None
        for fd in self.outputs:
            self.poller.register(fd, select.POLLIN)
        self.run_started = time.monotonic()
        self.set_state(status="running", pid=self.pid, exit_code=0, started_at=now(),
                       finished_at="", error="", oom_killed=False)
        return True

    def request_stop(self):
        """A manual stop (via Dockyard): the restart policy must not undo it."""
        if not self.stop_requested:
            self.stop_requested = True
            self.write_state(sync=False, manual_stop=True)

    # -- pause -------------------------------------------------------------------------
    def _cgroup(self):
        if self.cgroup is None:
            parent = self.cfg.get("cgroup_parent")
            if not parent:
                raise OSError("the container has no cgroup (cgroups are off on this node)")
            from . import cgroups
            self.cgroup = cgroups.open_manager(parent, self.id)
        return self.cgroup

    def _oom_kills(self):
        try:
            return self._cgroup().oom_kills()
        except OSError:
            return None

    def pause(self):
        status = self.state["status"]
        if status == "paused":
            return "error already paused"
        if status == "restarting" or self.restart_at is not None:
            return "error restarting"
        if status != "running" or self.exit_code is not None:
            return "error not running"
        try:
            self._cgroup().freeze()
        except OSError as e:
            return f"error cannot freeze: {e}"
        self.set_state(status="paused")
        return "ok"

    def unpause(self):
        if self.state["status"] != "paused":
            return "error not paused"
        try:
            self._cgroup().thaw()
        except OSError as e:
            return f"error cannot thaw: {e}"
        self.set_state(status="running")
        return "ok"

    def thaw_if_paused(self):
        if self.state["status"] == "paused":
            try:
                self._cgroup().thaw()
            except OSError:
                pass
            self.state["status"] = "running"

    def _drain_wake(self):
        try:
            while os.read(self.wake_r, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            if pid in self.exec_pids:
                self.exec_exited(pid, status)
            elif pid == self.pid:
                mark(b"shim: reaped container")
                code = os.waitstatus_to_exitcode(status)
                self.exit_code = 128 - code if code < 0 else code
                self.finished_at = now()
                kills = self._oom_kills()  # State.OOMKilled, as Docker: any OOM kill
                self.state["oom_killed"] = bool(kills and kills > (self.oom_kills or 0))
                if self.stdin_fd >= 0 and not self.tty:
                    os.close(self.stdin_fd)
                    self.stdin_fd = -1

    def read_output(self, fd):
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO on a PTY master once the slave side is gone
            data = b""
        kind = self.outputs[fd]
        if not data:
            self.poller.unregister(fd)
            del self.outputs[fd]
            if fd != self.stdin_fd:
                os.close(fd)
            return
        self.log(kind, data)
        self.pub.publish(self.out_channel, kind + data)
        self.send_clients(kind, data)

    def log(self, kind, data, final=False):
        buf = self.partial[kind] + data
        stream = ',"stream":"stdout","time":"' if kind == b"1" else \
            ',"stream":"stderr","time":"'
        lines = []
        while True:
            i = buf.find(b"\n")
            if i < 0 or i >= MAX_LINE:
                if len(buf) >= MAX_LINE:
                    line, buf = buf[:MAX_LINE], buf[MAX_LINE:]
                    lines.append(line)
                    continue
                break
            line, buf = buf[:i + 1], buf[i + 1:]
            lines.append(line)
        if final and buf:
            lines.append(buf)
            buf = b""
        self.partial[kind] = buf
        if lines:
            t = now()
            out = "".join('{"log":' + _enc(line.decode("utf-8", "replace")) + stream + t
                          + '"}\n' for line in lines)
            os.write(self.log_fd, out.encode())

    # -- control socket ----------------------------------------------------------------
    def accept(self):
        while True:
            try:
                cfd, _ = self.listener._accept()
            except OSError:  # EAGAIN and friends
                return
            conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, cfd)
            conn.setblocking(False)
            self.clients[conn.fileno()] = [conn, "", b""]
            self.poller.register(conn.fileno(), select.POLLIN)

    def close_client(self, fd):
        c = self.clients.pop(fd, None)
        if c is None:
            return
        try:
            self.poller.unregister(fd)
        except KeyError:
            pass
        if c[1] == "stdin-once" and self.stdin_fd >= 0 and not self.tty:
            os.close(self.stdin_fd)
            self.stdin_fd = -1
        if c[1] == "exec":
            self.exec_client_gone(fd)
        if c[1] == "wait":  # else a new client given the same fd number gets "exit N"
            self.waiters.remove(fd)
        c[0].close()

    def reply(self, fd, text, close=True):
        c = self.clients.get(fd)
        if c is None:
            return
        try:
            c[0].setblocking(True)
            c[0].settimeout(1.0)
            c[0].sendall(text.encode("utf-8", "replace") + b"\n")
            c[0].setblocking(False)
        except OSError:
            close = True
        if close:
            self.close_client(fd)

    def client_event(self, fd):
        conn, mode, buf = self.clients[fd]
        try:
            data = conn.recv(CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close_client(fd)
            return
        if mode in ("stdin", "stdin-once"):
            self.write_stdin(data)
            return
        if mode == "exec":
            self.exec_input(fd, data)
            return
        if mode:  # attach/wait clients send nothing more; ignore
            return
        buf += data
        if b"\n" not in buf:
            if len(buf) > 4096:
                self.close_client(fd)
            else:
                self.clients[fd][2] = buf
            return
        line, rest = buf.split(b"\n", 1)
        self.clients[fd][2] = b""
        self.command(fd, line.decode("utf-8", "replace").strip(), rest)

    def write_stdin(self, data):
        if self.stdin_fd < 0:
            return
        try:
            os.write(self.stdin_fd, data)
        except OSError:
            pass

    def command(self, fd, line, rest):
        cmd, _, arg = line.partition(" ")
        if cmd == "kill":
            try:
                num = signum(arg or "SIGKILL")
            except ValueError as e:
                return self.reply(fd, f"error {e}")
            stopping = num in (9, self.stop_signum)
            if stopping:
                self.request_stop()
            if self.restart_at is not None:  # restarting: the stop cancels the restart
                return self.reply(fd, "ok" if stopping else "error container is restarting")
            if self.exit_code is not None:
                return self.reply(fd, "error container is not running")
            try:
                os.kill(self.pid, num)
            except OSError as e:
                return self.reply(fd, f"error {e}")
            if stopping and self.state["status"] == "paused":
                self.thaw_if_paused()  # so that it can act on the signal
                self.set_state()
            return self.reply(fd, "ok")
        if cmd == "stop":
            self.request_stop()
            return self.reply(fd, "ok")
        if cmd == "pause":
            return self.reply(fd, self.pause())
        if cmd == "unpause":
            return self.reply(fd, self.unpause())
        if cmd == "state":
            return self.reply(fd, dumps(self.state))
        if cmd == "wait":  # answered by finish(), once the output and state.json are written
            self.clients[fd][1] = "wait"
            self.waiters.append(fd)
            return
        if cmd == "resize":
            try:
                import fcntl
                import termios
                rows, cols = (int(x) for x in arg.split())
                if not self.tty:
                    raise ValueError("container has no tty")
                fcntl.ioctl(self.stdin_fd, termios.TIOCSWINSZ,
                            rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4))
            except (ValueError, OSError) as e:
                return self.reply(fd, f"error {e}")
            return self.reply(fd, "ok")
        if cmd == "attach":
            self.clients[fd][1] = "attach"
            return self.reply(fd, "ok", close=False)
        if cmd in ("stdin", "stdin-once"):
            if self.stdin_fd < 0:
                return self.reply(fd, "error stdin is not open")
            self.clients[fd][1] = cmd
            self.reply(fd, "ok", close=False)
            if rest:
                self.write_stdin(rest)
            return
        if cmd.startswith("exec"):
            return self.exec_command(fd, cmd, arg, rest)
        return self.reply(fd, "error unknown command")

    def send_clients(self, kind, data):
        frame = kind + len(data).to_bytes(4, "big") + data
        for fd, c in list(self.clients.items()):
            if c[1] != "attach":
                continue
            try:
                c[0].setblocking(True)
                c[0].settimeout(1.0)
                c[0].sendall(frame)
                c[0].setblocking(False)
            except OSError:
                self.close_client(fd)

    # -- exit --------------------------------------------------------------------------
    def finish(self):
        self.exec_shutdown()
        for kind in (b"1", b"2"):
            self.log(kind, b"", final=True)
        for fd in list(self.outputs):
            self.poller.unregister(fd)
            os.close(fd)
        self.outputs.clear()
        self.thaw_if_paused()
        code = self.exit_code
        self.write_state(sync=False, status="exited", exit_code=code,
                         finished_at=self.finished_at)
        mark(b"shim: state exited written")
        # local clients first (Runtime.wait, attach), then Redis: the event after state.json.
        # The socket goes only now: a client that finds it gone finds state.json exited.
        self.send_clients(b"x", b"%d" % code)
        for fd in list(self.waiters):
            self.reply(fd, f"exit {code}")
        for fd in list(self.clients):
            self.close_client(fd)
        self.listener.close()
        try:
            os.unlink(self.sock_path)
        except OSError:
            pass
        self.sync_state()
        self.publish_state()
        self.pub.publish(self.out_channel, b"x%d" % code)
        if self.pub.events:  # one last chance for the durable events
            self.pub.next_try = 0.0
            self.pub.flush()
        # reap anything left
        while True:
            try:
                if os.waitpid(-1, 0)[0] <= 0:
                    break
            except ChildProcessError:
                break
            except InterruptedError:
                continue


def main(argv):
    """``python -S -c SHIM_BOOT`` / ``-m``: never returns once the shim has started."""
    if len(argv) < 3:
        sys.stderr.write(__doc__.split("\n", 1)[0] + "\n")
        return 2
    open_trace(os.environ.get("DOCKYARD_SHIM_TRACE"))
    mark(b"shim: main()")
    cdir, redis_url, node = argv[0], argv[1], argv[2]
    status_fd = -1
    if len(argv) >= 5 and argv[3] == "--status-fd":
        status_fd = int(argv[4])
        os.set_inheritable(status_fd, False)
    return serve(os.path.abspath(cdir), redis_url, node, status_fd)


def serve(cdir, redis_url, node, status_fd, notify_fd=-1):
    """Start the container of ``cdir`` and serve it until it has exited. Returns 1 if
    it could not be started; on success the process ends with ``os._exit(0)`` (no
    interpreter teardown: the runtime waits for the shim to be gone before removing).
    ``notify_fd``: gets ``t`` once the start is reported (see the launcher)."""
    os.chdir(cdir)
    shim = Shim(cdir, redis_url, node, status_fd, notify_fd)
    try:
        if not shim.start():
            return 1
    except BaseException as e:
        if shim.pid:  # never leave a container without its shim
            try:
                os.kill(shim.pid, 9)
                os.waitpid(shim.pid, 0)
            except OSError:
                pass
        shim.fail(f"shim: {type(e).__name__}: {e}")
        raise
    shim.run()
    mark(b"shim: done")
    try:
        sys.stderr.flush()
    finally:
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
