"""Image archives and container filesystems as tar streams: save, load, import, export, commit.

No Django. Owner: helper A (see /work/notes/images.md). Contract:

- ``save(store, images: list[SaveItem], out) -> None``: one tar in Docker 25's format, which is
  both an OCI image layout (oci-layout, index.json, blobs/sha256/...) and the classic Docker
  save format (manifest.json, repositories); uncompressed layers. ``out`` may be a pipe.
- ``load(store, path, *, max_layer_size=None, progress=None) -> list[Loaded]``: a Docker save
  tar (any Docker version), an OCI image layout archive (skopeo's oci-archive, umoci's layout
  tarred), gzipped or not. Every blob's digest checked (layers the store already has are not
  read, as Docker does). An index picks the node's platform (linux/amd64 here). A config is
  stored as the archive's bytes, so the image keeps its id. All or nothing: on error no image
  is returned and the layers and configs this load added are removed again.
- ``import_rootfs(store, path, *, config_changes: dict, comment="", max_layer_size=None)
  -> Loaded``: a rootfs tarball (gz/bz2/xz or plain) as a one-layer image; ``config_changes``
  become its ``config`` (Docker's "Imported from -" comment is the caller's).
- ``export_rootfs(layer_dirs, upper_dir, out, *, id_shift=0)``: the container's merged
  filesystem (overlay mounted read-only in a private mount namespace) as a tar.
- ``diff_tar(upper_dir, out, *, id_shift=0)``: an overlay upper dir as an OCI layer tar
  (0/0 char devices -> ``.wh.<name>``, opaque dirs -> ``.wh..wh..opq``; the empty mount
  points of the runtime's /etc/hostname, hosts and resolv.conf binds left out).
- ``commit(store, parent_image_id, upper_dir, *, config_changes, comment, author, id_shift=0,
  created_by="") -> Loaded``: the parent's layers plus the diff as a new layer (an empty diff
  still makes one, as Docker does), ``config_changes`` merged into the parent's ``config``,
  history appended.
- ``progress(event: dict)``: Docker's JSON progress messages ("Loading layer" with
  progressDetail), like the registry client's.
- ``id_shift``: with userns-remap, the node ids of the container's root (100000): owners in
  ``[id_shift, id_shift + 65536)`` are written as ``owner - id_shift``.

Errors: ``ArchiveError`` (and the store's ``LayerError``/``DigestError``), all ImageErrors.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import linux as L
from . import oci, userns
from .images import ImageError, _decompressor, _hex, _read_up_to

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
USERNS_RANGE = 65536
_MAX_JSON = 16 << 20  # manifest.json, index.json, manifests and configs are small
_CHUNK = 1 << 20


class ArchiveError(ImageError):
    """An image archive is malformed or does not match its digests."""


@dataclass
class SaveItem:
    image_id: str                   # hex
    repo_tags: list[str] = field(default_factory=list)   # "busybox:1.29", "localhost:5000/a:b"


@dataclass
class Loaded:
    image_id: str                   # hex sha256 of the config blob as stored
    config: dict
    diff_ids: list[str]
    size: int                       # sum of the uncompressed layer sizes
    repo_tags: list[str] = field(default_factory=list)


# -- references (Docker's normalization, just what archives need) -------------------------

def _split_ref(ref: str) -> tuple[str, str]:
    """``"busybox:1.29"`` -> ("busybox", "1.29"); the repository in Docker's familiar form."""
    name, tag = ref, "latest"
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if not name or "@" in name:
        raise ArchiveError(f"invalid reference {ref!r}")
    return name, tag


def _full_name(repo: str) -> str:
    first = repo.split("/", 1)[0]
    if "/" in repo and ("." in first or ":" in first or first == "localhost"):
        return repo
    return "docker.io/" + (repo if "/" in repo else "library/" + repo)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_bytes(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# -- save ----------------------------------------------------------------------------------

def save(store, images, out) -> None:
    docker_manifest, index, repositories = [], [], {}
    written: set[str] = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        for name in ("blobs/", "blobs/sha256/"):
            _add_entry(tf, name, tarfile.DIRTYPE, 0o755)

        def add_blob(hexd: str, data: bytes | None = None, path: str | None = None) -> None:
            if hexd in written:
                return
            written.add(hexd)
            size = len(data) if data is not None else os.path.getsize(path)
            if data is not None:
                _add_entry(tf, f"blobs/sha256/{hexd}", tarfile.REGTYPE, 0o644, size,
                           io.BytesIO(data))
            else:
                with open(path, "rb") as f:
                    _add_entry(tf, f"blobs/sha256/{hexd}", tarfile.REGTYPE, 0o644, size, f)

        for item in images:
            image_id = _hex(item.image_id)
            config_raw = store.get_blob(image_id)
            config = json.loads(config_raw)
            diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
            layers = []
            for diff_id in diff_ids:
                path = store.layer_tar_path(diff_id)
                add_blob(_hex(diff_id), path=path)
                layers.append({"mediaType": oci.OCI_LAYER, "digest": diff_id,
                               "size": os.path.getsize(path)})
            add_blob(image_id, config_raw)
            manifest = _json_bytes({
                "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                "config": {"mediaType": oci.OCI_CONFIG, "digest": "sha256:" + image_id,
                           "size": len(config_raw)},
                "layers": layers})
            manifest_hex = hashlib.sha256(manifest).hexdigest()
            add_blob(manifest_hex, manifest)
            descriptor = {"mediaType": oci.OCI_MANIFEST, "digest": "sha256:" + manifest_hex,
                          "size": len(manifest)}
            tags = []
            for ref in item.repo_tags:
                repo, tag = _split_ref(ref)
                tags.append(f"{repo}:{tag}")
                index.append({**descriptor, "annotations": {
                    oci.ANNOTATION_IMAGE_NAME: f"{_full_name(repo)}:{tag}",
                    oci.ANNOTATION_REF_NAME: tag}})
                if diff_ids:
                    repositories.setdefault(repo, {})[tag] = _hex(diff_ids[-1])
            if not tags:
                index.append(descriptor)
            docker_manifest.append({"Config": f"blobs/sha256/{image_id}",
                                    "RepoTags": tags or None,
                                    "Layers": [f"blobs/sha256/{_hex(d)}" for d in diff_ids]})
        for name, obj in (
                ("index.json", {"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                                "manifests": index}),
                ("manifest.json", docker_manifest),
                ("oci-layout", {"imageLayoutVersion": "1.0.0"}),
                ("repositories", repositories)):
            data = _json_bytes(obj)
            _add_entry(tf, name, tarfile.REGTYPE, 0o644, len(data), io.BytesIO(data))


def _add_entry(tf, name, kind, mode, size=0, fileobj=None) -> None:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.mtime = kind, mode, size, 0
    tf.addfile(ti, fileobj)


# -- load ----------------------------------------------------------------------------------

@dataclass
class _Plan:
    """One image to load: where its config and layers are in the archive."""
    config_name: str
    config_digest: str | None            # "sha256:..." when the archive names it
    layers: list[tuple[str, str | None]]  # (member name, blob digest when named)
    repo_tags: list[str]


class _Archive:
    """Random access to a tar's members by normalized name (links followed inside it)."""

    def __init__(self, path: str):
        self.tf = tarfile.open(path, "r:")
        self.members = {}
        for m in self.tf.getmembers():
            self.members[_norm(m.name)] = m

    def has(self, name: str) -> bool:
        return _norm(name) in self.members

    def open(self, name: str):
        member = self.members.get(_norm(name))
        if member is None:
            raise ArchiveError(f"invalid archive: {name!r} is missing")
        try:
            f = self.tf.extractfile(member)
        except (KeyError, tarfile.TarError) as e:
            raise ArchiveError(f"invalid archive: {name!r}: {e}") from None
        if f is None:
            raise ArchiveError(f"invalid archive: {name!r} is not a file")
        return f

    def read_json(self, name: str, digest: str | None = None):
        with self.open(name) as f:
            raw = f.read(_MAX_JSON + 1)
        if len(raw) > _MAX_JSON:
            raise ArchiveError(f"invalid archive: {name!r} is too large")
        _check_digest(name, raw, digest)
        try:
            return json.loads(raw), raw
        except ValueError as e:
            raise ArchiveError(f"invalid archive: {name!r} is not JSON: {e}") from None

    def close(self) -> None:
        self.tf.close()


def _norm(name: str) -> str:
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _check_digest(what: str, raw: bytes, digest: str | None) -> None:
    if digest is not None and "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
        raise ArchiveError(f"digest mismatch for {what}: expected {digest}")


def _blob_name(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    if algo != "sha256":
        raise ArchiveError(f"unsupported digest algorithm in {digest!r}")
    return f"blobs/sha256/{_hex(hexd)}"


def load(store, path, *, max_layer_size=None, progress=None) -> list[Loaded]:
    plain, tmp = _uncompressed_archive(store, path)
    try:
        try:
            archive = _Archive(plain)
        except tarfile.TarError as e:
            raise ArchiveError(f"invalid archive: not a tar file: {e}") from None
        try:
            if archive.has("manifest.json"):
                plans = _docker_plans(archive)
            elif archive.has("index.json"):
                plans = _oci_plans(archive)
            else:
                raise ArchiveError("invalid archive: neither manifest.json (Docker) nor "
                                   "index.json (OCI layout) found")
            added = _Added(store)
            try:
                return _merge([_load_image(store, archive, plan, added, max_layer_size,
                                           progress) for plan in plans])
            except BaseException:
                added.undo()
                raise
        finally:
            archive.close()
    finally:
        if tmp:
            os.unlink(tmp)


def _uncompressed_archive(store, path) -> tuple[str, str | None]:
    """The archive as a plain tar file: ``path`` itself, or a decompressed temp copy."""
    with open(path, "rb") as f:
        head = _read_up_to(f, 10)
        f.seek(0)
        stream = _decompressor(head, f)
        if stream is f:
            return path, None
        fd, tmp = tempfile.mkstemp(dir=store.tmp, prefix="archive-", suffix=".tar")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
        except BaseException as e:
            os.unlink(tmp)
            if isinstance(e, (OSError, EOFError)):
                raise ArchiveError(f"invalid archive: cannot decompress: {e}") from None
            raise
        return tmp, tmp


def _docker_plans(archive: _Archive) -> list[_Plan]:
    entries, _raw = archive.read_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ArchiveError("invalid archive: manifest.json lists no image")
    plans = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list) \
                or not all(isinstance(name, str) for name in entry["Layers"]):
            raise ArchiveError("invalid archive: a manifest.json entry lacks Config or Layers")
        plans.append(_Plan(config_name=entry["Config"],
                           config_digest=_digest_in_name(entry["Config"]),
                           layers=[(name, _digest_in_name(name)) for name in entry["Layers"]],
                           repo_tags=[f"{r}:{t}" for r, t in map(_split_ref,
                                                                 entry.get("RepoTags") or [])]))
    return plans


def _digest_in_name(name: str) -> str | None:
    """The digest a Docker archive's path states: blobs/sha256/<hex>, or <hex>.json
    (a config, whose digest is the image id); layer dirs of old saves state none."""
    parts = _norm(name).split("/")
    if len(parts) == 3 and parts[:2] == ["blobs", "sha256"]:
        return "sha256:" + _hex(parts[2])
    if len(parts) == 1 and parts[0].endswith(".json") and len(parts[0]) == 69:
        return "sha256:" + _hex(parts[0][:-5])
    return None


def _oci_plans(archive: _Archive) -> list[_Plan]:
    index, _raw = archive.read_json("index.json")
    os_, arch, variant = oci.host_platform()
    plans: dict[str, _Plan] = {}
    for desc in _descriptors(index, "index.json"):
        manifest_desc = _pick_manifest(archive, desc, (os_, arch, variant), depth=0)
        if manifest_desc is None:
            continue
        annotations = desc.get("annotations") or {}
        name = annotations.get(oci.ANNOTATION_IMAGE_NAME) or ""
        ref = annotations.get(oci.ANNOTATION_REF_NAME) or ""
        if not name and ("/" in ref or ":" in ref):
            name = ref  # a full reference as the ref name
        tags = [":".join(_split_ref(name))] if name else []
        digest = manifest_desc["digest"]
        if digest in plans:
            plans[digest].repo_tags += [t for t in tags if t not in plans[digest].repo_tags]
            continue
        manifest, _raw = archive.read_json(_blob_name(digest), digest)
        config = manifest.get("config") if isinstance(manifest, dict) else None
        if not isinstance(config, dict) or not isinstance(manifest.get("layers"), list):
            raise ArchiveError(f"invalid archive: manifest {digest} lacks config or layers")
        layers = []
        for layer in _descriptors({"manifests": manifest["layers"]}, f"manifest {digest}"):
            if "zstd" in str(layer.get("mediaType", "")):
                raise ArchiveError(f"layer {layer['digest']}: zstd is not supported")
            layers.append((_blob_name(layer["digest"]), layer["digest"]))
        [config] = _descriptors({"manifests": [config]}, f"manifest {digest}")
        plans[digest] = _Plan(config_name=_blob_name(config["digest"]),
                              config_digest=config["digest"], layers=layers, repo_tags=tags)
    if not plans:
        raise ArchiveError(f"invalid archive: no image for {os_}/{arch} in index.json")
    return list(plans.values())


def _descriptors(index, what: str) -> list[dict]:
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not all(
            isinstance(d, dict) and isinstance(d.get("digest"), str) for d in manifests):
        raise ArchiveError(f"invalid archive: {what} has no valid manifests list")
    return manifests


def _pick_manifest(archive: _Archive, desc: dict, host, depth: int) -> dict | None:
    """The image manifest a descriptor stands for on this platform (nested indexes
    followed), or None when it is for another platform."""
    if depth > 4:
        raise ArchiveError("invalid archive: indexes nested too deep")
    if not oci.platform_matches(desc, host):
        return None
    media = desc.get("mediaType", "")
    if media in oci.MANIFEST_TYPES:
        return desc
    if media not in oci.INDEX_TYPES:
        raise ArchiveError(f"invalid archive: unsupported media type {media!r}")
    inner, _raw = archive.read_json(_blob_name(desc["digest"]), desc["digest"])
    candidates = _descriptors(inner, desc["digest"])
    for candidate in oci.by_preference(candidates, host):
        found = _pick_manifest(archive, candidate, host, depth + 1)
        if found is not None:
            return found
    return None


class _Added:
    """What this load put into the store, to take out again if it fails."""

    def __init__(self, store):
        self.store = store
        self.layers: list[str] = []
        self.configs: list[str] = []

    def undo(self) -> None:
        for config in self.configs:
            self.store.delete_blob(config)
        for diff_id in self.layers:
            self.store.delete_layer(diff_id)


def _load_image(store, archive, plan: _Plan, added: _Added, max_layer_size, progress) -> Loaded:
    config, raw = archive.read_json(plan.config_name, plan.config_digest)
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") if isinstance(config, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(plan.layers):
        raise ArchiveError(f"invalid archive: config {plan.config_name!r} lists "
                           f"{len(diff_ids or [])} layers, the manifest {len(plan.layers)}")
    for diff_id, (name, blob_digest) in zip(diff_ids, plan.layers, strict=True):
        if store.has_layer(diff_id):
            continue
        with archive.open(name) as f:
            total = f.seek(0, io.SEEK_END)  # the member's size, links followed
            f.seek(0)
            try:
                got = store.add_layer_tar(f, max_size=max_layer_size, digest=blob_digest,
                                          progress=_layer_progress(progress, diff_id, total))
            except tarfile.TarError as e:  # the archive itself ends early
                raise ArchiveError(f"invalid archive: {name!r}: {e}") from None
        added.layers.append(got)
        if got != diff_id:
            raise ArchiveError(f"digest mismatch for layer {name!r}: its content is {got}, "
                               f"the config says {diff_id}")
    image_id = hashlib.sha256(raw).hexdigest()
    if not store.has_blob(image_id):
        store.put_blob(raw)
        added.configs.append(image_id)
    return Loaded(image_id=image_id, config=config, diff_ids=list(diff_ids),
                  size=sum(store.layer_size(d) for d in diff_ids), repo_tags=plan.repo_tags)


def _layer_progress(progress, diff_id: str, total: int):
    if progress is None:
        return None
    short = _hex(diff_id)[:12]
    return lambda n: progress({"status": "Loading layer", "id": short,
                               "progressDetail": {"current": n, "total": total}})


def _merge(loaded: list[Loaded]) -> list[Loaded]:
    """One entry per image (an archive may list one image under several names)."""
    by_id: dict[str, Loaded] = {}
    for item in loaded:
        if item.image_id in by_id:
            tags = by_id[item.image_id].repo_tags
            tags += [t for t in item.repo_tags if t not in tags]
        else:
            by_id[item.image_id] = item
    return list(by_id.values())


# -- import and commit ---------------------------------------------------------------------

def import_rootfs(store, path, *, config_changes: dict, comment="", max_layer_size=None) -> Loaded:
    diff_id = store.add_layer_tar(path, max_size=max_layer_size)
    now = _now()
    _os, arch, variant = oci.host_platform()
    config = {"architecture": arch, "os": "linux", "created": now,
              "config": dict(config_changes),
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created": now, **({"comment": comment} if comment else {})}]}
    if variant and arch != "amd64":
        config["variant"] = variant
    if comment:
        config["comment"] = comment
    image_id = store.put_config(config)
    return Loaded(image_id=image_id, config=config, diff_ids=[diff_id],
                  size=store.layer_size(diff_id))


def commit(store, parent_image_id, upper_dir, *, config_changes, comment="", author="",
           id_shift=0, created_by="") -> Loaded:
    parent = store.get_config(parent_image_id)
    fd, tmp = tempfile.mkstemp(dir=store.tmp, prefix="commit-", suffix=".tar")
    try:
        with os.fdopen(fd, "wb") as f:
            diff_tar(upper_dir, f, id_shift=id_shift)
        diff_id = store.add_layer_tar(tmp)
    finally:
        os.unlink(tmp)
    now = _now()
    config = copy.deepcopy(parent)
    config["config"] = {**(parent.get("config") or {}), **config_changes}
    config["created"] = now
    config.pop("comment", None)
    if author:
        config["author"] = author
    else:
        config.pop("author", None)
    rootfs = config.setdefault("rootfs", {"type": "layers"})
    rootfs["diff_ids"] = list(rootfs.get("diff_ids") or []) + [diff_id]
    entry = {"created": now, "author": author, "created_by": created_by, "comment": comment}
    config["history"] = list(config.get("history") or []) + [
        {k: v for k, v in entry.items() if v}]
    image_id = store.put_config(config)
    return Loaded(image_id=image_id, config=config, diff_ids=rootfs["diff_ids"],
                  size=sum(store.layer_size(d) for d in rootfs["diff_ids"]))


# -- trees as tars: diff and export --------------------------------------------------------

_KEPT_XATTRS = ("security.capability", "user.")
# the runtime's bind-mount points in an upper dir (Docker keeps them in its init layer)
_RUNTIME_MOUNT_POINTS = ("etc/hostname", "etc/hosts", "etc/resolv.conf")
_OVERLAY_XATTRS = ("trusted.overlay.", "user.overlay.")


def opaque_dir(path: str) -> bool:
    """Whether overlayfs marked the directory opaque (it hides the lower layers' content)."""
    for name in ("trusted.overlay.opaque", "user.overlay.opaque"):
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False


class _TreeTar:
    """Writes a directory tree as a tar: numeric owners (shifted back by ``id_shift``),
    modes, times, hard links, devices, kept xattrs. ``diff``: the tree is an overlay upper
    dir, whose whiteouts and opaque dirs become OCI whiteout files."""

    def __init__(self, tf: tarfile.TarFile, id_shift: int, diff: bool):
        self.tf = tf
        self.id_shift = id_shift
        self.diff = diff
        self.links: dict[tuple[int, int], str] = {}

    def _id(self, n: int) -> int:
        if self.id_shift and self.id_shift <= n < self.id_shift + USERNS_RANGE:
            return n - self.id_shift
        return n

    def write(self, root: str) -> None:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            if rel_dir and self.diff and opaque_dir(dirpath):
                st = os.lstat(dirpath)
                self._whiteout(rel_dir + OPAQUE_WHITEOUT, st)
            for name in sorted(dirnames + filenames):
                self._entry(os.path.join(dirpath, name), rel_dir + name)

    def _whiteout(self, name: str, st: os.stat_result) -> None:
        ti = tarfile.TarInfo(name)
        ti.mode, ti.uid, ti.gid = 0o600, self._id(st.st_uid), self._id(st.st_gid)
        ti.mtime = int(st.st_mtime)
        self.tf.addfile(ti)

    def _entry(self, path: str, name: str) -> None:
        st = os.lstat(path)
        mode = st.st_mode
        if self.diff and stat.S_ISCHR(mode) and st.st_rdev == 0:
            head, _, base = name.rpartition("/")
            self._whiteout((head + "/" if head else "") + WHITEOUT_PREFIX + base, st)
            return
        if self.diff and name in _RUNTIME_MOUNT_POINTS and stat.S_ISREG(mode) \
                and st.st_size == 0:
            return
        ti = tarfile.TarInfo(name)
        ti.mode = stat.S_IMODE(mode)
        ti.uid, ti.gid = self._id(st.st_uid), self._id(st.st_gid)
        ti.mtime = int(st.st_mtime)
        key = (st.st_dev, st.st_ino)
        content = None
        if stat.S_ISREG(mode) and st.st_nlink > 1 and key in self.links:
            ti.type, ti.linkname = tarfile.LNKTYPE, self.links[key]
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1:
                self.links[key] = name
            ti.size = st.st_size
            content = path
        elif stat.S_ISDIR(mode):
            ti.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(mode):
            ti.type, ti.linkname = tarfile.SYMTYPE, os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            ti.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            ti.type = tarfile.FIFOTYPE
        else:
            return  # sockets: not part of a filesystem image
        if not stat.S_ISLNK(mode):
            for attr in os.listxattr(path, follow_symlinks=False):
                if attr.startswith(_KEPT_XATTRS) and not attr.startswith(_OVERLAY_XATTRS):
                    value = os.getxattr(path, attr, follow_symlinks=False)
                    ti.pax_headers["SCHILY.xattr." + attr] = value.decode("utf-8",
                                                                          "surrogateescape")
        if content is None:
            self.tf.addfile(ti)
            return
        with open(content, "rb") as f:
            self.tf.addfile(ti, _Exactly(f, ti.size))


class _Exactly(io.RawIOBase):
    """``size`` bytes of a file that may change while it is read: cut, or padded with
    zeros, so that the tar entry stays what its header says."""

    def __init__(self, f, size: int):
        self.f = f
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.left)
        if n <= 0:
            return 0
        data = self.f.read(n) or b"\0" * n
        b[:len(data)] = data
        self.left -= len(data)
        return len(data)


def diff_tar(upper_dir, out, *, id_shift=0) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _TreeTar(tf, id_shift, diff=True).write(upper_dir)


def export_rootfs(layer_dirs, upper_dir, out, *, id_shift=0) -> None:
    """The overlay (``upper_dir`` over ``layer_dirs``, bottom to top) is mounted read-only in
    a forked child's own mount namespace, which writes the tar into a pipe; nothing is ever
    mounted in the node's namespace."""
    lowers = ([upper_dir] if upper_dir else []) + list(reversed(layer_dirs))
    if not lowers:
        raise ImageError("export: no layers")
    if id_shift:  # a userxattr overlay reads the layers' opaque dirs from user.overlay.*
        for layer in layer_dirs:
            userns._mark_opaque_dirs(layer)
    base = tempfile.mkdtemp(prefix="dockyard-export-")
    mnt, empty = os.path.join(base, "mnt"), os.path.join(base, "empty")
    os.mkdir(mnt, 0o700)
    os.mkdir(empty, 0o700)
    data_r, data_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its pipes
            try:
                os.close(data_r)
                os.close(err_r)
                _export_child(lowers + [empty], mnt, data_w, id_shift)
                os._exit(0)
            except BaseException as e:  # noqa: BLE001 - anything goes back to the parent
                os.write(err_w, f"{type(e).__name__}: {e}".encode()[:4000])
                os._exit(1)
        os.close(data_w)
        os.close(err_w)
        data_w = err_w = -1
        try:
            with os.fdopen(data_r, "rb", closefd=False) as pipe:
                shutil.copyfileobj(pipe, out, _CHUNK)
        except BaseException:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise
        _, status = os.waitpid(pid, 0)
        if status != 0:
            message = os.read(err_r, 4096).decode(errors="replace")
            raise ImageError(f"export failed: {message or f'status {status}'}")
    finally:
        for fd in (data_r, data_w, err_r, err_w):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(base, ignore_errors=True)


def _export_child(lowers: list[str], mnt: str, data_w: int, id_shift: int) -> None:
    L.unshare(L.CLONE_NEWNS)
    L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
    opts = "lowerdir=" + ":".join(lowers)
    if len(opts) > 4000:  # mount data is one page: relative paths from their common dir
        common = os.path.commonpath(lowers)
        os.chdir(common)
        opts = "lowerdir=" + ":".join(os.path.relpath(p, common) for p in lowers)
    if id_shift:
        opts += ",userxattr"  # a userns container's upper dir marks opaque dirs in user.*
    L.mount("overlay", mnt, "overlay", L.MS_RDONLY, opts)
    with os.fdopen(data_w, "wb") as pipe, \
            tarfile.open(fileobj=pipe, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        _TreeTar(tf, id_shift, diff=False).write(mnt)
