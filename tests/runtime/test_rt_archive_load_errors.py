"""A load is all or nothing: a blob that does not match its digest (layer, config, manifest),
a missing blob or a broken archive fails the whole load, and the store keeps nothing of it
(but what it had before)."""

import io
import json
import os
import tarfile

import pytest
from layerkit import assert_store_empty, make_tar

from workers.runtime import archive
from workers.runtime.images import DigestError, ImageError, busybox_image_config


def saved_pair(store, busybox_tar) -> tuple[bytes, str]:
    """A save of busybox and of a child with its own layer; the child layer's hex."""
    base = store.add_layer_tar(io.BytesIO(busybox_tar))
    config = busybox_image_config(base)
    busybox = store.put_config(config)
    top = store.add_layer_tar(io.BytesIO(make_tar([("child", "file", "child layer")])))
    config["rootfs"]["diff_ids"].append(top)
    child = store.put_config(config)
    buf = io.BytesIO()
    archive.save(store, [archive.SaveItem(busybox, ["a:1"]), archive.SaveItem(child, ["b:1"])],
                 buf)
    return buf.getvalue(), top[7:]


def rewrite(data: bytes, change) -> bytes:
    """The archive with ``change(name, bytes) -> bytes`` applied to each file."""
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(fileobj=out,
                                                                      mode="w") as dst:
        for m in src.getmembers():
            content = src.extractfile(m).read() if m.isfile() else None
            if content is not None:
                content = change(m.name, content)
                m.size = len(content)
            dst.addfile(m, io.BytesIO(content) if content is not None else None)
    return out.getvalue()


@pytest.fixture
def fresh(state_root, tmp_path):
    """An empty store and a helper to load bytes into it."""
    from workers.runtime.images import ImageStore

    store = ImageStore(os.path.join(state_root, "fresh"))

    def load(data: bytes):
        path = tmp_path / "archive.tar"
        path.write_bytes(data)
        return archive.load(store, str(path))
    return store, load


def test_corrupt_layer_blob_refused_and_nothing_kept(store, busybox_tar, fresh):
    data, child_layer = saved_pair(store, busybox_tar)
    bad = rewrite(data, lambda name, b: b.replace(b"child layer", b"CHILD LAYER"))
    target, load = fresh
    with pytest.raises(DigestError, match="digest mismatch"):
        load(bad)
    assert_store_empty(target)  # busybox (loaded first) was taken out again
    assert len(load(data)) == 2


def test_corrupt_config_and_manifest_refused(store, busybox_tar, fresh):
    data, _ = saved_pair(store, busybox_tar)
    target, load = fresh

    def config_change(name, b):
        if b.startswith(b"{") and b'"rootfs"' in b and b'"child"' not in b:
            return b.replace(b'"Cmd":["sh"]', b'"Cmd":["id"]')
        return b
    with pytest.raises(archive.ArchiveError, match="digest mismatch"):
        load(rewrite(data, config_change))
    assert_store_empty(target)

    index_only = rewrite(data, lambda name, b: b)  # drop manifest.json: the OCI path
    index_only = _without(index_only, "manifest.json")

    def manifest_change(name, b):
        return b.replace(b'"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest',
                         b'"schemaVersion":2, "mediaType":"application/vnd.oci.image.manifest')
    with pytest.raises(archive.ArchiveError, match="digest mismatch"):
        load(rewrite(index_only, manifest_change))
    assert_store_empty(target)
    assert len(load(index_only)) == 2  # the OCI layout alone loads


def _without(data: bytes, drop: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data)) as src, tarfile.open(fileobj=out,
                                                                      mode="w") as dst:
        for m in src.getmembers():
            if m.name != drop:
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    return out.getvalue()


def test_truncated_archive(store, busybox_tar, fresh):
    data, _ = saved_pair(store, busybox_tar)
    target, load = fresh
    with pytest.raises(ImageError):
        load(data[:len(data) // 2])
    assert_store_empty(target)


def test_layers_present_before_stay(store, busybox_tar, fresh):
    data, child_layer = saved_pair(store, busybox_tar)
    target, load = fresh
    base = target.add_layer_tar(io.BytesIO(busybox_tar))
    with pytest.raises(ImageError):
        load(_without(data, f"blobs/sha256/{child_layer}"))
    assert os.listdir(target.layers) == [base[7:]] and target.has_blob(base)
    assert os.listdir(target.tmp) == []


@pytest.mark.parametrize("data,message", [
    (b"not a tar at all" * 100, "not a tar"),
    (make_tar([("hello", "file", "x")]), "neither manifest.json"),
    (make_tar([("manifest.json", "file", "[]")]), "lists no image"),
    (make_tar([("manifest.json", "file", json.dumps([{"Config": "c.json", "Layers": []}]))]),
     "'c.json' is missing"),
    (make_tar([("index.json", "file", '{"manifests": [{"digest": "md5:x"}]}')]),
     "unsupported media type|unsupported digest"),
])
def test_broken_archives(fresh, data, message):
    target, load = fresh
    with pytest.raises(ImageError, match=message):
        load(data)
    assert_store_empty(target)
