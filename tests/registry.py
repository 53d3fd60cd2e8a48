"""Test registries: Debian's docker-registry (distribution 2.8) on 127.0.0.1, a free port each.

``registry_factory(auth="none"|"basic"|"token")`` starts one in its own temp storage dir and
returns a ``LocalRegistry`` (``.host`` "127.0.0.1:<port>", ``.username``, ``.password``,
``.storage`` the registry's filesystem root, ``.stop()``). Session fixtures ``registry``,
``basic_registry`` and ``token_registry`` share one of each per test session: tests push to
repositories with unique names.

- basic: an htpasswd file with a bcrypt hash (the only scheme docker-registry accepts).
- token: a small token server (http.server in a thread, on loopback) answers the registry's
  ``Bearer realm=...,service=...,scope=...`` challenge: checks basic credentials, and issues an
  RS256 JWT granting the requested scope, signed by a throwaway key whose self-signed
  certificate travels in the ``x5c`` header and is the registry's ``rootcertbundle``.
  Anonymous requests get a token granting nothing, like Docker Hub's for a private repository.
  A POSTed OAuth2 ``refresh_token`` grant with ``token_server.identity_token`` is answered with
  an ``access_token``.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest
import requests

REGISTRY_BIN = "/usr/bin/docker-registry"
SERVICE = "dockyard-test-registry"
ISSUER = "dockyard-test-token-issuer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TokenServer:
    """Issues registry bearer tokens for one user; anonymous callers get no access."""

    def __init__(self, workdir: str, username: str, password: str):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.username, self.password = username, password
        # What an OAuth2 login would hand out: POSTed back as a refresh_token grant.
        self.identity_token = secrets.token_urlsafe(16)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dockyard test token signer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1))
                .not_valid_after(now + datetime.timedelta(days=1))
                .sign(self.key, hashes.SHA256()))
        self.cert_path = os.path.join(workdir, "token-signer.pem")
        with open(self.cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.requests: list[dict] = []  # what the registry's clients asked for, for tests
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="token-server")
        self.thread.start()

    def _account(self, authorization: str) -> str | None:
        """The authenticated user, "" for anonymous, None for bad credentials."""
        if not authorization:
            return ""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        ok = (secrets.compare_digest(user, self.username)
              and secrets.compare_digest(password, self.password))
        return user if ok else None

    def issue(self, account: str, scopes: list[str]) -> str:
        import jwt

        access = []
        for scope in scopes if account else []:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name,
                           "actions": [a for a in actions.split(",") if a]})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": account, "aud": SERVICE, "iat": now, "nbf": now - 5,
                  "exp": now + 300, "jti": secrets.token_hex(8), "access": access}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": self.x5c})

    def _handler(self):
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                account = server._account(self.headers.get("Authorization", ""))
                scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
                server.requests.append({"account": account, "scopes": scopes,
                                        "service": query.get("service", [""])[0]})
                if url.path != "/token":
                    return self._reply(404, {"errors": [{"code": "NOT_FOUND"}]})
                if account is None:
                    return self._reply(401, {"details": "incorrect username or password"})
                self._reply(200, {"token": server.issue(account, scopes), "expires_in": 300})

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                scopes = [s for value in form.get("scope", []) for s in value.split(" ") if s]
                ok = (form.get("grant_type") == ["refresh_token"] and secrets.compare_digest(
                    form.get("refresh_token", [""])[0], server.identity_token))
                server.requests.append({"account": server.username if ok else None,
                                        "scopes": scopes, "grant": "refresh_token",
                                        "service": form.get("service", [""])[0]})
                if not ok:
                    return self._reply(401, {"error": "invalid_grant"})
                # The OAuth2 reply names it access_token.
                self._reply(200, {"access_token": server.issue(server.username, scopes),
                                  "expires_in": 300})

            def _reply(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        return Handler

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class LocalRegistry:
    def __init__(self, auth: str = "none"):
        if auth not in ("none", "basic", "token"):
            raise ValueError(f"unknown auth {auth!r}")
        if not os.access(REGISTRY_BIN, os.X_OK):
            pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
        self.auth = auth
        self.workdir = tempfile.mkdtemp(prefix="dockyard-registry-")
        self.storage = os.path.join(self.workdir, "storage")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.username = "dockyard" if auth != "none" else ""
        self.password = secrets.token_urlsafe(12) if auth != "none" else ""
        self.token_server: TokenServer | None = None
        self.process: subprocess.Popen | None = None
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _auth_config(self) -> list[str]:
        if self.auth == "basic":
            import bcrypt

            htpasswd = os.path.join(self.workdir, "htpasswd")
            hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=5)).decode()
            with open(htpasswd, "w") as f:
                f.write(f"{self.username}:{hashed}\n")
            return ["auth:", "  htpasswd:", "    realm: dockyard-test",
                    f"    path: {htpasswd}"]
        if self.auth == "token":
            self.token_server = TokenServer(self.workdir, self.username, self.password)
            return ["auth:", "  token:", f"    realm: {self.token_server.realm}",
                    f"    service: {SERVICE}", f"    issuer: {ISSUER}",
                    f"    rootcertbundle: {self.token_server.cert_path}"]
        return []

    def _start(self):
        config = "\n".join([
            "version: 0.1",
            "log:", "  level: warn", "  accesslog:", "    disabled: true",
            "storage:", "  filesystem:", f"    rootdirectory: {self.storage}",
            "  delete:", "    enabled: true",
            "http:", f"  addr: 127.0.0.1:{self.port}",
            *self._auth_config(),
        ]) + "\n"
        config_path = os.path.join(self.workdir, "config.yml")
        with open(config_path, "w") as f:
            f.write(config)
        self.log_path = os.path.join(self.workdir, "registry.log")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([REGISTRY_BIN, "serve", config_path],
                                            stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_tail()}")
            try:
                requests.get(f"{self.url}/v2/", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not answer on {self.host}: {self.log_tail()}")

    def log_tail(self, size: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-size:].decode(errors="replace")
        except OSError:
            return ""

    def blob_data_path(self, digest: str) -> str:
        """The file in the registry's storage that holds a blob (to corrupt it in tests)."""
        hexd = digest.removeprefix("sha256:")
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", "sha256",
                            hexd[:2], hexd, "data")

    def push_image(self, name: str, layers: list[bytes], config: dict | None = None,
                   fmt: str = "v2s2") -> dict:
        """Push an image made of these layer tars with skopeo (``fmt`` "v2s2" or "oci").

        Returns the OCI layout's manifest/config digests and the config bytes as built (what
        skopeo pushes may be converted: ask the registry for the manifest it stores)."""
        layout = tempfile.mkdtemp(prefix="layout-", dir=self.workdir)
        try:
            built = write_oci_layout(layout, layers, config)
            creds = [f"--dest-creds={self.username}:{self.password}"] if self.username else []
            proc = subprocess.run(
                ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--format", fmt,
                 *creds, f"oci:{layout}:latest", f"docker://{self.host}/{name}"],
                capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"skopeo copy failed: {proc.stderr}")
        finally:
            shutil.rmtree(layout, ignore_errors=True)
        return built

    def skopeo_inspect(self, name: str, raw: bool = False) -> dict:
        creds = [f"--creds={self.username}:{self.password}"] if self.username else []
        proc = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", *(["--raw"] if raw else []), *creds,
             f"docker://{self.host}/{name}"], capture_output=True, text=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"skopeo inspect failed: {proc.stderr}")
        return json.loads(proc.stdout)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.token_server is not None:
            self.token_server.stop()
            self.token_server = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def file_layer(path: str, data: bytes) -> bytes:
    """A layer tar holding one regular file (plus its parent dirs)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        parts = path.split("/")
        for i in range(1, len(parts)):
            d = tarfile.TarInfo("/".join(parts[:i]) + "/")
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(d)
        f = tarfile.TarInfo(path)
        f.size, f.mode = len(data), 0o644
        tf.addfile(f, io.BytesIO(data))
    return buf.getvalue()


def gzip_deterministic(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def write_oci_layout(layout: str, layers: list[bytes], config: dict | None = None) -> dict:
    """An OCI image layout (tag "latest") of gzipped layers and a linux/amd64 config."""
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest[7:]), "wb") as f:
            f.write(data)
        return digest

    descriptors = []
    for tar in layers:
        gz = gzip_deterministic(tar)
        descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": put(gz), "size": len(gz)})
    config = dict(config or {"config": {"Cmd": ["sh"]}})
    config.setdefault("architecture", "amd64")
    config.setdefault("os", "linux")
    config["rootfs"] = {"type": "layers", "diff_ids": [
        "sha256:" + hashlib.sha256(tar).hexdigest() for tar in layers]}
    config_bytes = json.dumps(config).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": put(config_bytes), "size": len(config_bytes)},
        "layers": descriptors}).encode()
    manifest_digest = put(manifest)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    return {"manifest_digest": manifest_digest, "config": config_bytes,
            "config_digest": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
            "diff_ids": config["rootfs"]["diff_ids"],
            "layer_digests": [d["digest"] for d in descriptors]}


@pytest.fixture(scope="session")
def registry_factory():
    """Start registries on demand; all are stopped at the end of the session."""
    started: list[LocalRegistry] = []

    def make(auth: str = "none") -> LocalRegistry:
        reg = LocalRegistry(auth)
        started.append(reg)
        return reg

    try:
        yield make
    finally:
        for reg in started:
            reg.stop()


@pytest.fixture(scope="session")
def registry(registry_factory):
    return registry_factory("none")


@pytest.fixture(scope="session")
def basic_registry(registry_factory):
    return registry_factory("basic")


@pytest.fixture(scope="session")
def token_registry(registry_factory):
    return registry_factory("token")
