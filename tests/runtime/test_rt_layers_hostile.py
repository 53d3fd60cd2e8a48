"""Hostile layers are refused with a clear LayerError and leave nothing in the store, its
tmp dir or outside it."""

import gzip
import io
import os
import subprocess

import pytest
from layerkit import assert_store_empty, make_tar

from workers.runtime.images import ImageStore, LayerError


@pytest.fixture
def outside(tmp_path):
    """A directory outside the store that an escape would write into."""
    d = tmp_path / "outside"
    d.mkdir()
    return d


def hostile_cases(outside):
    o = str(outside)
    return [
        ("absolute path", [("/" + o.lstrip("/") + "/abs", "file", None)], "absolute"),
        ("dot-dot", [("a/../../" + o + "/dotdot", "file", None)], "escapes"),
        ("dot-dot at the top", [("ok", "file", None), ("../x", "file", None)], "escapes"),
        ("relative symlink escape", [("lnk", "sym", "../../../../../../" + o)], "escapes"),
        ("nested symlink escape", [("d/", "dir", None), ("d/lnk", "sym", "../../x")],
         "escapes"),
        ("write through an absolute symlink",
         [("lnk", "sym", o), ("lnk/through", "file", None)], "not a directory"),
        ("mkdir through a symlink", [("lnk", "sym", o), ("lnk/sub", "dir", None)],
         "not a directory"),
        ("hard link escape", [("h", "hard", "../../" + o + "/target")], "escapes"),
        ("absolute hard link", [("h", "hard", o + "/target")], "absolute"),
        ("hard link through a symlink", [("lnk", "sym", o), ("h", "hard", "lnk/target")],
         "not a directory"),
        ("dangling hard link", [("h", "hard", "missing")], "not in the layer"),
        ("char device outside dev/", [("etc/null", "chr", None)], "device node .* outside dev/"),
        ("block device at the top", [("sda", "blk", None)], "device node .* outside dev/"),
        ("device in a dir named like dev", [("x/dev/null", "chr", None)], "outside dev/"),
        ("whiteout of the parent", [("d/", "dir", None), ("d/.wh...", "file", "")],
         "bad whiteout"),
        ("whiteout that is a directory", [("d/.wh.x/", "dir", None)], "not a regular file"),
    ]


@pytest.mark.parametrize("what", [case[0] for case in hostile_cases("/o")])
def test_hostile_layer_refused(state_root, outside, what):
    (outside / "target").write_text("secret")
    _, entries, message = next(c for c in hostile_cases(outside) if c[0] == what)
    store = ImageStore(state_root)
    for gz in (False, True):
        with pytest.raises(LayerError, match=message):
            store.add_layer_tar(io.BytesIO(make_tar([("f", "file", None)] + entries, gz=gz)))
        assert_store_empty(store)
    assert sorted(os.listdir(outside)) == ["target"], what
    assert (outside / "target").read_text() == "secret"


def test_size_bomb_refused(state_root):
    """A highly compressible layer: 64 KiB of gzip that unpacks to 8 MiB, with a 1 MiB limit."""
    bomb = make_tar([("zeros", "file", "\0" * (8 << 20))], gz=True)
    assert len(bomb) < 64 << 10
    store = ImageStore(state_root)
    with pytest.raises(LayerError, match="limit of 1048576 bytes"):
        store.add_layer_tar(io.BytesIO(bomb), max_size=1 << 20)
    assert_store_empty(store)
    # the same layer is fine under a limit it fits
    diff_id = store.add_layer_tar(io.BytesIO(bomb), max_size=16 << 20)
    assert os.path.getsize(os.path.join(store.layer_dir(diff_id), "zeros")) == 8 << 20


def test_sparse_size_bomb_refused(state_root, tmp_path):
    """A GNU sparse member: a small tar whose file unpacks to far more than the limit."""
    sparse = tmp_path / "sparse"
    with open(sparse, "wb") as f:
        f.truncate(64 << 20)
        f.write(b"data")
    tar = tmp_path / "sparse.tar"
    subprocess.run(["tar", "--sparse", "-cf", str(tar), "-C", str(tmp_path), "sparse"],
                   check=True)
    assert os.path.getsize(tar) < 1 << 20
    store = ImageStore(state_root)
    with pytest.raises(LayerError, match="limit of 2097152 bytes"):
        store.add_layer_tar(str(tar), max_size=2 << 20)
    assert_store_empty(store)


def test_not_a_layer(state_root):
    store = ImageStore(state_root)
    for data in (b"\x1f\x8bnot gzip at all", gzip.compress(b"not a tar" * 100),
                 b"\x28\xb5\x2f\xfd zstd"):
        with pytest.raises(LayerError):
            store.add_layer_tar(io.BytesIO(data))
        assert_store_empty(store)
