"""Real peers for interop tests and benchmarks: Debian's Docker engine and its CLI.

``DockerEngine(base)``: dockerd (docker.io) with its own data root, exec root and socket under
``base``, ``--bridge=none --iptables=false --ip6tables=false`` so the host's network and
firewall are untouched (containers run with ``--network none``). It cannot pull: images come
from ``docker import`` / ``docker load``. ``.cli(*args, input=None)`` runs the real docker CLI
against it (empty client config) and raises on a non-zero exit; ``.sock`` is its socket path.

The session fixture ``docker_engine`` (registered by tests/conftest.py) starts one for the
tests that ask for it and removes everything it made afterwards. Also used by bench/.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


def docker_cli() -> str:
    for c in (os.environ.get("DOCKYARD_BENCH_DOCKER_CLI"), "/usr/local/bin/docker",
              "/usr/bin/docker"):
        if c and os.access(c, os.X_OK):
            return c
    found = shutil.which("docker")
    if not found:
        raise RuntimeError("no docker CLI: run scripts/setup.sh (installs docker.io)")
    return found


class Cli:
    """The real docker CLI against one daemon, with an empty client config."""

    def __init__(self, host: str):
        self.host = host
        self.cfg = tempfile.mkdtemp(prefix="dockyard-cli-")
        Path(self.cfg, "config.json").write_text("{}\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env.update(DOCKER_CONFIG=self.cfg, DOCKER_CLI_HINTS="false")
        self.exe = docker_cli()

    def __call__(self, *args: str, check: bool = True, timeout: float = 120,
                 input: bytes | None = None):
        r = subprocess.run([self.exe, "-H", self.host, *args], env=self.env,
                           capture_output=True, timeout=timeout, input=input)
        if check and r.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} exited {r.returncode}: "
                               f"{r.stderr.decode(errors='replace').strip()}")
        return r

    def close(self) -> None:
        shutil.rmtree(self.cfg, ignore_errors=True)


def ping(sock_path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(3)
            s.connect(sock_path)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")
    except OSError:
        return False


class DockerEngine:
    """Debian's dockerd on its own socket, data root and exec root under ``base``; no
    firewall changes. ``stop()`` removes ``base``."""

    def __init__(self, base: str | Path):
        self.base = Path(base)
        self.sock = str(self.base / "run" / "docker.sock")
        self.data = self.base / "data"
        self.exec_root = self.base / "exec"
        self.log_path = self.base / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self._cli: Cli | None = None

    def start(self) -> DockerEngine:
        exe = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not os.path.exists(exe):
            raise RuntimeError("dockerd not installed (scripts/setup.sh installs docker.io)")
        if ping(self.sock):
            raise RuntimeError(f"a daemon already answers on {self.sock}: stop it first")
        for d in (self.base / "run", self.data, self.exec_root):
            d.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [exe, "--data-root", str(self.data), "--exec-root", str(self.exec_root),
             "-H", f"unix://{self.sock}", "--pidfile", str(self.base / "run" / "dockerd.pid"),
             "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
             "--userland-proxy=false", "--log-level=warn"],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True,
        )
        logf.close()
        deadline = time.monotonic() + 60
        while not ping(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)
        self._cli = Cli(f"unix://{self.sock}")
        return self

    def cli(self, *args: str, input: bytes | None = None, check: bool = True,
            timeout: float = 120):
        """``docker <args>`` against this engine; a CompletedProcess (stdout as bytes)."""
        if self._cli is None:
            raise RuntimeError("the Docker engine is not running")
        return self._cli(*args, input=input, check=check, timeout=timeout)

    def stop(self) -> None:
        if self._cli is not None:
            self._cli.close()
            self._cli = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        # Its own containerd goes with it; then no mount may be left before deleting.
        with open("/proc/self/mountinfo") as f:
            left = [line.split()[4] for line in f if line.split()[4].startswith(str(self.base))]
        for m in sorted(left, key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    @staticmethod
    def version() -> str:
        r = subprocess.run([shutil.which("dockerd") or "/usr/sbin/dockerd", "--version"],
                           capture_output=True, text=True)
        return r.stdout.strip().replace("Docker version ", "")


@pytest.fixture(scope="session")
def docker_engine():
    """The real Docker engine for this test session (started on first use)."""
    if os.geteuid() != 0:
        pytest.fail("the Docker engine fixture needs root", pytrace=False)
    engine = DockerEngine(tempfile.mkdtemp(prefix="dockyard-peer-", dir="/var/tmp"))
    try:
        engine.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield engine
    finally:
        engine.stop()
