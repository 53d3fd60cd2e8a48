"""`remote=` builds (docker-py's `images.build(path=<git URL>)`, POST /build with no body):
a git repository served by `git daemon` on loopback, Docker's `#ref:subdir` fragment; a
remote that is not a git URL is refused."""

import socket
import subprocess
import time

import docker
import pytest
from live import free_port

from .build_helpers import write_context

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": "/usr/bin:/bin"}


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


@pytest.fixture
def git_server(tmp_path):
    """A repository with a `docker/` context on two branches, served read-only on loopback;
    yields its git:// URL."""
    repo = write_context(tmp_path / "served" / "app.git", {
        "docker/Dockerfile": "FROM busybox:1.29\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n",
        "docker/msg": "from the main branch\n",
    })
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "main")
    _git(repo, "checkout", "-q", "-b", "other")
    (repo / "docker" / "msg").write_text("from the other branch\n")
    _git(repo, "commit", "-q", "-am", "other")
    _git(repo, "checkout", "-q", "main")
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1",
         f"--port={port}", f"--base-path={tmp_path / 'served'}", str(tmp_path / "served")],
        env=GIT_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "git daemon did not start"
                time.sleep(0.1)
        yield f"git://127.0.0.1:{port}/app.git"
    finally:
        daemon.terminate()
        daemon.wait(10)


def test_build_from_a_git_remote(docker_client, build_tags, git_server):
    main, other = build_tags("gitmain"), build_tags("gitother")
    docker_client.images.build(path=f"{git_server}#main:docker", tag=main)
    docker_client.images.build(path=f"{git_server}#other:docker", tag=other)
    assert docker_client.containers.run(main, remove=True) == b"from the main branch\n"
    assert docker_client.containers.run(other, remove=True) == b"from the other branch\n"


def test_remote_that_is_not_git_is_refused(docker_client):
    # a 400 before any line: docker-py reads the body as the build's last event
    with pytest.raises(docker.errors.BuildError) as caught:
        docker_client.images.build(path="https://example.invalid/context.tar.gz")
    assert "only git repositories" in str(caught.value.msg)
