import gzip
import hashlib
import io
import os
import stat

from layerkit import make_tar

from workers.runtime.images import (
    ImageStore,
    build_busybox_layer,
    busybox_image_config,
    canonical_json,
)


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
