"""Content-addressed image storage and safe layer unpacking.

Layout under the state root::

    images/blobs/sha256/<hex>        blobs (uncompressed layer tars, configs, manifests)
    images/layers/<diffid-hex>/diff  each layer unpacked once (overlayfs lower dir)
    images/tmp/                      scratch space (same filesystem, for atomic renames)

Layer tars are unpacked into a temporary directory and renamed into place, so a
layer dir either exists complete or not at all. Hostile entries (absolute paths,
``..``, writes through symlinks, links escaping the layer, device nodes) raise
``LayerError`` and leave nothing behind. OCI whiteouts (``.wh.<name>``) become overlay
whiteouts (a 0/0 character device) and ``.wh..wh..opq`` the ``trusted.overlay.opaque``
xattr on its directory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
import tempfile

from .spec import DEFAULT_PATH

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_CHUNK = 1 << 20


class ImageError(Exception):
    """An image store operation failed."""


class LayerError(ImageError):
    """A layer tar is malformed or hostile."""


def _hex(digest: str) -> str:
    hexpart = digest[7:] if digest.startswith("sha256:") else digest
    if len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ImageError(f"invalid digest {digest!r}")
    return hexpart


def canonical_json(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class ImageStore:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.images = os.path.join(self.root, "images")
        self.blobs = os.path.join(self.images, "blobs", "sha256")
        self.layers = os.path.join(self.images, "layers")
        self.tmp = os.path.join(self.images, "tmp")
        for d in (self.blobs, self.layers, self.tmp):
            os.makedirs(d, mode=0o700, exist_ok=True)

    # -- blobs -------------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        return os.path.join(self.blobs, _hex(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(self.blob_path(digest))

    def get_blob(self, digest: str) -> bytes:
        try:
            with open(self.blob_path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} not found") from None

    def put_blob(self, data: bytes) -> str:
        """Store bytes; return the hex digest."""
        hexd = hashlib.sha256(data).hexdigest()
        path = os.path.join(self.blobs, hexd)
        if not os.path.exists(path):
            fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="blob-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
            except BaseException:
                _unlink(tmp)
                raise
        return hexd

    def put_config(self, config: dict) -> str:
        """Store an image config as canonical JSON; return the image id (hex)."""
        if not isinstance(config, dict):
            raise ImageError("image config must be a JSON object")
        return self.put_blob(canonical_json(config))

    def get_config(self, image_id: str) -> dict:
        return json.loads(self.get_blob(image_id))

    # -- layers ------------------------------------------------------------------------
    def layer_dir(self, diff_id: str) -> str:
        """The unpacked ``diff`` dir of a layer (not checked for existence)."""
        return os.path.join(self.layers, _hex(diff_id), "diff")

    def has_layer(self, diff_id: str) -> bool:
        return os.path.isdir(self.layer_dir(diff_id))

    def layer_dirs(self, image_id: str) -> list[str]:
        """Layer dirs bottom->top for a stored image config; all must be present."""
        config = self.get_config(image_id)
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        dirs = [self.layer_dir(d) for d in diff_ids]
        missing = [d for d, p in zip(diff_ids, dirs, strict=True) if not os.path.isdir(p)]
        if missing:
            raise ImageError(f"image {image_id}: layer(s) not unpacked: {', '.join(missing)}")
        return dirs

    def add_layer_tar(self, src) -> str:
        """Add a layer from a path or binary file object (tar, optionally gzipped).

        Returns the diff_id (``sha256:<hex>`` of the uncompressed tar). The layer is
        unpacked once; adding it again is a cheap no-op after hashing.
        """
        fd, tmp_tar = tempfile.mkstemp(dir=self.tmp, prefix="layer-", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as out:
                hexd = self._copy_uncompressed(src, out)
            blob = os.path.join(self.blobs, hexd)
            target = os.path.join(self.layers, hexd)
            if not os.path.isdir(os.path.join(target, "diff")):
                self._unpack_into_place(tmp_tar, target)
            if not os.path.exists(blob):
                os.chmod(tmp_tar, 0o644)
                os.replace(tmp_tar, blob)
        finally:
            _unlink(tmp_tar)
        return "sha256:" + hexd

    def _copy_uncompressed(self, src, out) -> str:
        own = isinstance(src, (str, bytes, os.PathLike))
        raw = open(src, "rb") if own else src
        try:
            head = raw.read(2)
            stream = io.BufferedReader(_Prefixed(head, raw))
            if head == b"\x1f\x8b":
                stream = gzip.GzipFile(fileobj=stream, mode="rb")
            h = hashlib.sha256()
            try:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
                    out.write(chunk)
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                raise LayerError(f"invalid layer: cannot decompress: {e}") from None
            return h.hexdigest()
        finally:
            if own:
                raw.close()

    def _unpack_into_place(self, tar_path: str, target: str) -> None:
        work = tempfile.mkdtemp(dir=self.tmp, prefix="unpack-")
        try:
            diff = os.path.join(work, "diff")
            os.mkdir(diff, 0o755)
            try:
                with tarfile.open(tar_path, "r:") as tf:
                    _Unpacker(diff).run(tf)
            except tarfile.TarError as e:
                raise LayerError(f"invalid layer tar: {e}") from None
            try:
                os.rename(work, target)
            except OSError:
                if not os.path.isdir(os.path.join(target, "diff")):
                    raise
                # someone else unpacked the same layer concurrently
            else:
                work = None
        finally:
            if work is not None:
                shutil.rmtree(work, ignore_errors=True)


class _Prefixed(io.RawIOBase):
    """A raw stream that yields ``head`` then the rest of ``raw``."""

    def __init__(self, head: bytes, raw):
        self._head = head
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._raw.read(len(b))
        n = len(data)
        b[:n] = data
        return n


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _clean_name(name: str, what: str = "path") -> str:
    """Normalize a tar member name; reject absolute and ``..`` paths. '' is the root."""
    if "\x00" in name:
        raise LayerError(f"invalid layer: NUL in {what} {name!r}")
    if name.startswith("/"):
        raise LayerError(f"invalid layer: absolute {what} {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"invalid layer: {what} {name!r} escapes the layer root")
    return "/".join(parts)


_ALLOWED_XATTRS = ("security.capability", "user.")


class _Unpacker:
    def __init__(self, root: str):
        self.root = root
        self.dir_times: list[tuple[str, int]] = []

    def run(self, tf: tarfile.TarFile) -> None:
        for member in tf:
            self.extract(tf, member)
        for path, mtime in reversed(self.dir_times):
            os.utime(path, (mtime, mtime), follow_symlinks=False)

    def _parent(self, rel: str) -> str:
        """Create (as needed) and return the real parent dir of ``rel``; never follows
        a symlink."""
        cur = self.root
        for part in rel.split("/")[:-1]:
            cur = os.path.join(cur, part)
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                os.mkdir(cur, 0o755)
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise LayerError(f"invalid layer: {rel!r} goes through a non-directory "
                                 f"({os.path.relpath(cur, self.root)!r} is not a directory)")
        return cur

    def _clear(self, path: str, keep_dir: bool) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return
            shutil.rmtree(path)
        else:
            os.unlink(path)

    def extract(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = _clean_name(m.name)
        if m.ischr() or m.isblk():
            raise LayerError(f"invalid layer: device node {m.name!r} not allowed")
        if not rel:
            if m.isdir():
                os.chmod(self.root, m.mode & 0o7777)
                return
            raise LayerError(f"invalid layer: entry {m.name!r} replaces the root")
        base = rel.rsplit("/", 1)[-1]
        parent = self._parent(rel)
        if base.startswith(WHITEOUT_PREFIX):
            if not (m.isfile() or m.islnk()):
                raise LayerError(f"invalid layer: whiteout {m.name!r} is not a regular file")
            if base == OPAQUE_WHITEOUT:
                os.setxattr(parent, "trusted.overlay.opaque", b"y")
                return
            victim = base[len(WHITEOUT_PREFIX):]
            if victim in ("", ".", "..") or victim.startswith(WHITEOUT_PREFIX):
                raise LayerError(f"invalid layer: bad whiteout {m.name!r}")
            path = os.path.join(parent, victim)
            self._clear(path, keep_dir=False)
            os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
            return
        path = os.path.join(parent, base)
        if m.isdir():
            self._clear(path, keep_dir=True)
            if not os.path.isdir(path):
                os.mkdir(path, 0o700)
            self.dir_times.append((path, int(m.mtime)))
        elif m.isfile():
            self._clear(path, keep_dir=False)
            src = tf.extractfile(m)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
        elif m.issym():
            target = m.linkname
            if not target or "\x00" in target:
                raise LayerError(f"invalid layer: symlink {m.name!r} has a bad target")
            if not target.startswith("/"):
                resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
                if resolved == ".." or resolved.startswith("../"):
                    raise LayerError(f"invalid layer: symlink {m.name!r} -> {target!r} "
                                     "escapes the layer root")
            self._clear(path, keep_dir=False)
            os.symlink(target, path)
        elif m.islnk():
            link_rel = _clean_name(m.linkname, "hard link target")
            if not link_rel:
                raise LayerError(f"invalid layer: hard link {m.name!r} to the root")
            src = os.path.join(self._parent(link_rel), link_rel.rsplit("/", 1)[-1])
            try:
                st = os.lstat(src)
            except FileNotFoundError:
                raise LayerError(f"invalid layer: hard link {m.name!r} -> {m.linkname!r}: "
                                 "target not in the layer") from None
            if stat.S_ISDIR(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                raise LayerError(f"invalid layer: hard link {m.name!r} to a directory or device")
            if os.path.lexists(path) and os.path.samestat(st, os.lstat(path)):
                return
            self._clear(path, keep_dir=False)
            os.link(src, path, follow_symlinks=False)
            return  # shares the target's inode and metadata
        elif m.isfifo():
            self._clear(path, keep_dir=False)
            os.mkfifo(path, 0o600)
        else:
            raise LayerError(f"invalid layer: unsupported entry type for {m.name!r}")
        os.lchown(path, m.uid, m.gid)
        if not m.issym():
            os.chmod(path, m.mode & 0o7777)
            for key, value in (m.pax_headers or {}).items():
                if key.startswith("SCHILY.xattr."):
                    name = key[len("SCHILY.xattr."):]
                    if name.startswith(_ALLOWED_XATTRS):
                        raw = value.encode("utf-8", "surrogateescape")
                        os.setxattr(path, name, raw, follow_symlinks=False)
        if not m.isdir():
            os.utime(path, (int(m.mtime), int(m.mtime)), follow_symlinks=False)


# -- the busybox test image -----------------------------------------------------------

BUSYBOX_PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
                  "nobody:x:65534:65534:nobody:/home:/bin/false\n")
BUSYBOX_GROUP = "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"
_EPOCH = "1970-01-01T00:00:00Z"


def build_busybox_layer(busybox_path: str = "/bin/busybox") -> bytes:
    """A deterministic layer tar: static busybox, its applets, /etc/passwd, /etc/group."""
    try:
        out = subprocess.run([busybox_path, "--list"], check=True, capture_output=True,
                             timeout=10).stdout.decode()
    except (OSError, subprocess.SubprocessError) as e:
        raise ImageError(f"cannot run {busybox_path} --list: {e}") from None
    applets = sorted({a.strip() for a in out.split() if a.strip() and "/" not in a}
                     - {"busybox"})
    with open(busybox_path, "rb") as f:
        binary = f.read()

    entries: list[tuple[str, tarfile.TarInfo, bytes | None]] = []

    def add(name: str, kind: bytes, mode: int, data: bytes | None = None, link: str = ""):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.mtime = 0
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = "root"
        ti.linkname = link
        ti.size = len(data) if data is not None else 0
        entries.append((name, ti, data))

    for d, mode in (("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("home", 0o755),
                    ("proc", 0o555), ("root", 0o700), ("sys", 0o555), ("tmp", 0o1777),
                    ("var", 0o755)):
        add(d + "/", tarfile.DIRTYPE, mode)
    add("bin/busybox", tarfile.REGTYPE, 0o755, binary)
    for applet in applets:
        add("bin/" + applet, tarfile.SYMTYPE, 0o777, link="busybox")
    add("etc/passwd", tarfile.REGTYPE, 0o644, BUSYBOX_PASSWD.encode())
    add("etc/group", tarfile.REGTYPE, 0o644, BUSYBOX_GROUP.encode())
    entries.sort(key=lambda e: e[0])

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for _name, ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def busybox_image_config(diff_id: str) -> dict:
    if not diff_id.startswith("sha256:"):
        diff_id = "sha256:" + diff_id
    _hex(diff_id)
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": _EPOCH,
        "config": {"Env": ["PATH=" + DEFAULT_PATH], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": _EPOCH,
                     "created_by": "dockyard: busybox layer from the host's static busybox"}],
    }
