"""A client of the OCI distribution protocol (Docker registry HTTP API v2): pull and push.

No Django. Owner: helper B (see /work/notes/images.md). Contract:

- ``RemoteRef.parse(ref)`` -> RemoteRef(registry, repository, tag, digest): Docker's rules
  (``busybox`` -> registry ``docker.io`` (reached at registry-1.docker.io), repository
  ``library/busybox``, tag ``latest``; ``localhost:5000/a/b@sha256:...``).
- ``Credentials(username, password)`` or ``Credentials(identity_token=...)``.
- ``pull(store, ref, *, credentials=None, insecure=False, platform=None, progress=None,
  max_layer_size=None, concurrency=3) -> PullResult``
- ``push(store, image_id, ref, *, credentials=None, insecure=False, progress=None) -> PushResult``
- ``check_login(registry, credentials, *, insecure=False) -> None`` (raises AuthError)
- ``progress(event: dict)`` receives Docker's JSON progress messages, e.g.
  ``{"status": "Downloading", "id": "<12 hex>", "progressDetail": {"current": n, "total": t}}``
  (statuses: "Pulling from <repo>", "Pulling fs layer", "Waiting", "Downloading",
  "Verifying Checksum", "Download complete", "Extracting", "Pull complete", "Already exists",
  "Digest: sha256:..."; for push: "The push refers to repository [...]", "Preparing",
  "Pushing", "Pushed", "Layer already exists", "<tag>: digest: sha256:... size: N").
- Errors: ``RegistryError(ImageError)`` with ``http_status`` (404 not found / pull access
  denied, 401 unauthorized, 500 otherwise); ``AuthError(RegistryError)`` (401);
  ``DigestMismatch(RegistryError)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .images import ImageError


class RegistryError(ImageError):
    http_status = 500

    def __init__(self, message: str, http_status: int | None = None):
        super().__init__(message)
        if http_status is not None:
            self.http_status = http_status


class AuthError(RegistryError):
    http_status = 401


class DigestMismatch(RegistryError):
    pass


@dataclass(frozen=True)
class Credentials:
    username: str = ""
    password: str = ""
    identity_token: str = ""


@dataclass(frozen=True)
class RemoteRef:
    registry: str     # "docker.io", "localhost:5000"
    repository: str   # "library/busybox", "team/app"
    tag: str = ""     # "" when pulled by digest only
    digest: str = ""  # "sha256:..." or ""

    @classmethod
    def parse(cls, ref: str) -> RemoteRef:
        raise NotImplementedError


@dataclass
class PullResult:
    image_id: str              # hex sha256 of the config
    config: dict
    diff_ids: list[str]        # "sha256:...", bottom to top
    manifest_digest: str       # "sha256:..." of the manifest as the registry served it (for RepoDigests)
    size: int                  # sum of the uncompressed layer sizes
    downloaded: bool = True    # False when every blob was already present
    layers_skipped: list[str] = field(default_factory=list)


@dataclass
class PushResult:
    digest: str   # the manifest's digest
    size: int     # the manifest's size in bytes


def pull(store, ref: RemoteRef, *, credentials=None, insecure=False, platform=None,
         progress=None, max_layer_size=None, concurrency=3) -> PullResult:
    raise NotImplementedError


def push(store, image_id: str, ref: RemoteRef, *, credentials=None, insecure=False,
         progress=None) -> PushResult:
    raise NotImplementedError


def check_login(registry: str, credentials: Credentials, *, insecure=False) -> None:
    raise NotImplementedError
