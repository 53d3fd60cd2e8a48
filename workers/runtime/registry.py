"""A client of the OCI distribution protocol (Docker registry HTTP API v2): pull and push.

No Django. Contract:

- ``RemoteRef.parse(ref)`` -> RemoteRef(registry, repository, tag, digest): Docker's rules
  (``busybox`` -> registry ``docker.io`` (reached at registry-1.docker.io), repository
  ``library/busybox``, tag ``latest``; ``localhost:5000/a/b@sha256:...``).
- ``Credentials(username, password)`` or ``Credentials(identity_token=...)``.
- ``pull(store, ref, *, credentials=None, insecure=False, platform=None, progress=None,
  max_layer_size=None, concurrency=3) -> PullResult``
- ``push(store, image_id, ref, *, credentials=None, insecure=False, progress=None) -> PushResult``
- ``check_login(registry, credentials, *, insecure=False) -> None`` (raises AuthError)
- ``is_insecure(registry, patterns) -> bool``: whether settings.INSECURE_REGISTRIES lists it.
- ``progress(event: dict)`` receives Docker's JSON progress messages, e.g.
  ``{"status": "Downloading", "id": "<12 hex>", "progressDetail": {"current": n, "total": t}}``
  (statuses: "Pulling from <repo>", "Pulling fs layer", "Waiting", "Downloading",
  "Verifying Checksum", "Download complete", "Extracting", "Pull complete", "Already exists",
  "Digest: sha256:..."; for push: "The push refers to repository [...]", "Preparing",
  "Pushing", "Pushed", "Layer already exists", "<tag>: digest: sha256:... size: N").
  It is called from the download threads too; the caller throttles.
- Errors: ``RegistryError(ImageError)`` with ``http_status`` (404 not found / pull access
  denied, 401 unauthorized, 500 otherwise); ``AuthError(RegistryError)`` (401);
  ``DigestMismatch(RegistryError)``.

Pull downloads every missing layer (``concurrency`` at a time) into the store's scratch dir,
checking each blob's digest and size while it streams, and only then unpacks them bottom to
top and stores the config: a bad blob leaves nothing in the store.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import tempfile
import threading
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from . import oci
from .images import ImageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_HOST = "registry-1.docker.io"

# Layer encodings ImageStore.add_layer_tar reads (plain or gzip tar).
LAYER_TYPES = {
    oci.DOCKER_LAYER,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    oci.OCI_LAYER,
    oci.OCI_LAYER_GZIP,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}
MAX_MANIFEST_SIZE = 4 << 20
MAX_CONFIG_SIZE = 8 << 20
TIMEOUT = (10, 60)  # connect, read
_CHUNK = 1 << 20
_USER_AGENT = "dockyard"

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_DOMAIN_RE = re.compile(r"^(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$")


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
        invalid = RegistryError(f"invalid reference format: {ref!r}", 400)
        name, _, digest = ref.partition("@")
        if digest and not _DIGEST_RE.match(digest):
            raise invalid
        tag = ""
        slash = name.rfind("/")
        colon = name.rfind(":")
        if colon > slash:
            name, tag = name[:colon], name[colon + 1:]
            if not _TAG_RE.match(tag):
                raise invalid
        first, sep, rest = name.partition("/")
        if sep and ("." in first or ":" in first or first == "localhost"):
            if not _DOMAIN_RE.match(first):
                raise invalid
            registry, repository = first, rest
        else:
            registry, repository = DOCKER_HUB, name
        if registry in ("index.docker.io", "registry-1.docker.io"):
            registry = DOCKER_HUB
        if registry == DOCKER_HUB and "/" not in repository:
            repository = "library/" + repository
        if not _REPOSITORY_RE.match(repository) or len(registry) + len(repository) > 254:
            raise invalid
        if not tag and not digest:
            tag = "latest"
        return cls(registry, repository, tag, digest)

    @property
    def name(self) -> str:
        """Docker's familiar name: "busybox", "user/app", "localhost:5000/a/b"."""
        if self.registry == DOCKER_HUB:
            return self.repository.removeprefix("library/")
        return f"{self.registry}/{self.repository}"

    @property
    def full_name(self) -> str:
        """The fully qualified name push prints: "docker.io/library/busybox"."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")


@dataclass
class PullResult:
    image_id: str              # hex sha256 of the config
    config: dict
    diff_ids: list[str]        # "sha256:...", bottom to top
    manifest_digest: str       # "sha256:..." of the manifest as served (for RepoDigests)
    size: int                  # sum of the uncompressed layer sizes
    downloaded: bool = True    # False when every blob was already present
    layers_skipped: list[str] = field(default_factory=list)


@dataclass
class PushResult:
    digest: str   # the manifest's digest
    size: int     # the manifest's size in bytes


def is_insecure(registry: str, patterns) -> bool:
    """Whether a registry ("host[:port]") is listed in patterns: "host", "host:port", or a
    CIDR containing the host's IP literal. Host names are not resolved (list them by name)."""
    host, _ = _split_host_port(registry)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        if pattern in (registry, host):
            return True
        if ip is not None and "/" in pattern:
            try:
                if ip in ipaddress.ip_network(pattern, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _split_host_port(registry: str) -> tuple[str, str]:
    if registry.startswith("["):
        host, _, rest = registry[1:].partition("]")
        return host, rest.removeprefix(":")
    host, _, port = registry.partition(":")
    return host, port


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _emit(progress, status: str, ident: str = "", current: int | None = None,
          total: int | None = None):
    if progress is None:
        return
    event: dict = {"status": status}
    if ident:
        event["id"] = ident
    if current is not None:
        event["progressDetail"] = {"current": current, "total": total} if total else {
            "current": current}
    elif ident:
        event["progressDetail"] = {}
    progress(event)


# ------------------------------------------------------------------------------ HTTP + auth
def _parse_challenge(header: str) -> tuple[str, dict]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


def _error_text(resp: requests.Response) -> str:
    """The registry's error (Docker's wording: "<code lowercased>: <message>")."""
    try:
        errors = resp.json().get("errors") or []
    except ValueError:
        errors = []
    if errors and isinstance(errors[0], dict):
        e = errors[0]
        code = str(e.get("code", "")).lower().replace("_", " ")
        return f"{code}: {e.get('message', '')}".strip(": ")
    return f"{resp.status_code} {resp.reason}"


class _Session:
    """One registry, one set of scopes: pings, authenticates on a challenge, retries once."""

    def __init__(self, registry: str, credentials: Credentials | None, insecure: bool,
                 scopes: list[str]):
        self.registry = registry
        self.host = DOCKER_HUB_HOST if registry == DOCKER_HUB else registry
        self.credentials = credentials
        self.insecure = insecure
        self.scopes = scopes
        self.http = requests.Session()
        self.http.headers["User-Agent"] = _USER_AGENT
        self.base = ""
        self.authorization = ""
        self.challenge: tuple[str, dict] | None = None
        self.lock = threading.Lock()

    def close(self):
        self.http.close()

    def __enter__(self):
        self.ping()
        if self.challenge is not None:
            self.authenticate()  # up front: saves a 401 round trip per request
        return self

    def __exit__(self, *exc):
        self.close()

    def ping(self) -> requests.Response:
        """GET /v2/: pick the scheme (HTTPS; plain HTTP only when insecure) and learn the
        auth challenge."""
        schemes = ["https", "http"] if self.insecure else ["https"]
        last: Exception | None = None
        for scheme in schemes:
            url = f"{scheme}://{self.host}/v2/"
            try:
                resp = self.http.get(url, timeout=TIMEOUT, verify=not self.insecure)
            except requests.exceptions.SSLError as e:
                why = ("http: server gave HTTP response to HTTPS client"
                       if "WRONG_VERSION_NUMBER" in str(e) else _reason(e))
                last = RegistryError(f'Get "{url}": {why} (a plain-HTTP registry must be '
                                     f"listed in DOCKYARD_INSECURE_REGISTRIES)")
                continue
            except requests.RequestException as e:
                last = RegistryError(f'Get "{url}": {_reason(e)}')
                continue
            self.base = f"{scheme}://{self.host}"
            if resp.status_code == 401:
                self.challenge = _parse_challenge(resp.headers.get("WWW-Authenticate", ""))
            return resp
        raise last  # type: ignore[misc]

    def authenticate(self):
        scheme, params = self.challenge or ("", {})
        creds = self.credentials
        if scheme == "basic":
            if not creds or not creds.username:
                raise AuthError("unauthorized: authentication required")
            pair = f"{creds.username}:{creds.password}".encode()
            self.authorization = "Basic " + base64.b64encode(pair).decode()
        elif scheme == "bearer":
            self.authorization = "Bearer " + self._fetch_token(params)
        elif not scheme:
            raise AuthError("unauthorized: authentication required")
        else:
            raise AuthError(f"unauthorized: unsupported authentication challenge {scheme!r}")

    def _fetch_token(self, params: dict) -> str:
        realm = params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise AuthError(f"unauthorized: bad token realm {realm!r}")
        scopes = list(self.scopes)
        if params.get("scope") and params["scope"] not in scopes:
            scopes.append(params["scope"])
        query = {"service": params.get("service", "")}
        creds = self.credentials
        try:
            if creds and creds.identity_token:
                resp = self.http.post(realm, timeout=TIMEOUT, data={
                    "grant_type": "refresh_token", "refresh_token": creds.identity_token,
                    "client_id": _USER_AGENT, "scope": " ".join(scopes), **query})
            else:
                auth = (creds.username, creds.password) if creds and creds.username else None
                resp = self.http.get(realm, timeout=TIMEOUT, auth=auth,
                                     params={**query, "scope": scopes})
        except requests.RequestException as e:
            raise RegistryError(f'Get "{realm}": {_reason(e)}') from None
        if resp.status_code in (401, 403):
            raise AuthError("unauthorized: incorrect username or password")
        if resp.status_code != 200:
            raise RegistryError(f"token server {realm}: {resp.status_code} {resp.reason}")
        try:
            body = resp.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not token:
            raise AuthError(f"unauthorized: no token from {realm}")
        return token

    def request(self, method: str, path_or_url: str, *, ok=(200,), **kwargs
                ) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        body = kwargs.get("data")
        for attempt in (0, 1):
            headers = dict(kwargs.pop("headers", None) or {})
            kwargs["headers"] = headers
            with self.lock:
                authorization = self.authorization
            if authorization:
                headers["Authorization"] = authorization
            try:
                resp = self.http.request(method, url, timeout=TIMEOUT,
                                         verify=not self.insecure, **kwargs)
            except requests.RequestException as e:
                raise RegistryError(f'{method.title()} "{url}": {_reason(e)}') from None
            if resp.status_code == 401 and attempt == 0 and _rewind(body):
                challenge = resp.headers.get("WWW-Authenticate", "")
                resp.close()
                with self.lock:
                    if challenge:
                        self.challenge = _parse_challenge(challenge)
                    if self.authorization == authorization:
                        self.authenticate()
                continue
            break
        if resp.status_code in ok:
            return resp
        text = _error_text(resp)
        resp.close()
        if resp.status_code in (401, 403):
            raise AuthError(text)
        raise RegistryError(text, 404 if resp.status_code == 404 else 500)


def _rewind(body) -> bool:
    """Make a request body sendable again; False when it cannot be."""
    if body is None or isinstance(body, bytes):
        return True
    if hasattr(body, "seek"):
        body.seek(0)
        return True
    return False


def _reason(exc: Exception) -> str:
    """The innermost message of a requests exception, without urllib3's wrapping."""
    text = str(exc)
    m = re.search(r"\[Errno [-\d]+\] ([^'\")\]]+)|\[SSL[^\]]*\] ([^'\"(]+)", text)
    if m:
        return (m.group(1) or m.group(2)).strip()
    return text


# ------------------------------------------------------------------------------ pull
def _fetch_manifest(session: _Session, repo: str, reference: str) -> tuple[bytes, str, str]:
    """(bytes, media type, digest) of a manifest, its digest checked when pinned."""
    try:
        resp = session.request("GET", f"/v2/{repo}/manifests/{reference}", stream=True,
                               headers={"Accept": ", ".join((*oci.MANIFEST_TYPES, *oci.INDEX_TYPES))})
    except RegistryError as e:
        if e.http_status == 404:
            sep = "@" if reference.startswith("sha256:") else ":"
            raise RegistryError(f"manifest for {session.registry}/{repo}{sep}{reference} "
                                f"not found: {e}", 404) from None
        raise
    with resp:
        data = _read_limited(resp, MAX_MANIFEST_SIZE, "manifest")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    served = resp.headers.get("Docker-Content-Digest", "")
    if reference.startswith("sha256:") and digest != reference:
        raise DigestMismatch(f"manifest digest mismatch: want {reference}, got {digest}")
    if served and _DIGEST_RE.match(served) and served != digest:
        raise DigestMismatch(f"manifest digest mismatch: registry says {served}, got {digest}")
    try:
        doc = json.loads(data)
    except ValueError:
        raise RegistryError("invalid manifest: not JSON") from None
    if not isinstance(doc, dict):
        raise RegistryError("invalid manifest: not a JSON object")
    media_type = doc.get("mediaType") or resp.headers.get("Content-Type", "").split(";")[0]
    if media_type not in (*oci.MANIFEST_TYPES, *oci.INDEX_TYPES):
        if doc.get("manifests"):
            media_type = oci.OCI_INDEX
        elif doc.get("config") and doc.get("layers") is not None:
            media_type = oci.OCI_MANIFEST
        else:
            raise RegistryError(f"unsupported manifest media type {media_type!r}")
    return data, media_type, digest


def _read_limited(resp: requests.Response, limit: int, what: str) -> bytes:
    chunks, size = [], 0
    for chunk in resp.iter_content(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise RegistryError(f"{what} larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _pick_platform(index: dict, wanted: str) -> dict:
    plat = oci.parse_platform(wanted)
    entries = [e for e in index.get("manifests") or []
               if isinstance(e.get("platform"), dict) and oci.platform_matches(e, plat)
               and e.get("mediaType", oci.OCI_MANIFEST) in oci.MANIFEST_TYPES]
    if not entries:
        raise RegistryError(f"no matching manifest for {oci.format_platform(plat)} in the "
                            "manifest list entries", 404)
    return oci.by_preference(entries, plat)[0]


def _descriptor(desc, what: str) -> tuple[str, int]:
    if not isinstance(desc, dict) or not _DIGEST_RE.match(str(desc.get("digest", ""))):
        raise RegistryError(f"invalid manifest: bad {what} descriptor")
    size = desc.get("size")
    if not isinstance(size, int) or size < 0:
        raise RegistryError(f"invalid manifest: bad {what} size")
    return desc["digest"], size


def _download_blob(session: _Session, repo: str, digest: str, size: int, out,
                   on_chunk=None) -> None:
    """Stream a blob into `out`, checking its size and digest as it goes."""
    resp = session.request("GET", f"/v2/{repo}/blobs/{digest}", stream=True)
    h = hashlib.sha256()
    done = 0
    with resp:
        try:
            for chunk in resp.iter_content(_CHUNK):
                done += len(chunk)
                if done > size:
                    raise DigestMismatch(f"blob {digest}: more than the {size} bytes announced")
                h.update(chunk)
                out.write(chunk)
                if on_chunk:
                    on_chunk(done)
        except requests.RequestException as e:
            raise RegistryError(f"blob {digest}: download failed: {_reason(e)}") from None
    got = "sha256:" + h.hexdigest()
    if got != digest:
        raise DigestMismatch(f"filesystem layer verification failed for digest {digest} "
                             f"(got {got})")
    if done != size:
        raise DigestMismatch(f"blob {digest}: {done} bytes, manifest says {size}")


def pull(store, ref: RemoteRef, *, credentials=None, insecure=False, platform=None,
         progress=None, max_layer_size=None, concurrency=3) -> PullResult:
    repo = ref.repository
    with _Session(ref.registry, credentials, insecure, [f"repository:{repo}:pull"]) as session:
        _emit(progress, f"Pulling from {repo}", ref.tag or ref.digest)
        data, media_type, top_digest = _fetch_manifest(session, repo, ref.digest or ref.tag)
        blobs_to_store = [data]
        if media_type in oci.INDEX_TYPES:
            entry = _pick_platform(json.loads(data), platform or "")
            data, media_type, _ = _fetch_manifest(session, repo, entry["digest"])
            blobs_to_store.append(data)
        manifest = json.loads(data)
        config_digest, config_size = _descriptor(manifest.get("config"), "config")
        if config_size > MAX_CONFIG_SIZE:
            raise RegistryError(f"image config larger than {MAX_CONFIG_SIZE} bytes")
        layers = [_descriptor(d, "layer") for d in manifest.get("layers") or []]
        for desc in manifest.get("layers") or []:
            if desc.get("mediaType", oci.DOCKER_LAYER) not in LAYER_TYPES:
                raise RegistryError(f"unsupported layer media type {desc.get('mediaType')!r}")

        downloaded = False
        if store.has_blob(config_digest):
            config_bytes = store.get_blob(config_digest)
        else:
            with tempfile.SpooledTemporaryFile(max_size=MAX_CONFIG_SIZE) as buf:
                _download_blob(session, repo, config_digest, config_size, buf)
                buf.seek(0)
                config_bytes = buf.read()
            downloaded = True
        try:
            config = json.loads(config_bytes)
            diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
        except (ValueError, AttributeError):
            raise RegistryError("invalid image config") from None
        if len(diff_ids) != len(layers) or not all(
                isinstance(d, str) and _DIGEST_RE.match(d) for d in diff_ids):
            raise RegistryError(f"image config lists {len(diff_ids)} layer(s), the manifest "
                                f"{len(layers)}")

        missing, skipped, seen = [], [], set()
        for (digest, size), diff_id in zip(layers, diff_ids, strict=True):
            if diff_id in seen:  # the same layer twice in one image: fetched once
                continue
            seen.add(diff_id)
            if store.has_layer(diff_id):
                skipped.append(diff_id)
                _emit(progress, "Already exists", _short(digest))
            else:
                missing.append((digest, size, diff_id))
                _emit(progress, "Pulling fs layer", _short(digest))
        for digest, _size, _diff_id in missing[concurrency:]:
            _emit(progress, "Waiting", _short(digest))

        files = _download_layers(session, store, repo, missing, progress, concurrency)
        try:
            for (digest, size, diff_id), path in zip(missing, files, strict=True):
                _extract(store, digest, size, diff_id, path, progress, max_layer_size)
        finally:
            for path in files:
                _unlink(path)
        downloaded = downloaded or bool(missing)

        for blob in blobs_to_store:
            store.put_blob(blob)
        image_id = store.put_blob(config_bytes)
        _emit(progress, f"Digest: {top_digest}")
    return PullResult(image_id=image_id, config=config, diff_ids=diff_ids,
                      manifest_digest=top_digest,
                      size=sum(store.layer_size(d) for d in diff_ids), downloaded=downloaded,
                      layers_skipped=skipped)


def _download_layers(session, store, repo, missing, progress, concurrency) -> list[str]:
    """Download the missing layer blobs into scratch files; all or none (on error the files
    already written are removed)."""
    files: list[str] = []

    def fetch(item) -> str:
        digest, size, _diff_id = item
        ident = _short(digest)
        fd, path = tempfile.mkstemp(dir=store.tmp, prefix="pull-")
        files.append(path)
        with os.fdopen(fd, "wb") as out:
            _download_blob(session, repo, digest, size, out,
                           lambda done: _emit(progress, "Downloading", ident, done, size))
        _emit(progress, "Verifying Checksum", ident)
        _emit(progress, "Download complete", ident)
        return path

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        return list(pool.map(fetch, missing))
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        for path in files:
            _unlink(path)
        raise
    finally:
        pool.shutdown(wait=True)


def _extract(store, digest, size, diff_id, path, progress, max_layer_size):
    ident = _short(digest)
    got = store.add_layer_tar(path, max_size=max_layer_size,
                              progress=lambda done: _emit(progress, "Extracting", ident,
                                                          done, size))
    if got != diff_id:
        raise DigestMismatch(f"layer {digest}: diff_id is {got}, the image config says {diff_id}")
    if digest != diff_id:  # a compressed blob: a later push can offer it to the registry
        store.record_compressed(diff_id, digest)
    _emit(progress, "Pull complete", ident)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------------------ push
class _UploadBody:
    """A file streamed as a request body with a known length, reporting progress."""

    def __init__(self, path: str, size: int, on_read):
        self.f = open(path, "rb")  # noqa: SIM115 (closed by the caller)
        self.size, self.on_read, self.done = size, on_read, 0

    def __len__(self):
        return self.size - self.done

    def read(self, n=-1):
        data = self.f.read(n if n and n > 0 else _CHUNK)
        self.done += len(data)
        if data:
            self.on_read(self.done)
        return data

    def seek(self, offset, whence=0):
        self.done = self.f.seek(offset, whence)
        return self.done

    def close(self):
        self.f.close()


def _remote_blob_size(session: _Session, repo: str, digest: str) -> int | None:
    """The size of a blob the repository already has, None when it has not."""
    resp = session.request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404))
    resp.close()
    if resp.status_code != 200:
        return None
    return int(resp.headers.get("Content-Length") or 0)


def _upload_blob(session: _Session, repo: str, digest: str, body) -> None:
    """Monolithic upload: POST a session, PUT the bytes with ?digest=."""
    resp = session.request("POST", f"/v2/{repo}/blobs/uploads/", ok=(202,), data=b"")
    resp.close()
    location = urllib.parse.urljoin(session.base + "/", resp.headers.get("Location", ""))
    parts = urllib.parse.urlsplit(location)
    query = urllib.parse.parse_qsl(parts.query) + [("digest", digest)]
    url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    resp = session.request("PUT", url, ok=(201,), data=body,
                           headers={"Content-Type": "application/octet-stream"})
    resp.close()


def push(store, image_id: str, ref: RemoteRef, *, credentials=None, insecure=False,
         progress=None) -> PushResult:
    repo = ref.repository
    config_bytes = store.get_blob(image_id)
    config = json.loads(config_bytes)
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    _emit(progress, f"The push refers to repository [{ref.full_name}]")
    scopes = [f"repository:{repo}:pull,push"]
    with _Session(ref.registry, credentials, insecure, scopes) as session:
        # Docker lists the layers top first.
        for diff_id in reversed(diff_ids):
            _emit(progress, "Preparing", _short(diff_id))

        def push_layer(diff_id: str) -> dict:
            ident = _short(diff_id)
            # The gzip a pull saw (or one made earlier) may be there: no compressing then.
            tried = [d for d in store.compressed_digests(diff_id) if d != diff_id]
            for known in tried:
                remote_size = _remote_blob_size(session, repo, known)
                if remote_size is not None:
                    _emit(progress, "Layer already exists", ident)
                    return {"mediaType": oci.DOCKER_LAYER, "size": remote_size, "digest": known}
            digest, size, path = store.compressed_layer(diff_id)
            if digest not in tried and _remote_blob_size(session, repo, digest) is not None:
                _emit(progress, "Layer already exists", ident)
            else:
                body = _UploadBody(path, size,
                                   lambda done: _emit(progress, "Pushing", ident, done, size))
                try:
                    _upload_blob(session, repo, digest, body)
                finally:
                    body.close()
                _emit(progress, "Pushed", ident)
            return {"mediaType": oci.DOCKER_LAYER, "size": size, "digest": digest}

        with ThreadPoolExecutor(max_workers=3) as pool:
            layers = list(pool.map(push_layer, diff_ids))
        config_digest = "sha256:" + image_id
        if _remote_blob_size(session, repo, config_digest) is None:
            _upload_blob(session, repo, config_digest, config_bytes)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": oci.DOCKER_MANIFEST,
            "config": {"mediaType": oci.DOCKER_CONFIG, "size": len(config_bytes),
                       "digest": config_digest},
            "layers": layers,
        }, indent=3).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        reference = ref.tag or "latest"
        resp = session.request("PUT", f"/v2/{repo}/manifests/{reference}", ok=(201,),
                               data=manifest, headers={"Content-Type": oci.DOCKER_MANIFEST})
        resp.close()
        store.put_blob(manifest)
    _emit(progress, f"{reference}: digest: {digest} size: {len(manifest)}")
    return PushResult(digest=digest, size=len(manifest))


def check_login(registry: str, credentials: Credentials, *, insecure=False) -> None:
    """Check credentials like `docker login`: answer a /v2/ challenge with them."""
    with _Session(registry, credentials, insecure, []) as session:
        if session.challenge is not None:  # an open registry: Docker also says "Login Succeeded"
            session.request("GET", "/v2/").close()
