"""A build context tar unpacked safely: plain, gzip, bzip2 and xz; owners and modes kept;
device nodes, whiteout names, absolute and ``..`` paths and links out refused."""

import io
import os
import stat
import tarfile

import pytest
from layerkit import make_tar

from workers.runtime.build.context import ContextError, unpack
from workers.runtime.images import LayerError

ENTRIES = [("Dockerfile", "file", "FROM busybox\n"), ("src", "dir", None),
           ("src/run.sh", "file", {"mode": 0o755}), ("src/link", "sym", "run.sh")]


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_unpack_compressed_contexts(tmp_path, compression):
    raw = make_tar(ENTRIES)
    if compression:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=f"w:{compression}") as tf, \
                tarfile.open(fileobj=io.BytesIO(raw)) as src:
            for m in src:
                tf.addfile(m, src.extractfile(m) if m.isfile() else None)
        raw = buf.getvalue()
    path = tmp_path / "ctx.tar"
    path.write_bytes(raw)
    dest = tmp_path / "out"
    dest.mkdir()
    unpack(str(path), str(dest))
    assert (dest / "Dockerfile").read_text() == "FROM busybox\n"
    assert stat.S_IMODE(os.lstat(dest / "src/run.sh").st_mode) == 0o755
    assert os.readlink(dest / "src/link") == "run.sh"


@pytest.mark.parametrize("entries, error", [
    ([("dev-null", "chr", None)], ContextError),
    ([("dev/null", "chr", None)], ContextError),
    ([("a/.wh.b", "file", "x")], ContextError),
    ([("/abs", "file", "x")], LayerError),
    ([("../up", "file", "x")], LayerError),
    ([("out", "sym", "../../etc"), ("out/x", "file", "x")], LayerError),
])
def test_hostile_contexts_refused(tmp_path, entries, error):
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(error):
        unpack(io.BytesIO(make_tar(entries)), str(dest))
    assert not (tmp_path / "etc").exists()
