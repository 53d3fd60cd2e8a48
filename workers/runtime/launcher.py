"""The node's shim launcher (a zygote): ``python -S -c "$LAUNCHER_BOOT" <state_root>``.

Spawning a shim as a fresh interpreter costs ~15 ms (interpreter start-up, imports). The
launcher is a small long-lived process that has ``workers.runtime.shim`` and
``workers.runtime.nsinit`` imported and keeps one forked *spare* child waiting in
``accept()`` on its socket; the spare that takes a request detaches into its own session
(``setsid``), becomes that container's shim and clones the container's PID 1 itself (no
intermediate process, no imports); the launcher then forks the next spare. Shims do not
depend on the launcher: killing it leaves them running (they are reparented to init; while
it lives, the kernel reaps them for it: SIGCHLD is ignored), and a waiting spare exits
with it. The launcher imports nothing else: a forked shim shares its pages, and its RSS
counts them (about 9 MB with ctypes, see bench/bench_runtime.py --rss).

It is optional. ``Runtime.start`` uses it when it answers and otherwise spawns the shim
directly and (re)spawns the launcher in the background for the next start. One launcher
per state root: it holds an exclusive flock on ``<root>/launcher.lock`` (which also holds
its pid) and listens on ``<root>/launcher.sock`` (mode 0600; peers must have our uid).
It exits when its socket is removed or replaced, when the state root disappears, after
``IDLE_EXIT`` seconds without a request, on SIGTERM, and when a request carries another
code version (``code_token``: the runtime's files changed, e.g. after a deploy).

Protocol (one connection per shim): the client sends
``start\\0<token>\\0<container dir>\\0<redis url>\\0<node>\\0<trace file or "">\\n``; the
spare answers ``ready\\n`` (or ``stale\\n``/``error <msg>\\n``), the client confirms
with ``go\\n`` (a client that gave up closes instead, and nothing is started), then the
spare becomes the container's shim and sends the status line of ``--status-fd`` (see
``workers.runtime.shim``) on the same connection.
"""

import _signal
import _socket
import os
import select
import sys
import time

from . import (
    nsinit,  # noqa: F401 - preloaded: a forked shim clones PID 1 itself
    shim,
)

SOCK = "launcher.sock"
LOCK = "launcher.lock"
LOG = "launcher.log"
CHECK_SECONDS = 2.0
SPARE_DELAY = 0.05  # the longest we leave a taken spare unreplaced  # how often an idle launcher checks that its socket is still its own
IDLE_EXIT = 3600.0
REQUEST_TIMEOUT = 5.0
TITLE = b"workers.runtime.shim "  # the cmdline a forked shim shows (ps, pgrep -f)
# the files whose change makes a running launcher stale (its shims would run old code)
CODE_FILES = ("__init__.py", "shim.py", "redisclient.py", "nsinit.py", "linux.py", "launcher.py",
              "shimexec.py", "execinit.py", "security.py", "mounts.py", "volumes.py", "userns.py")


def code_token(python):
    """Identifies the interpreter and the shim code that a launcher runs."""
    here = os.path.dirname(os.path.abspath(__file__))
    parts = [os.path.realpath(python)]
    for name in CODE_FILES:
        try:
            st = os.stat(os.path.join(here, name))
            parts.append(f"{name}:{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append(name + ":-")
    return "|".join(parts)


def set_title(title):
    """Rewrite our command line (/proc/<pid>/cmdline, ps) in place, within the room that
    the original argv strings take. Python keeps its own copies of argv."""
    try:
        with open("/proc/self/stat", "rb") as f:
            data = f.read()
        fields = data[data.rindex(b")") + 2:].split()
        start, end = int(fields[45]), int(fields[46])  # arg_start, arg_end
        room = end - start
        if room <= 1:
            return
        title = title[:room - 1]
        fd = os.open("/proc/self/mem", os.O_RDWR | os.O_CLOEXEC)
        try:
            os.pwrite(fd, title + b"\0" * (room - len(title)), start)
        finally:
            os.close(fd)
    except (OSError, ValueError, IndexError):
        pass  # cosmetic only


def _recv_line(conn, timeout):
    """One line (without the newline) from the blocking socket ``conn``; b"" on EOF."""
    conn.settimeout(timeout)
    buf = b""
    while b"\n" not in buf:
        data = conn.recv(4096)
        if not data:
            return b""
        buf += data
        if len(buf) > 65536:
            return b""
    return buf.split(b"\n", 1)[0]


class Launcher:
    def __init__(self, root):
        self.root = root
        self.pid = os.getpid()
        self.token = code_token(sys.executable)
        self.listener = None
        self.lock_fd = -1
        self.sock_ino = None

    def setup(self):
        """False if another launcher holds the lock."""
        import fcntl  # small builtin module; the shim does not need it

        os.chdir(self.root)
        self.lock_fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        for _ in range(20):  # an outdated launcher we replace may still be exiting
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(0.05)
        else:
            return False
        os.ftruncate(self.lock_fd, 0)
        os.pwrite(self.lock_fd, b"%d\n" % self.pid, 0)
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        tmp = f"{SOCK}.{self.pid}"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        s.bind(tmp)  # relative: sun_path is limited to 107 bytes
        os.chmod(tmp, 0o600)
        s.listen(64)
        os.rename(tmp, SOCK)  # atomically replaces a stale socket
        self.sock_ino = os.stat(SOCK).st_ino
        self.listener = s
        return True

    def still_ours(self):
        try:
            return os.stat(SOCK).st_ino == self.sock_ino and os.path.samestat(
                os.stat("."), os.stat(self.root))
        except OSError:
            return False

    def run(self):
        """Keep one spare child waiting in accept(). A spare that takes a connection
        tells us (``a`` on the ``taken`` pipe) and, once its container has started
        (or failed to), ``t``: only then we fork the next spare, so that the fork does
        not compete with the shim's start (page faults on the pages it shares with us)
        unless a connection waits, or ``SPARE_DELAY`` has passed, or the spare died."""
        taken_r, self.taken_w = os.pipe()
        self.alive_r, alive_w = os.pipe()  # EOF in the spare: we are gone
        listener = self.listener.fileno()
        spare_fd = -1  # pidfd of the spare waiting in accept(), if any
        due = time.monotonic()  # without a spare: when to fork the next one
        last = due
        try:
            while True:
                now = time.monotonic()
                if spare_fd < 0 and now >= due:
                    sys.stderr.flush()
                    pid = os.fork()
                    if pid == 0:
                        os.close(alive_w)
                        os.close(taken_r)
                        self.spare()  # never returns
                    spare_fd = os.pidfd_open(pid)
                poller = select.poll()
                poller.register(taken_r, select.POLLIN)
                if spare_fd >= 0:
                    poller.register(spare_fd, select.POLLIN)
                    timeout = CHECK_SECONDS
                else:
                    poller.register(listener, select.POLLIN)
                    timeout = max(0.0, due - now)
                try:
                    ready = poller.poll(timeout * 1000)
                except InterruptedError:
                    continue
                if not ready and spare_fd >= 0:
                    if not self.still_ours() or time.monotonic() - last > IDLE_EXIT:
                        return
                    continue
                for fd, _ev in ready:
                    now = time.monotonic()
                    if fd == taken_r:
                        data = os.read(taken_r, 64)
                        last = now
                        if b"a" in data and spare_fd >= 0:  # taken: serve the next soon
                            os.close(spare_fd)
                            spare_fd = -1
                            due = now + SPARE_DELAY
                        if b"t" in data:
                            due = now
                    elif fd == spare_fd:  # died while waiting
                        os.close(spare_fd)
                        spare_fd = -1
                        due = now
                    elif fd == listener:  # a connection waits for a spare
                        due = now
        finally:
            os.close(alive_w)  # a waiting spare exits; give it a moment to do so
            if spare_fd >= 0:
                select.select([spare_fd], [], [], 1.0)

    def spare(self):
        """In a forked child: wait for a connection (or our parent's end), then become
        the shim of the container it names."""
        code = 1
        try:
            _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
            _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
            os.close(self.lock_fd)
            os.setsid()
            poller = select.poll()
            poller.register(self.listener.fileno(), select.POLLIN)
            poller.register(self.alive_r, select.POLLIN)
            while True:
                ready = dict(poller.poll())
                if self.alive_r in ready:
                    code = 0
                    return
                try:
                    cfd, _ = self.listener._accept()
                except OSError:
                    continue
                conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, cfd)
                cred = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
                if int.from_bytes(cred[4:8], sys.byteorder) == os.geteuid():
                    break
                conn.close()
            os.write(self.taken_w, b"a")
            os.close(self.alive_r)
            self.listener.close()
            code = self.become_shim(conn)
        except BaseException:  # noqa: B036 - report anything, never return into the loop
            try:
                sys.excepthook(*sys.exc_info())
            except BaseException:  # noqa: B036
                pass
        finally:
            os._exit(code)

    def become_shim(self, conn):
        conn.setblocking(True)
        line = _recv_line(conn, REQUEST_TIMEOUT)
        fields = line.decode("utf-8", "surrogateescape").split("\0")
        if len(fields) != 6 or fields[0] != "start":
            conn.sendall(b"error bad request\n")
            return 1
        _, token, cdir, redis_url, node, trace = fields
        if token != self.token:
            conn.sendall(b"stale\n")
            try:
                os.kill(self.pid, _signal.SIGTERM)  # replaced by a fresh launcher
            except OSError:
                pass
            return 1
        containers = os.path.join(self.root, "containers")
        name = os.path.basename(cdir)
        if os.path.dirname(cdir) != containers or len(name) != 64 or any(
                c not in "0123456789abcdef" for c in name):
            conn.sendall(b"error bad container directory\n")
            return 1
        conn.sendall(b"ready\n")
        if _recv_line(conn, REQUEST_TIMEOUT) != b"go":
            return 1  # the client gave up (and may have started the shim itself)
        conn.settimeout(None)
        # the fds of a directly spawned shim: /dev/null, /dev/null, shim.log
        null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        log = os.open(os.path.join(cdir, "shim.log"),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log, 2)
        os.close(null)
        os.close(log)
        set_title(TITLE + cdir.encode("utf-8", "surrogateescape"))
        shim.open_trace(trace)
        shim.mark(b"shim: forked by the launcher")
        status_fd = conn.detach()  # close-on-exec: the container does not inherit it
        return shim.serve(cdir, redis_url, node, status_fd, notify_fd=self.taken_w)


def main(argv):
    if len(argv) != 1 or not os.path.isabs(argv[0]):
        sys.stderr.write("usage: launcher <state root>\n")
        return 2
    os.umask(0o022)
    # our children are shims: the kernel reaps them (no zombies), and reparents them to
    # init or a subreaper if we die; they reset this in their first instruction
    _signal.signal(_signal.SIGCHLD, _signal.SIG_IGN)
    _signal.signal(_signal.SIGTERM, _terminate)
    launcher = Launcher(argv[0])
    if not launcher.setup():
        return 0  # another launcher serves this root
    try:
        launcher.run()
    except SystemExit:
        pass
    sys.stderr.flush()
    os._exit(0)  # no teardown needed


def _terminate(signum, frame):
    raise SystemExit(0)  # run() stops its spare on the way out
