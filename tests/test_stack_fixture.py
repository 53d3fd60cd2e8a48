"""The test harness itself: isolation of non-live tests, and the live stack's coordinates."""

import http.client
import os
import socket

import live
import pytest
from django.conf import settings


def test_non_live_tests_use_a_throwaway_state_root():
    assert str(settings.STATE_ROOT).startswith("/tmp/dockyard-pytest")
    assert not str(settings.DATABASES["default"]["NAME"]).startswith("/var/lib/dockyard")
    assert settings.API_SOCKET != "/run/dockyard/docker.sock"


def test_mountinfo_unescape():
    assert live._unescape_mountinfo(r"/var/tmp/a\040b\134c") == "/var/tmp/a b\\c"
    assert live._unescape_mountinfo("/plain") == "/plain"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_a_base_dir_with_overlayfs_upper_dirs_exists():
    base = live.pick_base_dir()
    assert live.overlay_works(base)
    assert not live.mounts_under(base + "/.dockyard-ovl-probe-")


def test_live_stack_answers(live_stack):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(live_stack.docker_host.removeprefix("unix://"))
    sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
    reply = b""
    while chunk := sock.recv(4096):
        reply += chunk
    sock.close()
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"OK"), reply

    host, port = live_stack.panel_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/login/")
    assert conn.getresponse().status == 200

    out = live_stack.manage(
        "shell", "-c", "from panel.nodes.models import Node; print(Node.objects.get().name)"
    )
    assert out.strip().splitlines()[-1] == live_stack.node
    assert live_stack.state_root.startswith(("/var/tmp/", "/tmp/"))


def test_docker_cli_reaches_the_live_stack(live_stack):
    r = live_stack.docker_cli("version", "--format", "{{.Server.APIVersion}}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1.41"
