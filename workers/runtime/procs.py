"""What runs in a container, as ``docker top`` shows it; and how big its writable layer is.

Node-side (no Django): ``container_pids()`` finds the container's processes by their PID
namespace (the inode of ``/proc/<pid>/ns/pid``, compared with the container's PID 1), or,
for a container that shares the node's or another container's PID namespace, as its
process and that process's descendants. ``top()`` emulates the common ``ps`` option sets
(default ``-ef``; ``aux``; ``-f``/``-F``; ``-o``/``o`` field lists) with psutil and /proc,
never by running ``ps``. Unknown options raise ``PsError``.
"""

from __future__ import annotations

import grp
import os
import pwd
import time

import psutil

DEFAULT_ARGS = "-ef"


class PsError(ValueError):
    """Unsupported ps options (the API answers 500 with this message, as Docker does)."""


# ------------------------------------------------------------------------ selection

def _ns(pid: int) -> tuple[int, int] | None:
    try:
        st = os.stat(f"/proc/{pid}/ns/pid")
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _nspid(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return [int(x) for x in line.split()[1:]]
    except OSError:
        pass
    return []


def container_pids(pid: int) -> list[int]:
    """Host pids of the processes of the container whose (first) process is ``pid``."""
    ns = _ns(pid)
    if ns is None:
        return []
    nspid = _nspid(pid)
    if len(nspid) > 1 and nspid[-1] == 1:  # the container's own PID namespace
        found = [p for p in psutil.pids() if _ns(p) == ns]
        return sorted(found)
    try:  # --pid host or container:<id>: its process tree
        proc = psutil.Process(pid)
        return sorted([pid] + [c.pid for c in proc.children(recursive=True)])
    except psutil.Error:
        return []


def size_rw(upper: str) -> int:
    """Bytes of the files in a container's writable layer (Docker's SizeRw: directories
    and empty files do not count, hard links count once)."""
    total, seen = 0, set()
    for root, _dirs, files in os.walk(upper):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if st.st_size == 0 or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


# ------------------------------------------------------------------------ ps emulation

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _boot_time() -> float:
    return psutil.boot_time()


class _P:
    """One process's data, read once."""

    def __init__(self, pid: int):
        self.pid = pid
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        self.comm = data[data.index(b"(") + 1:data.rindex(b")")].decode("utf-8", "replace")
        f_ = data[data.rindex(b")") + 2:].split()
        self.state = f_[0].decode()
        self.ppid, self.pgrp, self.session = int(f_[1]), int(f_[2]), int(f_[3])
        self.tty_nr, self.tpgid = int(f_[4]), int(f_[5])
        self.utime, self.stime = int(f_[11]) / _CLK_TCK, int(f_[12]) / _CLK_TCK
        self.priority, self.nice, self.nlwp = int(f_[15]), int(f_[16]), int(f_[17])
        self.start = _boot_time() + int(f_[19]) / _CLK_TCK
        self.vsz = int(f_[20]) // 1024
        self.rss = int(f_[21]) * _PAGE // 1024
        self.psr = int(f_[36]) if len(f_) > 36 else 0
        try:
            proc = psutil.Process(pid)
            self.uids = proc.uids()
            self.gids = proc.gids()
            self.cmdline = proc.cmdline()
        except psutil.Error:
            self.uids = self.gids = (0, 0, 0)
            self.cmdline = []
        self.locked = False
        try:
            with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("VmLck:") and int(line.split()[1]) > 0:
                        self.locked = True
        except (OSError, ValueError):
            pass

    @property
    def cputime(self) -> float:
        return self.utime + self.stime

    def elapsed(self, now: float) -> float:
        return max(now - self.start, 0.0)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _short_user(uid: int) -> str:
    """ps shows a name longer than 8 characters as the number (-f) ."""
    name = _user(uid)
    return name if len(name) <= 8 else str(uid)


def _tty(nr: int) -> str:
    if nr == 0:
        return "?"
    major, minor = os.major(nr), os.minor(nr)
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}" if minor < 64 else f"ttyS{minor - 64}"
    if major == 5 and minor == 1:
        return "console"
    return "?"


def _cputime(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    text = f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{days}-{text}" if days else text


def _bsdtime(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


def _etime(seconds: float) -> str:
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{s:02d}"
    if hours:
        return f"{hours:02d}:{minutes:02d}:{s:02d}"
    return f"{minutes:02d}:{s:02d}"


def _stime(start: float, now: float) -> str:
    """ps -f STIME: HH:MM today, MonDD this year, else the year."""
    t, n = time.localtime(start), time.localtime(now)
    if (t.tm_year, t.tm_yday) == (n.tm_year, n.tm_yday):
        return time.strftime("%H:%M", t)
    if t.tm_year == n.tm_year:
        return time.strftime("%b%d", t)
    return str(t.tm_year)


def _start(start: float, now: float) -> str:
    """ps u START: HH:MM within 24 hours, MonDD within a year, else the year."""
    t = time.localtime(start)
    if now - start < 86400:
        return time.strftime("%H:%M", t)
    if now - start < 365 * 86400:
        return time.strftime("%b%d", t)
    return str(t.tm_year)


def _stat(p: _P) -> str:
    out = p.state
    if p.nice < 0:
        out += "<"
    elif p.nice > 0:
        out += "N"
    if p.locked:
        out += "L"
    if p.session == p.pid:
        out += "s"
    if p.nlwp > 1:
        out += "l"
    if p.tpgid >= 0 and p.tpgid == p.pgrp:
        out += "+"
    return out


def _pcpu(p: _P, now: float) -> float:
    elapsed = p.elapsed(now)
    # truncated to tenths, as ps does
    return 0.0 if elapsed <= 0 else int(p.cputime / elapsed * 1000.0) / 10.0


def _args(p: _P) -> str:
    if p.cmdline:
        return " ".join(p.cmdline)
    return f"[{p.comm}]"


_MEM_TOTAL = None


def _pmem(p: _P) -> float:
    global _MEM_TOTAL
    if _MEM_TOTAL is None:
        _MEM_TOTAL = psutil.virtual_memory().total // 1024
    return int(p.rss * 1000.0 / _MEM_TOTAL) / 10.0 if _MEM_TOTAL else 0.0


# name -> (header, value(p, now))
FIELDS = {
    "pid": ("PID", lambda p, n: str(p.pid)),
    "ppid": ("PPID", lambda p, n: str(p.ppid)),
    "pgid": ("PGID", lambda p, n: str(p.pgrp)),
    "pgrp": ("PGRP", lambda p, n: str(p.pgrp)),
    "sid": ("SID", lambda p, n: str(p.session)),
    "sess": ("SESS", lambda p, n: str(p.session)),
    "uid": ("UID", lambda p, n: str(p.uids[1])),
    "euid": ("EUID", lambda p, n: str(p.uids[1])),
    "ruid": ("RUID", lambda p, n: str(p.uids[0])),
    "user": ("USER", lambda p, n: _user(p.uids[1])),
    "euser": ("EUSER", lambda p, n: _user(p.uids[1])),
    "ruser": ("RUSER", lambda p, n: _user(p.uids[0])),
    "uname": ("USER", lambda p, n: _user(p.uids[1])),
    "gid": ("GID", lambda p, n: str(p.gids[1])),
    "egid": ("EGID", lambda p, n: str(p.gids[1])),
    "group": ("GROUP", lambda p, n: _group(p.gids[1])),
    "egroup": ("EGROUP", lambda p, n: _group(p.gids[1])),
    "comm": ("COMMAND", lambda p, n: p.comm),
    "ucomm": ("COMMAND", lambda p, n: p.comm),
    "fname": ("COMMAND", lambda p, n: p.comm[:8]),
    "args": ("COMMAND", lambda p, n: _args(p)),
    "command": ("COMMAND", lambda p, n: _args(p)),
    "cmd": ("CMD", lambda p, n: _args(p)),
    "%cpu": ("%CPU", lambda p, n: f"{_pcpu(p, n):.1f}"),
    "pcpu": ("%CPU", lambda p, n: f"{_pcpu(p, n):.1f}"),
    "c": ("C", lambda p, n: str(int(_pcpu(p, n)))),
    "%mem": ("%MEM", lambda p, n: f"{_pmem(p):.1f}"),
    "pmem": ("%MEM", lambda p, n: f"{_pmem(p):.1f}"),
    "vsz": ("VSZ", lambda p, n: str(p.vsz)),
    "vsize": ("VSZ", lambda p, n: str(p.vsz)),
    "rss": ("RSS", lambda p, n: str(p.rss)),
    "rssize": ("RSS", lambda p, n: str(p.rss)),
    "rsz": ("RSZ", lambda p, n: str(p.rss)),
    "sz": ("SZ", lambda p, n: str(p.vsz * 1024 // _PAGE)),
    "stat": ("STAT", lambda p, n: _stat(p)),
    "s": ("S", lambda p, n: p.state),
    "state": ("S", lambda p, n: p.state),
    "tty": ("TT", lambda p, n: _tty(p.tty_nr)),
    "tt": ("TT", lambda p, n: _tty(p.tty_nr)),
    "tname": ("TTY", lambda p, n: _tty(p.tty_nr)),
    "time": ("TIME", lambda p, n: _cputime(p.cputime)),
    "cputime": ("TIME", lambda p, n: _cputime(p.cputime)),
    "bsdtime": ("TIME", lambda p, n: _bsdtime(p.cputime)),
    "etime": ("ELAPSED", lambda p, n: _etime(p.elapsed(n))),
    "etimes": ("ELAPSED", lambda p, n: str(int(p.elapsed(n)))),
    "stime": ("STIME", lambda p, n: _stime(p.start, n)),
    "start_time": ("START", lambda p, n: _stime(p.start, n)),
    "start": ("STARTED", lambda p, n: _start(p.start, n)),
    "bsdstart": ("START", lambda p, n: _start(p.start, n)),
    "lstart": ("STARTED", lambda p, n: time.strftime("%a %b %e %H:%M:%S %Y",
                                                      time.localtime(p.start))),
    "nlwp": ("NLWP", lambda p, n: str(p.nlwp)),
    "thcount": ("THCNT", lambda p, n: str(p.nlwp)),
    "ni": ("NI", lambda p, n: str(p.nice)),
    "nice": ("NI", lambda p, n: str(p.nice)),
    "pri": ("PRI", lambda p, n: str(p.priority)),
    "psr": ("PSR", lambda p, n: str(p.psr)),
}
# a header of the -f/u formats that differs from the field's own
_FULL = [("uid_name", "UID"), ("pid", None), ("ppid", None), ("c", None), ("stime", None),
         ("tname", None), ("time", None), ("cmd", None)]
_EXTRA_FULL = [("uid_name", "UID"), ("pid", None), ("ppid", None), ("c", None), ("sz", None),
               ("rss", None), ("psr", None), ("stime", None), ("tname", None), ("time", None),
               ("cmd", None)]
_USER = [("user", None), ("pid", None), ("%cpu", None), ("%mem", None), ("vsz", None),
         ("rss", None), ("tname", None), ("stat", None), ("bsdstart", None), ("bsdtime", None),
         ("command", None)]
_DEFAULT = [("pid", None), ("tname", None), ("time", None), ("cmd", None)]
_BSD_DEFAULT = [("pid", None), ("tname", None), ("stat", None), ("bsdtime", None),
                ("command", None)]
FIELDS["uid_name"] = ("UID", lambda p, n: _short_user(p.uids[1]))


def _format_list(text: str) -> list[tuple[str, str | None]]:
    """'pid,comm' / 'pid=PROCESS' / 'user:12' -> [(field, header or None)]."""
    out = []
    # "name=header" takes the rest of its argument as the header (ps's rule)
    items = []
    rest = text
    while rest:
        head, sep, tail = rest.partition(",")
        if "=" in head:
            items.append(rest)
            break
        items.append(head)
        rest = tail if sep else ""
    for item in items:
        item = item.strip()
        if not item:
            continue
        name, eq, header = item.partition("=")
        name = name.split(":", 1)[0].lower()
        if name not in FIELDS:
            raise PsError(f"ps: error: unknown user-defined format specifier \"{name}\"")
        out.append((name, header if eq else None))
    if not out:
        raise PsError("ps: error: improper list")
    return out


def parse_args(ps_args: str) -> list[tuple[str, str | None]]:
    """The columns that ``ps <ps_args>`` would print (selection options are ignored:
    the processes are the container's)."""
    tokens = (ps_args or "").split() or DEFAULT_ARGS.split()
    columns: list[tuple[str, str | None]] = []
    fmt = None
    bsd = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        if tok.startswith("--"):
            name, eq, value = tok[2:].partition("=")
            if name in ("format", "cols", "columns", "width", "lines", "rows", "sort"):
                if not eq:
                    if i >= len(tokens):
                        raise PsError(f"ps: error: option --{name} needs an argument")
                    value = tokens[i]
                    i += 1
                if name == "format":
                    columns += _format_list(value)
                continue
            raise PsError(f"ps: error: unsupported option (GNU syntax): {tok}")
        dash = tok.startswith("-")
        letters = tok[1:] if dash else tok
        if not dash:
            bsd = True
        j = 0
        while j < len(letters):
            ch = letters[j]
            j += 1
            if ch == "o" or (dash and ch == "O"):
                value = letters[j:]
                if not value:
                    if i >= len(tokens):
                        raise PsError("ps: error: format specification must follow o")
                    value = tokens[i]
                    i += 1
                columns += _format_list(value)
                break
            if dash and ch in "eAadNTwH":
                continue
            if dash and ch == "f":
                fmt = fmt or "full"
                continue
            if dash and ch == "F":
                fmt = "extra"
                continue
            if not dash and ch in "axwhgeTrcfH":
                continue
            if not dash and ch == "u":
                fmt = "user"
                continue
            syntax = "standard" if dash else "BSD"
            raise PsError(f"ps: error: unsupported option ({syntax} syntax): {tok}")
    if columns:
        return columns
    if fmt == "full":
        return _FULL
    if fmt == "extra":
        return _EXTRA_FULL
    if fmt == "user":
        return _USER
    return _BSD_DEFAULT if bsd else _DEFAULT


def top(pids: list[int], ps_args: str = "") -> dict:
    """Docker's ContainerTopOKBody: {"Titles": [...], "Processes": [[...], ...]}."""
    columns = parse_args(ps_args)
    titles = [header if header is not None else FIELDS[name][0] for name, header in columns]
    if "PID" not in titles:
        raise PsError("Couldn't find PID field in ps output")
    now = time.time()
    rows = []
    for pid in sorted(pids):
        try:
            p = _P(pid)
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
        rows.append([FIELDS[name][1](p, now) for name, _ in columns])
    return {"Titles": titles, "Processes": rows}
