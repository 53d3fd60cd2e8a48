import gzip
import hashlib
import io
import os
import stat
import tarfile

import pytest

from workers.runtime.images import (
    ImageStore,
    LayerError,
    build_busybox_layer,
    busybox_image_config,
    canonical_json,
)


def make_tar(entries, gz=False):
    """entries: (name, kind, extra) with kind file|dir|sym|hard|chr|fifo."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, extra in entries:
            ti = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = extra.encode() if isinstance(extra, str) else b"x"
                ti.size = len(data)
                ti.mode = 0o644
            elif kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, extra
            elif kind == "hard":
                ti.type, ti.linkname = tarfile.LNKTYPE, extra
            elif kind == "chr":
                ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def assert_store_empty(store):
    assert os.listdir(store.layers) == []
    assert os.listdir(store.blobs) == []
    assert os.listdir(store.tmp) == []


@pytest.mark.parametrize("entries,message", [
    ([("/etc/passwd", "file", None)], "absolute"),
    ([("a/../../etc/passwd", "file", None)], "escapes"),
    ([("ok", "file", None), ("../x", "file", None)], "escapes"),
    ([("lnk", "sym", "../../../etc")], "escapes"),
    ([("d/", "dir", None), ("d/lnk", "sym", "../../x")], "escapes"),
    ([("lnk", "sym", "/"), ("lnk/etc/passwd", "file", None)], "not a directory"),
    ([("lnk", "sym", "/etc"), ("lnk/x", "dir", None)], "not a directory"),
    ([("h", "hard", "../../etc/passwd")], "escapes"),
    ([("h", "hard", "/etc/passwd")], "absolute"),
    ([("h", "hard", "missing")], "not in the layer"),
    ([("dev/null", "chr", None)], "device node"),
])
def test_hostile_layers_rejected(state_root, entries, message):
    store = ImageStore(state_root)
    for gz in (False, True):
        with pytest.raises(LayerError, match=message):
            store.add_layer_tar(io.BytesIO(make_tar([("f", "file", None)] + entries, gz=gz)))
        assert_store_empty(store)
    assert not os.path.exists("/x")


def test_not_a_tar(state_root):
    store = ImageStore(state_root)
    with pytest.raises(LayerError):
        store.add_layer_tar(io.BytesIO(b"\x1f\x8bnot gzip at all"))
    assert_store_empty(store)


def test_layer_unpack_whiteouts_and_links(state_root, tmp_path):
    store = ImageStore(state_root)
    tar = make_tar([
        ("./", "dir", None), ("etc/", "dir", None), ("etc/conf", "file", "hello"),
        ("etc/hard", "hard", "etc/conf"), ("bin/", "dir", None),
        ("bin/sh", "sym", "/bin/busybox"), ("bin/rel", "sym", "../etc/conf"),
        ("etc/.wh.gone", "file", ""), ("opaque/", "dir", None),
        ("opaque/.wh..wh..opq", "file", ""), ("pipe", "fifo", None),
    ], gz=True)
    path = tmp_path / "layer.tar.gz"
    path.write_bytes(tar)
    diff_id = store.add_layer_tar(str(path))
    assert diff_id == "sha256:" + hashlib.sha256(gzip.decompress(tar)).hexdigest()
    d = store.layer_dir(diff_id)
    assert open(os.path.join(d, "etc/conf")).read() == "hello"
    assert os.stat(os.path.join(d, "etc/hard")).st_ino == os.stat(os.path.join(d, "etc/conf")).st_ino
    assert os.readlink(os.path.join(d, "bin/sh")) == "/bin/busybox"
    st = os.lstat(os.path.join(d, "etc/gone"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert not os.path.exists(os.path.join(d, "etc/.wh.gone"))
    assert os.getxattr(os.path.join(d, "opaque"), "trusted.overlay.opaque") == b"y"
    assert stat.S_ISFIFO(os.lstat(os.path.join(d, "pipe")).st_mode)
    assert store.has_blob(diff_id)
    # adding it again is a no-op
    assert store.add_layer_tar(io.BytesIO(tar)) == diff_id
    assert os.listdir(store.layers) == [diff_id[7:]]
    assert os.listdir(store.tmp) == []


def test_busybox_layer_is_deterministic(state_root, busybox_tar):
    again = build_busybox_layer()
    assert hashlib.sha256(again).digest() == hashlib.sha256(busybox_tar).digest()
    store = ImageStore(state_root)
    diff_id = store.add_layer_tar(io.BytesIO(busybox_tar))
    config = busybox_image_config(diff_id)
    image_id = store.put_config(config)
    assert image_id == hashlib.sha256(canonical_json(config)).hexdigest()
    assert store.put_config(busybox_image_config(diff_id)) == image_id
    assert store.get_config(image_id)["rootfs"]["diff_ids"] == [diff_id]
    d = store.layer_dir(diff_id)
    for applet in ("sh", "ls", "ps", "cat", "env", "id", "hostname", "ip", "nslookup", "awk"):
        assert os.readlink(os.path.join(d, "bin", applet)) == "busybox"
    assert stat.S_IMODE(os.stat(os.path.join(d, "tmp")).st_mode) == 0o1777
    assert "nobody:x:65534:65534" in open(os.path.join(d, "etc/passwd")).read()
