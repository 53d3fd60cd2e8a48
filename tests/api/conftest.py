"""Fixtures for the Docker API tests: unique names and guaranteed container cleanup."""

import contextlib
import http.client
import json
import secrets
import socket

import pytest


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


def raw_request(live_stack, method, path, body=None, headers=None, tcp=False):
    """One request straight to the API server; returns (status, headers, parsed JSON or bytes)."""
    if tcp:
        host, port = live_stack.tcp_host.removeprefix("tcp://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
    else:
        conn = UnixHTTPConnection(live_stack.docker_host.removeprefix("unix://"))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        with contextlib.suppress(ValueError):
            data = json.loads(data)
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


@pytest.fixture
def names(docker_client):
    """A factory of unique container names; every container so named is removed afterwards."""
    prefix = f"dyapi{secrets.token_hex(3)}"
    made = []

    def make(label: str = "c") -> str:
        name = f"{prefix}-{label}-{len(made)}"
        made.append(name)
        return name

    make.prefix = prefix
    yield make
    for container in docker_client.containers.list(all=True):
        if container.name.startswith(prefix):
            with contextlib.suppress(Exception):
                container.remove(force=True)


@pytest.fixture
def cli(live_stack):
    """The real docker CLI against the stack: cli("ps", "-a") -> CompletedProcess."""

    def run(*args, **kwargs):
        kwargs.setdefault("timeout", 60)
        return live_stack.docker_cli(*args, **kwargs)

    return run


@pytest.fixture
def build_tags(cli):
    """A factory of unique image tags for builds; every image so tagged is removed afterwards
    (with its untagged parents: the build's step images)."""
    prefix = f"dyapi-build-{secrets.token_hex(3)}"
    made = []

    def make(label: str = "img") -> str:
        tag = f"{prefix}-{label}{len(made)}:latest"
        made.append(tag)
        return tag

    yield make
    for tag in made:
        cli("rmi", "-f", tag)
