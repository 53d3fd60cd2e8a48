"""A build from a git URL (`docker build git://...#ref:subdir`, the panel's git field): a
shallow fetch of the ref from a git daemon on loopback, the subdir as the context, no .git
in it; a bad ref fails with Docker's words and leaves no clone behind."""

import os
import subprocess
import time

import pytest
from registry import free_port

from panel.images.models import Image
from panel.jobs.models import Job

from .build_node import build_node  # noqa: F401

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "PATH": os.environ["PATH"]}


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


@pytest.fixture
def git_daemon(tmp_path):
    """A repository `repo.git` served by `git daemon` on 127.0.0.1: branch main has
    app/Dockerfile v1, branch v2 has it changed."""
    work = tmp_path / "work"
    (work / "app").mkdir(parents=True)
    _git(work, "init", "-q", "-b", "main")
    (work / "app" / "Dockerfile").write_text(
        "FROM busybox:1.29\nCOPY . /ctx/\nRUN ls -a /ctx > /listing\n")
    (work / "app" / "hello.txt").write_text("v1\n")
    (work / "README").write_text("outside the subdir\n")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "v1")
    _git(work, "checkout", "-q", "-b", "v2")
    (work / "app" / "hello.txt").write_text("v2\n")
    _git(work, "commit", "-q", "-am", "v2")
    _git(work, "checkout", "-q", "main")  # the served HEAD
    served = tmp_path / "served"
    served.mkdir()
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(served / "repo.git"))
    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all",
                               f"--base-path={served}", "--listen=127.0.0.1", f"--port={port}",
                               str(served)], env=GIT_ENV, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["git", "ls-remote", f"git://127.0.0.1:{port}/repo.git"],
                             env=GIT_ENV, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "git daemon did not come up"
            time.sleep(0.1)
        yield f"git://127.0.0.1:{port}/repo.git"
    finally:
        daemon.terminate()
        daemon.wait(10)


def test_build_from_a_git_ref_and_subdir(build_node, owner, git_daemon):  # noqa: F811
    job = build_node.build(owner, remote=f"{git_daemon}#v2:app", tags=["fromgit:v2"])
    assert job.state == Job.State.SUCCEEDED, (job.error, build_node.stream())
    image = Image.objects.get(pk=job.result["id"][7:])
    assert build_node.file(image, "/ctx/hello.txt") == b"v2\n"
    assert build_node.file(image, "/listing").split() == [b".", b"..", b"Dockerfile",
                                                          b"hello.txt"]  # no .git, no README
    main = build_node.build(owner, remote=f"{git_daemon}#:app", tags=["fromgit:main"])
    assert main.state == Job.State.SUCCEEDED, main.error
    assert build_node.file(Image.objects.get(pk=main.result["id"][7:]),
                           "/ctx/hello.txt") == b"v1\n"
    assert build_node.leftovers() == []


def test_a_missing_ref_fails(build_node, owner, git_daemon):  # noqa: F811
    job = build_node.build(owner, remote=f"{git_daemon}#no-such-branch", tags=["x:1"])
    assert job.state == Job.State.FAILED and job.result == {"status": 400}
    assert job.error.startswith("unable to prepare context: unable to 'git clone'")
    assert "no-such-branch" in job.error
    assert build_node.leftovers() == []

