"""Image archives and container filesystems as tar streams: save, load, import, export, commit.

No Django. Owner: helper A (see /work/notes/images.md). Contract:

- ``save(store, images: list[SaveItem], out) -> None``: one tar in Docker 25's format, which is
  both an OCI image layout (oci-layout, index.json, blobs/sha256/...) and the classic Docker
  save format (manifest.json, repositories); uncompressed layers.
- ``load(store, path, *, max_layer_size=None, progress=None) -> list[Loaded]``: a Docker save
  tar (any Docker version), an OCI image layout archive (skopeo's oci-archive, umoci's layout
  tarred), gzipped or not. Every blob's digest checked. All or nothing: on error no image is
  returned and the layers this load added are removed again.
- ``import_rootfs(store, path, *, config_changes: dict, comment="", max_layer_size=None)
  -> Loaded``: a rootfs tarball (gz/bz2/xz or plain) as a one-layer image.
- ``export_rootfs(layer_dirs, upper_dir, out, *, id_shift=0)``: the container's merged
  filesystem (overlay mounted read-only in a private mount namespace) as a tar.
- ``diff_tar(upper_dir, out, *, id_shift=0)``: an overlay upper dir as an OCI layer tar
  (0/0 char devices -> ``.wh.<name>``, opaque dirs -> ``.wh..wh..opq``).
- ``commit(store, parent_image_id, upper_dir, *, config_changes, comment, author, id_shift=0)
  -> Loaded``: the parent's layers plus the diff as a new layer (an empty diff still makes one,
  as Docker does), history appended.
- ``progress(event: dict)``: Docker's JSON progress messages ("Loading layer" with
  progressDetail), like the registry client's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SaveItem:
    image_id: str                   # hex
    repo_tags: list[str] = field(default_factory=list)   # "busybox:1.29", "localhost:5000/a:b"


@dataclass
class Loaded:
    image_id: str                   # hex sha256 of the canonical config blob
    config: dict
    diff_ids: list[str]
    size: int                       # sum of the uncompressed layer sizes
    repo_tags: list[str] = field(default_factory=list)


def save(store, images, out) -> None:
    raise NotImplementedError


def load(store, path, *, max_layer_size=None, progress=None) -> list[Loaded]:
    raise NotImplementedError


def import_rootfs(store, path, *, config_changes: dict, comment="", max_layer_size=None) -> Loaded:
    raise NotImplementedError


def export_rootfs(layer_dirs, upper_dir, out, *, id_shift=0) -> None:
    raise NotImplementedError


def diff_tar(upper_dir, out, *, id_shift=0) -> None:
    raise NotImplementedError


def commit(store, parent_image_id, upper_dir, *, config_changes, comment="", author="",
           id_shift=0) -> Loaded:
    raise NotImplementedError
