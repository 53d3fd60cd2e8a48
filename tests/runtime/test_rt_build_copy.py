"""COPY and ADD: Docker's path rules (dest ending in /, an existing dir, WORKDIR-relative,
several sources, wildcards, a dir copies its contents, symlinks), --chown by name and id
from the image's /etc/passwd and /etc/group, .dockerignore with exceptions, ADD of a local
tar.gz unpacked with its owners, ADD of a URL served by a loopback http.server."""

import http.server
import os
import stat
import threading

import pytest
from buildkit import build, host, image_files, read, tar_gz, write_context  # noqa: F401

from workers.runtime.build.builder import BuildError

DOCKERFILE = """\
FROM busybox
COPY one.txt /dir/
COPY one.txt /named
COPY one.txt /etc
COPY src /app
WORKDIR /work
COPY one.txt two.txt rel/
COPY *.txt /glob/
COPY --chown=nobody:nogroup src /owned/
COPY --chown=1000:1001 one.txt /tmp/deep/new/file
COPY link-to-one /followed
COPY --chmod=600 src/a one.txt /modes/
COPY . /ctx/
"""


def make_context(root):
    ctx = write_context(root, {
        "Dockerfile": DOCKERFILE, "one.txt": ("one", 0o640), "two.txt": "two",
        "src/a": ("a", 0o755), "src/sub/b": "b", "secret.key": "no", "logs/x.log": "x",
        "logs/keep.log": "keep", "deep/tmp.md": "m",
        ".dockerignore": "secret.key\nlogs\n!logs/keep.log\n**/*.md\n"})
    os.symlink("one.txt", os.path.join(ctx, "link-to-one"))
    os.symlink("../one.txt", os.path.join(ctx, "src", "up"))
    for path in ("src", "src/a", "one.txt"):           # the uploader's ids: not kept
        os.chown(os.path.join(ctx, path), 1234, 1234)
    return ctx


def info(fs, rel):
    st = fs.lstat(rel)
    assert st is not None, f"{rel} missing"
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_copy_path_rules_chown_and_dockerignore(store, host, tmp_path):  # noqa: F811
    ctx = make_context(tmp_path / "ctx")
    result = build(store, host, ctx)
    fs = image_files(store, result.image_id)
    assert read(store, result.image_id, "dir/one.txt") == "one"
    assert info(fs, "dir/one.txt") == (0o640, 0, 0)
    assert read(store, result.image_id, "named") == "one"
    assert read(store, result.image_id, "etc/one.txt") == "one"           # existing dir
    assert fs.lstat("etc/passwd") is not None
    assert read(store, result.image_id, "app/a") == "a" and info(fs, "app/a") == (0o755, 0, 0)
    assert info(fs, "app")[1:] == (0, 0)
    assert read(store, result.image_id, "app/sub/b") == "b"               # contents, not src/
    assert os.readlink(fs.path("app/up")) == "../one.txt"                 # kept a symlink
    assert fs.listdir("work/rel") == ["one.txt", "two.txt"]               # WORKDIR-relative
    assert fs.listdir("glob") == ["one.txt", "two.txt"]
    assert info(fs, "owned") == (0o755, 65534, 65534)                     # new dest dir too
    assert info(fs, "owned/sub/b")[1:] == (65534, 65534)
    assert info(fs, "tmp/deep/new/file")[1:] == (1000, 1001)
    assert info(fs, "tmp/deep") == (0o755, 0, 0)                          # created parents
    assert info(fs, "tmp") == (0o1777, 0, 0)                              # kept as it was
    assert read(store, result.image_id, "followed") == "one"              # top-level link
    assert not stat.S_ISLNK(fs.lstat("followed").st_mode)
    assert info(fs, "modes/a") == info(fs, "modes/one.txt") == (0o600, 0, 0)
    copied = sorted(fs.listdir("ctx"))
    assert "secret.key" not in copied and "deep" in copied and fs.listdir("ctx/deep") == []
    assert fs.listdir("ctx/logs") == ["keep.log"]
    history = store.get_config(result.image_id)["history"]
    assert history[-1]["created_by"].startswith("/bin/sh -c #(nop) COPY dir:")
    assert history[-1]["created_by"].endswith(" in /ctx/ ")
    assert history[-2]["created_by"].startswith("/bin/sh -c #(nop) COPY multi:")
    assert history[-4]["created_by"].startswith(
        "/bin/sh -c #(nop) COPY --chown=1000:1001 file:")


@pytest.mark.parametrize("line, message", [
    ("COPY one.txt two.txt /nodir", "When using COPY with more than one source file, the "
     "destination must be a directory and end with a /"),
    ("COPY secret.key /", "COPY failed: file not found in build context or excluded by "
     ".dockerignore: stat secret.key: file does not exist"),
    ("COPY missing /", "stat missing: file does not exist"),
    ("COPY *.nothing /", "COPY failed: no source files were specified"),
    ("COPY ../outside /", "COPY failed: Forbidden path outside the build context: ../outside"),
    ("COPY --chown=nobody one.txt /", "can't find gid for group nobody: no such group: nobody"),
    ("COPY --chown=ghost:0 one.txt /", "can't find uid for user ghost: no such user: ghost"),
    ("COPY --chmod=999 one.txt /", "invalid chmod parameter: 999"),
])
def test_copy_errors(store, host, tmp_path, line, message):  # noqa: F811
    ctx = make_context(tmp_path / "ctx")
    write_context(ctx, {"Dockerfile": f"FROM busybox\n{line}\n"})
    with pytest.raises(BuildError) as err:
        build(store, host, ctx)
    assert message in str(err.value)


@pytest.fixture
def http_files(tmp_path):
    served = tmp_path / "served"
    served.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_add_archive_and_url(store, host, tmp_path, http_files):  # noqa: F811
    served, base = http_files
    (served / "page.txt").write_text("from the web")
    (served / "bundle.tar.gz").write_bytes(tar_gz({"x/inner.txt": "inner"}))
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": (f"FROM busybox\nADD bundle.tar.gz /unpacked/\nADD plain.txt /plain\n"
                       f"ADD {base}/page.txt /web/\nADD {base}/page.txt /web/renamed\n"
                       f"ADD {base}/bundle.tar.gz /kept/\n"
                       "ADD --chown=1:1 bundle.tar.gz /owners-kept\n"),
        "bundle.tar.gz": tar_gz({"x/inner.txt": "inner", "top.txt": "top"}),
        "plain.txt": "plain"})
    result = build(store, host, ctx)
    fs = image_files(store, result.image_id)
    assert read(store, result.image_id, "unpacked/x/inner.txt") == "inner"
    assert info(fs, "unpacked/top.txt") == (0o640, 7, 8)                 # the tar's owners
    assert info(fs, "owners-kept/top.txt") == (0o640, 7, 8)
    assert read(store, result.image_id, "plain") == "plain"
    assert read(store, result.image_id, "web/page.txt") == "from the web"
    assert info(fs, "web/page.txt") == (0o600, 0, 0)
    assert read(store, result.image_id, "web/renamed") == "from the web"
    assert fs.listdir("kept") == ["bundle.tar.gz"]                         # URLs not unpacked

    write_context(ctx, {"Dockerfile": f"FROM busybox\nADD {base}/missing /x\n"})
    with pytest.raises(BuildError, match=r"failed to GET .*/missing with status 404"):
        build(store, host, ctx)
