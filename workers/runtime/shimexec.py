"""The shim's side of ``docker exec`` (a mixin of ``shim.Shim``; cheap builtins only).

Why the shim runs exec'd processes (and not a per-exec helper): see
``workers.runtime.execinit``. The shim forks E1, which imports ``execinit`` (ctypes: never
in the shim's own memory), joins the container's cgroups and namespaces and clones E2 as
the shim's child; the shim reaps E2 like the container's PID 1. Exec output is never
written to container.log nor published to the container's output channel (Docker does
neither): it goes to the client of that exec only.

Control socket commands (see ``workers.runtime.shim`` for the others):

``exec <json>``   start a process: ``{"id": <exec id>, "args": [...], "env": [...], "user":
                  "", "cwd": "", "tty": bool, "stdin": bool, "detach": bool, "rows": n,
                  "cols": n}``. Reply ``ok <pid>`` or ``error <code> <message>`` (code: the
                  exit code Docker reports, 126/127, or 409 when the container is not
                  running). ``detach``: stdio is /dev/null (a PTY that nobody reads with
                  tty), the connection closes after the reply. Otherwise it stays open,
                  framed both ways (1 byte kind + 4 byte big-endian length + payload):
                  shim -> client ``1`` stdout, ``2`` stderr, ``x`` exit code (decimal,
                  last frame); client -> shim ``0`` stdin bytes, ``c`` close stdin, ``r``
                  resize (payload ``"<rows> <cols>"``). If the client leaves, the process
                  keeps running and its output is discarded (Docker's behaviour).
``exec-resize <id> <rows> <cols>``  set an exec's PTY size; ``ok`` or ``error <msg>``.
``exec-state <id>``  ``running <pid>`` or ``error no such exec``.

When an exec's process has exited and its output is drained (at most ``EXEC_DRAIN``
seconds after the exit), its exit code goes to its client (``x``) and to Redis:
``XADD dockyard:events:<node> * exec <id> exit_code <n> time <t>``.
"""

import _socket
import os
import select
import time

EXEC_DRAIN = 1.0
FRAME_MAX = 1 << 20


class _Exec:
    __slots__ = ("id", "pid", "tty", "client", "outputs", "stdin_fd", "pending",
                 "close_stdin", "exit_code", "deadline")

    def __init__(self, eid, pid, tty):
        self.id = eid
        self.pid = pid
        self.tty = tty
        self.client = -1
        self.outputs = {}  # fd -> b"1"/b"2"
        self.stdin_fd = -1
        self.pending = b""
        self.close_stdin = False
        self.exit_code = None
        self.deadline = None


def _frame(kind, data):
    return kind + len(data).to_bytes(4, "big") + data


class ExecMixin:
    def init_execs(self):
        self.execs = {}  # exec id -> _Exec
        self.exec_fds = {}  # fd -> _Exec (its outputs and stdin)
        self.exec_pids = {}  # pid -> _Exec
        self.exec_clients = {}  # client fd -> _Exec

    # -- commands ----------------------------------------------------------------------
    def exec_command(self, fd, cmd, arg, rest):
        if cmd == "exec":
            return self.exec_start(fd, arg, rest)
        if cmd == "exec-resize":
            parts = arg.split()
            ex = self.execs.get(parts[0]) if parts else None
            if ex is None or ex.exit_code is not None:
                return self.reply(fd, "error no such exec")
            try:
                self.exec_resize(ex, " ".join(parts[1:]))
            except (ValueError, OSError) as e:
                return self.reply(fd, f"error {e}")
            return self.reply(fd, "ok")
        if cmd == "exec-state":
            ex = self.execs.get(arg.strip())
            if ex is None:
                return self.reply(fd, "error no such exec")
            return self.reply(fd, f"running {ex.pid}" if ex.exit_code is None
                              else f"exited {ex.exit_code}")
        return self.reply(fd, "error unknown command")

    def exec_start(self, fd, arg, rest):
        from .shim import loads

        if getattr(self, "restart_at", None) is not None:
            return self.reply(fd, f"error 409 Container {self.id} is restarting, wait until "
                              "the container is running")
        if self.exit_code is not None or not self.pid:
            return self.reply(fd, f"error 409 Container {self.id} is not running")
        if self.state.get("status") == "paused":
            return self.reply(fd, f"error 409 Container {self.id} is paused, unpause the "
                              "container before exec")
        try:
            spec = loads(arg)
            eid = spec["id"]
            args = spec["args"]
            if not isinstance(eid, str) or not eid or " " in eid or not isinstance(args, list) \
                    or not args or not all(isinstance(a, str) for a in args):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return self.reply(fd, "error 400 invalid exec spec")
        if eid in self.execs:
            return self.reply(fd, f"error 409 exec {eid} is already running")
        tty = bool(spec.get("tty"))
        detach = bool(spec.get("detach"))
        devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        console = console_child = None
        child_ends = [devnull]
        outputs = {}
        stdin_fd = -1
        if tty:
            console, console_child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
            stdio = (devnull, devnull, devnull)
        elif detach:
            stdio = (devnull, devnull, devnull)
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            outputs = {out_r: b"1", err_r: b"2"}
            child_ends += [out_w, err_w]
            in_r = devnull
            if spec.get("stdin"):
                in_r, stdin_fd = os.pipe()
                child_ends.append(in_r)
            stdio = (in_r, out_w, err_w)
        pid_r, pid_w = os.pipe()
        err_r, err_w = os.pipe()
        e1 = os.fork()
        if e1 == 0:
            try:
                from . import execinit

                if console is not None:
                    console.close()
                execinit.spawn(self.pid, spec, self.cfg, stdio, console_child, err_w, pid_w)
            finally:
                os._exit(126)
        for f in child_ends + [pid_w, err_w]:
            os.close(f)
        if console_child is not None:
            console_child.close()
        pid_raw = self._read_all(pid_r)
        error = self._read_all(err_r).decode("utf-8", "replace")
        try:
            os.waitpid(e1, 0)
        except ChildProcessError:
            pass
        pid = int(pid_raw) if pid_raw.isdigit() else 0
        master = -1
        if not error and not pid:
            error = "126 OCI runtime exec failed: exec failed: unable to start container " \
                    "process: the exec process died before exec: unknown"
        if not error and console is not None:
            master = self._recv_fd(console)
            if master < 0:
                error = "126 OCI runtime exec failed: exec failed: unable to start container " \
                        "process: no console: unknown"
        if console is not None:
            console.close()
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
            for f in list(outputs) + ([stdin_fd] if stdin_fd >= 0 else []):
                os.close(f)
            code, _, msg = error.partition(" ")
            if not code.isdigit():
                code, msg = "126", error
            return self.reply(fd, f"error {code} " + msg.replace("\n", " "))
        ex = _Exec(eid, pid, tty)
        if master >= 0:
            os.set_blocking(master, False)
            outputs = {master: b"1"}
            stdin_fd = master
        ex.outputs = outputs
        ex.stdin_fd = stdin_fd
        self.execs[eid] = ex
        self.exec_pids[pid] = ex
        for f in outputs:
            self.exec_fds[f] = ex
            self.poller.register(f, select.POLLIN)
        if stdin_fd >= 0 and stdin_fd not in outputs:
            os.set_blocking(stdin_fd, False)
            self.exec_fds[stdin_fd] = ex
        if detach:
            return self.reply(fd, f"ok {pid}")
        ex.client = fd
        self.exec_clients[fd] = ex
        self.clients[fd][1] = "exec"
        self.reply(fd, f"ok {pid}", close=False)
        if rest:
            self.exec_input(fd, rest)

    # -- I/O ---------------------------------------------------------------------------
    def exec_event(self, fd, ev):
        ex = self.exec_fds.get(fd)
        if ex is None:
            return
        if ev & select.POLLOUT:
            self.exec_flush(ex)
        if fd in ex.outputs and ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            try:
                data = os.read(fd, 65536)
            except BlockingIOError:
                return
            except OSError:  # EIO on a PTY master once the slave side is gone
                data = b""
            if data:
                self.exec_send(ex, ex.outputs[fd], data)
                return
            self.exec_close_output(ex, fd)
            self.exec_check(ex)
        elif fd == ex.stdin_fd and ev & (select.POLLERR | select.POLLHUP):
            ex.pending = b""
            self.exec_close_stdin(ex)

    def exec_close_output(self, ex, fd):
        del ex.outputs[fd]
        if fd == ex.stdin_fd:  # the PTY master: stdin goes with it
            ex.stdin_fd = -1
        self.exec_fds.pop(fd, None)
        try:
            self.poller.unregister(fd)
        except KeyError:
            pass
        os.close(fd)

    def exec_send(self, ex, kind, data):
        if ex.client < 0:
            return  # nobody attached: discarded
        c = self.clients.get(ex.client)
        if c is None:
            ex.client = -1
            return
        try:
            c[0].setblocking(True)
            c[0].settimeout(1.0)
            c[0].sendall(_frame(kind, data))
            c[0].setblocking(False)
        except OSError:
            self.close_client(ex.client)

    def exec_input(self, fd, data):
        """Frames from an exec's client: stdin, close stdin, resize."""
        ex = self.exec_clients.get(fd)
        if ex is None:
            return
        buf = self.clients[fd][2] + data
        while len(buf) >= 5:
            kind, size = buf[:1], int.from_bytes(buf[1:5], "big")
            if size > FRAME_MAX:
                return self.close_client(fd)
            if len(buf) < 5 + size:
                break
            payload, buf = buf[5:5 + size], buf[5 + size:]
            if kind == b"0":
                self.exec_write(ex, payload)
            elif kind == b"c":
                if not ex.tty:
                    ex.close_stdin = True
                    if not ex.pending:
                        self.exec_close_stdin(ex)
            elif kind == b"r":
                try:
                    self.exec_resize(ex, payload.decode("ascii", "replace"))
                except (ValueError, OSError):
                    pass
        if fd in self.clients:
            self.clients[fd][2] = buf

    def exec_write(self, ex, data):
        if ex.stdin_fd < 0 or ex.close_stdin:
            return
        if ex.pending:
            ex.pending += data
            return
        try:
            n = os.write(ex.stdin_fd, data)
        except BlockingIOError:
            n = 0
        except OSError:  # the reader is gone
            return
        if n < len(data):
            ex.pending = data[n:]
            self._exec_poll(ex.stdin_fd, ex, True)

    def exec_flush(self, ex):
        if ex.stdin_fd >= 0 and ex.pending:
            try:
                n = os.write(ex.stdin_fd, ex.pending)
            except BlockingIOError:
                n = 0
            except OSError:
                n = len(ex.pending)
            ex.pending = ex.pending[n:]
        if not ex.pending:
            if ex.stdin_fd >= 0:
                self._exec_poll(ex.stdin_fd, ex, False)
            if ex.close_stdin:
                self.exec_close_stdin(ex)

    def _exec_poll(self, fd, ex, want_out):
        mask = select.POLLIN if fd in ex.outputs else 0
        if want_out:
            mask |= select.POLLOUT
        try:
            if mask:
                self.poller.register(fd, mask)  # register also modifies
            else:
                self.poller.unregister(fd)
        except KeyError:
            pass

    def exec_close_stdin(self, ex):
        fd = ex.stdin_fd
        if fd < 0 or ex.tty:
            return
        ex.stdin_fd = -1
        self.exec_fds.pop(fd, None)
        try:
            self.poller.unregister(fd)
        except KeyError:
            pass
        os.close(fd)

    def exec_resize(self, ex, arg):
        import fcntl
        import termios

        rows, cols = (int(x) for x in arg.split())
        if not ex.tty or ex.stdin_fd < 0:
            raise ValueError("exec has no tty")
        fcntl.ioctl(ex.stdin_fd, termios.TIOCSWINSZ,
                    rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4))

    def exec_client_gone(self, fd):
        ex = self.exec_clients.pop(fd, None)
        if ex is not None and ex.client == fd:
            ex.client = -1
            if not ex.tty and ex.exit_code is None:  # Docker closes stdin with the stream
                ex.close_stdin = True
                ex.pending = b""
                self.exec_close_stdin(ex)

    # -- exit --------------------------------------------------------------------------
    def exec_exited(self, pid, status):
        ex = self.exec_pids.pop(pid, None)
        if ex is None:
            return
        code = os.waitstatus_to_exitcode(status)
        ex.exit_code = 128 - code if code < 0 else code
        ex.deadline = time.monotonic() + EXEC_DRAIN
        self.exec_check(ex)

    def exec_check(self, ex):
        if ex.exit_code is not None and not ex.outputs:
            self.exec_done(ex)

    def exec_timeout(self):
        """Milliseconds until the next exec's drain deadline, or None."""
        deadlines = [ex.deadline for ex in self.execs.values() if ex.deadline is not None]
        if not deadlines:
            return None
        return max(0, int((min(deadlines) - time.monotonic()) * 1000) + 1)

    def exec_expire(self):
        t = time.monotonic()
        for ex in list(self.execs.values()):
            if ex.deadline is not None and ex.deadline <= t:
                self.exec_done(ex)

    def exec_done(self, ex):
        if self.execs.pop(ex.id, None) is None:
            return
        for fd in list(ex.outputs):
            self.exec_close_output(ex, fd)
        ex.pending = b""
        self.exec_close_stdin(ex)
        if ex.stdin_fd >= 0:
            self.exec_fds.pop(ex.stdin_fd, None)
        code = ex.exit_code if ex.exit_code is not None else 137
        if ex.client >= 0:
            fd, ex.client = ex.client, -1
            self.exec_send_final(fd, code)
        from .shim import now

        self.pub.event("dockyard:events:" + self.node, [
            ("exec", ex.id), ("exit_code", str(code)), ("time", now())])

    def exec_send_final(self, fd, code):
        c = self.clients.get(fd)
        if c is None:
            return
        try:
            c[0].setblocking(True)
            c[0].settimeout(1.0)
            c[0].sendall(_frame(b"x", b"%d" % code))
        except OSError:
            pass
        self.exec_clients.pop(fd, None)
        self.close_client(fd)

    def exec_shutdown(self):
        """The container has exited: the kernel killed its exec'd processes; report them."""
        for ex in list(self.execs.values()):
            if ex.exit_code is None:
                try:
                    _, status = os.waitpid(ex.pid, 0)
                    code = os.waitstatus_to_exitcode(status)
                    ex.exit_code = 128 - code if code < 0 else code
                except ChildProcessError:
                    ex.exit_code = 137
                self.exec_pids.pop(ex.pid, None)
            for fd in list(ex.outputs):  # what is still buffered
                try:
                    while True:
                        data = os.read(fd, 65536)
                        if not data:
                            break
                        self.exec_send(ex, ex.outputs[fd], data)
                except OSError:
                    pass
            self.exec_done(ex)
