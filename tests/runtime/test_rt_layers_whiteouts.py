"""OCI whiteouts become overlay whiteouts: checked on disk and through a real overlay mount
(in a forked child's own mount namespace) over the unpacked layers."""

import io
import os
import stat

from layerkit import make_tar, merged_view

from workers.runtime.images import ImageStore


def test_whiteouts_on_disk_and_through_overlay(state_root, tmp_path):
    store = ImageStore(state_root)
    base = store.add_layer_tar(io.BytesIO(make_tar([
        ("etc/", "dir", None), ("etc/keep", "file", "keep"), ("etc/gone", "file", "gone"),
        ("etc/gonedir/", "dir", None), ("etc/gonedir/inner", "file", "inner"),
        ("opaque/", "dir", None), ("opaque/old", "file", "old"),
        ("opaque/sub/", "dir", None), ("opaque/sub/deep", "file", "deep"),
    ])))
    top = store.add_layer_tar(io.BytesIO(make_tar([
        ("etc/", "dir", None), ("etc/.wh.gone", "file", ""), ("etc/.wh.gonedir", "file", ""),
        ("opaque/", "dir", None), ("opaque/.wh..wh..opq", "file", ""),
        ("opaque/new", "file", "new"), ("added", "file", "added"),
    ], gz=True)))
    top_dir = store.layer_dir(top)
    for name in ("etc/gone", "etc/gonedir"):
        st = os.lstat(os.path.join(top_dir, name))
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, name
    assert not os.path.lexists(os.path.join(top_dir, "etc/.wh.gone"))
    assert os.getxattr(os.path.join(top_dir, "opaque"), "trusted.overlay.opaque") == b"y"
    assert not os.path.lexists(os.path.join(top_dir, "opaque/.wh..wh..opq"))

    view = merged_view([top_dir, store.layer_dir(base)], tmp_path)
    assert view == {
        "etc": "dir", "etc/keep": "file:keep", "opaque": "dir", "opaque/new": "file:new",
        "added": "file:added",
    }


def test_whiteout_then_recreate_in_one_layer(state_root, tmp_path):
    """A later entry of the same layer brings a whited-out name back."""
    store = ImageStore(state_root)
    base = store.add_layer_tar(io.BytesIO(make_tar([("a", "file", "old")])))
    top = store.add_layer_tar(io.BytesIO(make_tar([
        (".wh.a", "file", ""), ("a", "file", "new"), ("b", "file", "b")])))
    view = merged_view([store.layer_dir(top), store.layer_dir(base)], tmp_path)
    assert view == {"a": "file:new", "b": "file:b"}
