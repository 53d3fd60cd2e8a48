"""Where COPY and ADD read from, and the layer tars they write.

- ``unpack(src, dest)``: a context tar (plain, gzip, bzip2, xz) unpacked with the image
  store's safe unpacker rules (no absolute or ``..`` paths, no links out); device nodes and
  whiteout names are refused.
- ``Context(root)``: the unpacked context with ``.dockerignore`` applied as the docker CLI
  applies it (Go filepath.Match patterns, ``**``, ``!`` exceptions, a match on a parent dir
  excludes what is inside). ``RootFS(layer_dirs)``: an image's merged view read straight from
  its layer dirs (whiteouts, opaque dirs), for ``COPY --from`` and for what a step's
  destination already holds. Both answer lstat/listdir/path on relative paths.
- ``resolve(fs, rel)``: symlinks followed inside that filesystem's root; ``glob(fs, pattern)``.
- ``Entry`` lists are what a COPY/ADD step adds; ``content_hash`` (names, kinds, modes,
  owners, contents, link targets; not times) keys the build cache; ``write_layer`` makes
  the layer tar.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tarfile
from dataclasses import dataclass

from ..archive import opaque_dir
from ..images import WHITEOUT_PREFIX, ImageError, _clean_name, _Unpacker

_CHUNK = 1 << 20
_MAX_SYMLINKS = 40


class ContextError(ImageError):
    http_status = 400


# -- unpacking a context ----------------------------------------------------------------

def unpack(src, dest: str, *, max_size: int | None = None) -> None:
    """Unpack a context tar (a path or a binary stream) into the existing dir ``dest``."""
    own = isinstance(src, (str, os.PathLike))
    f = open(src, "rb") if own else src
    try:
        with tarfile.open(fileobj=f, mode="r|*") as tf:
            unpacker = _Unpacker(dest, max_size)
            for member in _members(tf):
                base = member.name.rstrip("/").rsplit("/", 1)[-1]
                if member.ischr() or member.isblk():
                    raise ContextError(f"invalid build context: device node {member.name!r}")
                if base.startswith(WHITEOUT_PREFIX):
                    raise ContextError(f"invalid build context: reserved name {member.name!r}")
                unpacker.extract(tf, member)
            for path, mtime in reversed(unpacker.dir_times):
                os.utime(path, (mtime, mtime), follow_symlinks=False)
    except tarfile.TarError as e:
        raise ContextError(f"invalid build context: {e}") from None
    finally:
        if own:
            f.close()


def _members(tf: tarfile.TarFile):
    """The members of a streamed tar. A stream that ends right after the last member's data
    (no padding, no end blocks) ends the archive, as in Go's tar reader: the docker CLI sends
    such a tar for `docker build -f- <dir>` (it closes the pipe before the tar writer)."""
    members = iter(tf)
    data_end = None
    while True:
        try:
            member = next(members)
        except StopIteration:
            return
        except tarfile.ReadError:
            if data_end is not None and tf.fileobj.tell() == data_end:
                return
            raise
        data_end = member.offset_data + member.size
        yield member


# -- .dockerignore ------------------------------------------------------------------------

def read_dockerignore(root: str) -> list[str]:
    """The patterns of ``root/.dockerignore`` as Docker's dockerignore.ReadAll reads them."""
    try:
        with open(os.path.join(root, ".dockerignore"), encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    patterns = []
    for line in lines:
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = os.path.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern.lstrip("/")
        patterns.append(("!" if invert else "") + pattern)
    return patterns


class Matcher:
    """Docker's fileutils.PatternMatcher."""

    def __init__(self, patterns: list[str]):
        self.patterns: list[tuple[bool, re.Pattern, int, str]] = []
        for pattern in patterns:
            exclusion = pattern.startswith("!")
            if exclusion:
                pattern = pattern[1:]
                if not pattern:
                    raise ContextError('illegal exclusion pattern: "!"')
            pattern = os.path.normpath(pattern)
            self.patterns.append((exclusion, _ignore_regex(pattern), len(pattern.split("/")),
                                  pattern))

    def matches(self, rel: str) -> bool:
        parent = os.path.dirname(rel)
        parent_dirs = parent.split("/") if parent else []
        matched = False
        for exclusion, regex, ndirs, _pattern in self.patterns:
            match = bool(regex.match(rel))
            if not match and parent and ndirs <= len(parent_dirs):
                match = bool(regex.match("/".join(parent_dirs[:ndirs])))
            if match:
                matched = not exclusion
        return matched

    def may_include_under(self, rel: str) -> bool:
        """Whether an exception could bring back something under the excluded dir ``rel``
        (the CLI's test before it skips a dir)."""
        return any(exclusion and (pattern + "/").startswith(rel + "/")
                   for exclusion, _r, _n, pattern in self.patterns) or any(
            exclusion and "**" in pattern for exclusion, _r, _n, pattern in self.patterns)


def _ignore_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern: Go's filepath.Match, plus `**` for any number of dirs."""
    return _go_match_regex(pattern, double_star=True)


def _match_regex(pattern: str) -> re.Pattern:
    """Go's filepath.Match for one path component."""
    return _go_match_regex(pattern, double_star=False)


def _go_match_regex(pattern: str, *, double_star: bool) -> re.Pattern:
    out, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if double_star and i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                out += ".*" if i == len(pattern) else "(.*/)?"
            else:
                out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ContextError(f"syntax error in pattern {pattern!r}")
            out += "[" + pattern[i:end].replace("\\", "\\\\") + "]"
            i = end + 1
        elif ch == "\\" and i < len(pattern):
            out += re.escape(pattern[i])
            i += 1
        else:
            out += re.escape(ch)
    return re.compile(out + r"\Z", re.S)


# -- source filesystems -------------------------------------------------------------------

class Context:
    """A directory; ``ignore``: with its .dockerignore applied (a build context), else as
    it is (an unpacked ADD archive, a download)."""

    def __init__(self, root: str, ignore: bool = True):
        self.root = os.path.abspath(root)
        self.matcher = Matcher(read_dockerignore(self.root) if ignore else [])

    def path(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def excluded(self, rel: str) -> bool:
        return bool(rel) and self.matcher.matches(rel)

    def lstat(self, rel: str) -> os.stat_result | None:
        try:
            st = os.lstat(self.path(rel))
        except (FileNotFoundError, NotADirectoryError):
            return None
        if self.excluded(rel) and not (stat.S_ISDIR(st.st_mode)
                                       and self.matcher.may_include_under(rel)):
            return None
        return st

    def listdir(self, rel: str) -> list[str]:
        names = sorted(os.listdir(self.path(rel)))
        return [n for n in names if self.lstat(_join(rel, n)) is not None]


class RootFS:
    """An image's files as the overlay would show them, read from its layer dirs."""

    def __init__(self, layer_dirs: list[str]):
        self.layers = list(reversed(layer_dirs))  # top first

    def _stack(self, rel: str):
        """Host paths of ``rel`` in the layers that show it, top first."""
        parts = [p for p in rel.split("/") if p]
        for layer in self.layers:
            cur, blocked, present = layer, False, True
            for i, part in enumerate(parts):
                cur = os.path.join(cur, part)
                try:
                    st = os.lstat(cur)
                except FileNotFoundError:
                    present = False
                    break
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    return  # a whiteout hides it and what is below
                if not stat.S_ISDIR(st.st_mode):
                    if i < len(parts) - 1:
                        return
                    yield cur
                    return
                blocked = blocked or opaque_dir(cur)
            if present:
                yield cur
            if blocked:
                return

    def path(self, rel: str) -> str | None:
        return next(self._stack(rel), None)

    def lstat(self, rel: str) -> os.stat_result | None:
        path = self.path(rel)
        return os.lstat(path) if path else None

    def listdir(self, rel: str) -> list[str]:
        names: set[str] = set()
        hidden: set[str] = set()
        for d in self._stack(rel):
            if not os.path.isdir(d) or os.path.islink(d):
                break
            for name in os.listdir(d):
                if name in names or name in hidden:
                    continue
                st = os.lstat(os.path.join(d, name))
                (hidden if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 else names).add(name)
        return sorted(names)


def _join(a: str, b: str) -> str:
    return f"{a}/{b}" if a else b


def clean(path: str) -> str:
    """``path`` relative to the root, ``..`` stopped at the root (Docker's scoped paths)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def resolve(fs, rel: str, follow_last: bool = True) -> str:
    """``rel`` with every symlink on the way followed inside ``fs``'s root (absolute targets
    are relative to that root), as Docker's FollowSymlinkInScope."""
    todo = [p for p in rel.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        cur = "/".join(done + [part])
        st = fs.lstat(cur)
        if st is not None and stat.S_ISLNK(st.st_mode) and (todo or follow_last):
            hops += 1
            if hops > _MAX_SYMLINKS:
                raise ContextError(f"too many links in {rel!r}")
            target = os.readlink(fs.path(cur))
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p not in ("", ".")] + todo
            continue
        done.append(part)
    return "/".join(done)


def glob(fs, pattern: str) -> list[str]:
    """The paths of ``fs`` matching ``pattern`` (Go filepath.Match per component), sorted."""
    found = [""]
    for part in [p for p in clean(pattern).split("/") if p]:
        if not any(c in part for c in "*?[\\"):
            found = [_join(d, part) for d in found if fs.lstat(_join(d, part)) is not None]
            continue
        regex = _match_regex(part)
        found = [_join(d, name) for d in found if _is_dir(fs, d)
                 for name in fs.listdir(d) if regex.match(name)]
    return sorted(found)


def _is_dir(fs, rel: str) -> bool:
    if not rel:
        return True
    st = fs.lstat(rel)
    return st is not None and stat.S_ISDIR(st.st_mode)


# -- what a COPY/ADD step adds -----------------------------------------------------------

@dataclass
class Entry:
    name: str                  # path in the layer, relative
    kind: str                  # dir | file | symlink | fifo
    mode: int                  # permission bits (incl. setuid/setgid/sticky)
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    source: str = ""           # host path of a file's content
    linkname: str = ""


def content_hash(entries: list[Entry]) -> str:
    h = hashlib.sha256()
    for e in sorted(entries, key=lambda e: e.name):
        h.update(f"{e.name}\0{e.kind}\0{e.mode:o}\0{e.uid}:{e.gid}\0{e.linkname}\0".encode())
        if e.kind == "file":
            with open(e.source, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        h.update(b"\n")
    return h.hexdigest()


def write_layer(entries: list[Entry], out) -> None:
    """A layer tar of ``entries`` (the last entry for a name wins; parents first)."""
    latest: dict[str, Entry] = {}
    for e in entries:
        latest[_clean_name(e.name)] = e
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(latest, key=lambda n: n.split("/")):
            e = latest[name]
            ti = tarfile.TarInfo(name + ("/" if e.kind == "dir" else ""))
            ti.mode, ti.uid, ti.gid, ti.mtime = e.mode, e.uid, e.gid, e.mtime
            ti.type = {"dir": tarfile.DIRTYPE, "file": tarfile.REGTYPE,
                       "symlink": tarfile.SYMTYPE, "fifo": tarfile.FIFOTYPE}[e.kind]
            ti.linkname = e.linkname
            if e.kind != "file":
                tf.addfile(ti)
                continue
            with open(e.source, "rb") as f:
                ti.size = os.fstat(f.fileno()).st_size
                tf.addfile(ti, f)
