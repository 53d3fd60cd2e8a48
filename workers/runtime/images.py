"""Content-addressed image storage and safe layer unpacking.

Layout under the state root::

    images/blobs/sha256/<hex>        blobs (uncompressed layer tars, configs, manifests)
    images/layers/<diffid-hex>/diff  each layer unpacked once (overlayfs lower dir)
    images/compressed/<diffid-hex>.tar.gz (+ .digest)  the layer's deterministic gzip (push)
    images/compressed/<diffid-hex>.seen  compressed digests a pull saw for the layer
    images/tmp/                      scratch space (same filesystem, for atomic renames)

Layer tars are unpacked into a temporary directory and renamed into place, so a
layer dir either exists complete or not at all. Hostile entries (absolute paths,
``..``, writes through symlinks, links escaping the layer, device nodes outside ``dev/``,
more than ``max_size`` bytes) raise ``LayerError`` and leave nothing behind. OCI whiteouts
(``.wh.<name>``) become overlay whiteouts (a 0/0 character device) and ``.wh..wh..opq`` the
``trusted.overlay.opaque`` xattr on its directory.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
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


class DigestError(ImageError):
    """A blob's bytes do not have the digest they were announced with."""


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
        self.compressed = os.path.join(self.images, "compressed")
        for d in (self.blobs, self.layers, self.tmp, self.compressed):
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

    def add_layer_tar(self, src, *, max_size: int | None = None, progress=None,
                      digest: str | None = None) -> str:
        """Add a layer from a path or binary file object (tar, plain or gzip/bzip2/xz).

        Returns the diff_id (``sha256:<hex>`` of the uncompressed tar). The layer is
        unpacked once; adding it again is a cheap no-op after hashing. ``max_size``: the
        most uncompressed bytes (the tar, and the files it unpacks to); past it LayerError.
        ``progress(n)``: the count of bytes read from ``src`` so far, once per chunk.
        ``digest``: what the bytes of ``src`` (as given, compressed or not) must hash to;
        checked before anything is unpacked (DigestError).
        """
        fd, tmp_tar = tempfile.mkstemp(dir=self.tmp, prefix="layer-", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as out:
                hexd = self._copy_uncompressed(src, out, max_size, progress, digest)
            blob = os.path.join(self.blobs, hexd)
            target = os.path.join(self.layers, hexd)
            if not os.path.isdir(os.path.join(target, "diff")):
                self._unpack_into_place(tmp_tar, target, max_size)
            if not os.path.exists(blob):
                os.chmod(tmp_tar, 0o644)
                os.replace(tmp_tar, blob)
        finally:
            _unlink(tmp_tar)
        return "sha256:" + hexd

    def layer_tar_path(self, diff_id: str) -> str:
        """The layer's uncompressed tar (its diff_id is the blob's digest)."""
        path = self.blob_path(diff_id)
        if not os.path.isfile(path):
            raise ImageError(f"layer {diff_id} not found")
        return path

    def layer_size(self, diff_id: str) -> int:
        """Bytes of the layer's uncompressed tar."""
        return os.path.getsize(self.layer_tar_path(diff_id))

    def compressed_layer(self, diff_id: str) -> tuple[str, int, str]:
        """``(digest, size, path)`` of the layer as a deterministic gzip (mtime 0, no name:
        the same bytes each time), made once and kept under ``images/compressed/``."""
        base = os.path.join(self.compressed, _hex(diff_id))
        try:
            with open(base + ".tar.gz.digest") as f:
                digest, size = f.read().split()
            if os.path.isfile(base + ".tar.gz"):
                return digest, int(size), base + ".tar.gz"
        except (FileNotFoundError, ValueError):
            pass
        tar_path = self.layer_tar_path(diff_id)
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="gzip-")
        try:
            with open(tar_path, "rb") as src, os.fdopen(fd, "wb") as raw:
                tap = _HashingWriter(raw)
                with gzip.GzipFile(filename="", mode="wb", fileobj=tap, mtime=0,
                                   compresslevel=6) as gz:
                    shutil.copyfileobj(src, gz, _CHUNK)
            os.chmod(tmp, 0o644)
            os.replace(tmp, base + ".tar.gz")
        finally:
            _unlink(tmp)
        digest = "sha256:" + tap.sha.hexdigest()
        _write_atomic(base + ".tar.gz.digest", f"{digest} {tap.count}\n".encode(), self.tmp)
        return digest, tap.count, base + ".tar.gz"

    def record_compressed(self, diff_id: str, digest: str) -> None:
        """Remember that ``digest`` is a compressed form of the layer (what a pull saw), so
        that a push can ask the registry for it before compressing anything."""
        _hex(digest)
        if digest in self.compressed_digests(diff_id):
            return
        fd = os.open(os.path.join(self.compressed, _hex(diff_id) + ".seen"),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(digest + "\n")

    def compressed_digests(self, diff_id: str) -> list[str]:
        """The layer's known compressed digests: the recorded ones, then the gzip's if made."""
        base = os.path.join(self.compressed, _hex(diff_id))
        found: list[str] = []
        for name, field in ((".seen", slice(None)), (".tar.gz.digest", slice(0, 1))):
            try:
                with open(base + name) as f:
                    lines = [line.split()[0] for line in f if line.strip()][field]
            except FileNotFoundError:
                continue
            found += [d for d in lines if d not in found]
        return found

    def delete(self, image_ids, *, keep_diff_ids) -> int:
        """Remove the config blobs of ``image_ids`` and each of their layers (unpacked dir,
        tar, compressed copies) whose diff_id is not in ``keep_diff_ids``. Returns the bytes
        freed. The caller decides what is unused (no container may use these layers)."""
        keep = {_hex(d) for d in keep_diff_ids}
        freed = 0
        layers: set[str] = set()
        for image_id in image_ids:
            try:
                config = self.get_config(image_id)
            except (ImageError, ValueError):
                continue
            layers.update(_hex(d) for d in (config.get("rootfs") or {}).get("diff_ids") or [])
            freed += self.delete_blob(image_id)
        for hexd in sorted(layers - keep):
            freed += self.delete_layer(hexd)
        return freed

    def delete_blob(self, digest: str) -> int:
        return _remove_path(self.blob_path(digest), self.tmp)

    def delete_layer(self, diff_id: str) -> int:
        """Remove one layer: its unpacked dir (shifted copies too), tar and compressed
        copies. Returns the bytes freed."""
        hexd = _hex(diff_id)
        freed = _remove_path(os.path.join(self.layers, hexd), self.tmp)
        freed += self.delete_blob(hexd)
        for suffix in (".tar.gz", ".tar.gz.digest", ".seen"):
            freed += _remove_path(os.path.join(self.compressed, hexd + suffix), self.tmp)
        return freed

    def _copy_uncompressed(self, src, out, max_size, progress, digest) -> str:
        own = isinstance(src, (str, bytes, os.PathLike))
        raw = _Tap(open(src, "rb") if own else src, progress)
        try:
            head = _read_up_to(raw, 10)
            stream = io.BufferedReader(_Prefixed(head, raw), _CHUNK)
            stream = _decompressor(head, stream)
            h = hashlib.sha256()
            total = 0
            try:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    total += len(chunk)
                    if max_size is not None and total > max_size:
                        raise LayerError(f"invalid layer: larger than the limit of {max_size} "
                                         "bytes uncompressed")
                    h.update(chunk)
                    out.write(chunk)
                while raw.read(_CHUNK):  # what the decompressor left: part of the blob
                    pass
            except (OSError, EOFError, gzip.BadGzipFile, lzma.LZMAError) as e:
                raise LayerError(f"invalid layer: cannot decompress: {e}") from None
            if digest is not None and raw.digest() != digest:
                raise DigestError(f"digest mismatch: expected {digest}, got {raw.digest()}")
            return h.hexdigest()
        finally:
            if own:
                raw.src.close()

    def _unpack_into_place(self, tar_path: str, target: str, max_size: int | None) -> None:
        work = tempfile.mkdtemp(dir=self.tmp, prefix="unpack-")
        try:
            diff = os.path.join(work, "diff")
            os.mkdir(diff, 0o755)
            try:
                with tarfile.open(tar_path, "r:") as tf:
                    _Unpacker(diff, max_size).run(tf)
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


class _Tap(io.RawIOBase):
    """Reads ``src``, hashing and counting its bytes (a blob's digest, progress)."""

    def __init__(self, src, progress):
        self.src = src
        self._progress = progress
        self._sha = hashlib.sha256()
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.src.read(len(b))
        n = len(data)
        b[:n] = data
        if n:
            self._sha.update(data)
            self._count += n
            if self._progress is not None:
                self._progress(self._count)
        return n

    def digest(self) -> str:
        return "sha256:" + self._sha.hexdigest()


def _read_up_to(raw, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = raw.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _decompressor(head: bytes, stream):
    """``stream`` decompressed by what its first bytes (``head``, 10 of them) say it is."""
    if head.startswith(b"\x1f\x8b\x08"):
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if head[:3] == b"BZh" and head[4:10] == b"\x31\x41\x59\x26\x53\x59":  # + block magic
        return bz2.BZ2File(stream, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(stream, "rb")
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise LayerError("invalid layer: zstd compression is not supported")
    return stream


class _HashingWriter:
    """A write-only file that hashes and counts what passes through to ``raw``."""

    def __init__(self, raw):
        self.raw = raw
        self.sha = hashlib.sha256()
        self.count = 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.count += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def _write_atomic(path: str, data: bytes, tmp_dir: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="meta-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        _unlink(tmp)


def _tree_bytes(path: str) -> int:
    """Bytes of the regular files under ``path`` (or of ``path``), each inode counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirs, files in os.walk(path) if os.path.isdir(path) else [("", [], [path])]:
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def _remove_path(path: str, tmp_dir: str) -> int:
    """Move ``path`` out of sight at once (same filesystem), then delete it; its bytes."""
    doomed = tempfile.mkdtemp(dir=tmp_dir, prefix="delete-")
    try:
        try:
            os.rename(path, os.path.join(doomed, "x"))
        except FileNotFoundError:
            return 0
        return _tree_bytes(os.path.join(doomed, "x"))
    finally:
        shutil.rmtree(doomed, ignore_errors=True)


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
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")  # overlayfs' own: never from a tar


class _Unpacker:
    def __init__(self, root: str, max_size: int | None = None):
        self.root = root
        self.max_size = max_size
        self.unpacked = 0
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
        if (m.ischr() or m.isblk()) and not rel.startswith("dev/"):
            raise LayerError(f"invalid layer: device node {m.name!r} outside dev/")
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
            self.unpacked += m.size  # a sparse member unpacks to more than its tar bytes
            if self.max_size is not None and self.unpacked > self.max_size:
                raise LayerError(f"invalid layer: unpacks to more than the limit of "
                                 f"{self.max_size} bytes")
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
        elif m.ischr() or m.isblk():
            self._clear(path, keep_dir=False)
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(m.devmajor, m.devminor))
        else:
            raise LayerError(f"invalid layer: unsupported entry type for {m.name!r}")
        os.lchown(path, m.uid, m.gid)
        if not m.issym():
            os.chmod(path, m.mode & 0o7777)
            for key, value in (m.pax_headers or {}).items():
                if key.startswith("SCHILY.xattr."):
                    name = key[len("SCHILY.xattr."):]
                    if name.startswith(_ALLOWED_XATTRS) and not name.startswith(
                            _OVERLAY_XATTRS):
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
