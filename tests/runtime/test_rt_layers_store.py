"""The store's layer bookkeeping: sizes, tar paths, the deterministic gzip for push, the
compressed digests a pull saw, a blob's announced digest, progress, and delete."""

import bz2
import gzip
import hashlib
import io
import lzma
import os

import pytest
from layerkit import assert_store_empty, make_tar, sha

from workers.runtime.images import DigestError, ImageError, ImageStore, canonical_json


def test_size_path_and_compressions(state_root):
    store = ImageStore(state_root)
    tar = make_tar([("a", "file", "a" * 5000), ("b", "file", "b")])
    for compress in (lambda b: b, lambda b: gzip.compress(b, mtime=0), bz2.compress,
                     lzma.compress):
        assert store.add_layer_tar(io.BytesIO(compress(tar))) == sha(tar)
    assert store.layer_size(sha(tar)) == len(tar)
    with open(store.layer_tar_path(sha(tar)), "rb") as f:
        assert f.read() == tar
    with pytest.raises(ImageError, match="not found"):
        store.layer_size(sha(b"other"))


def test_compressed_layer_is_deterministic_and_cached(state_root):
    store = ImageStore(state_root)
    tar = make_tar([("a", "file", "hello " * 1000)])
    diff_id = store.add_layer_tar(io.BytesIO(tar))
    digest, size, path = store.compressed_layer(diff_id)
    with open(path, "rb") as f:
        blob = f.read()
    assert (digest, size) == (sha(blob), len(blob))
    assert gzip.decompress(blob) == tar
    assert blob[4:8] == b"\0\0\0\0"  # mtime 0
    assert path.startswith(os.path.join(state_root, "images", "compressed"))
    os.utime(path, (1, 1))
    assert store.compressed_layer(diff_id) == (digest, size, path)
    assert os.stat(path).st_mtime == 1  # cached, not made again
    # made again from scratch (another node, same zlib): the same bytes
    os.unlink(path)
    assert store.compressed_layer(diff_id) == (digest, size, path)
    assert store.compressed_digests(diff_id) == [digest]


def test_record_compressed(state_root):
    store = ImageStore(state_root)
    diff_id = store.add_layer_tar(io.BytesIO(make_tar([("a", "file", "a")])))
    seen = "sha256:" + hashlib.sha256(b"pulled blob").hexdigest()
    store.record_compressed(diff_id, seen)
    store.record_compressed(diff_id, seen)
    assert store.compressed_digests(diff_id) == [seen]
    made, _, _ = store.compressed_layer(diff_id)
    assert store.compressed_digests(diff_id) == [seen, made]
    with pytest.raises(ImageError):
        store.record_compressed(diff_id, "md5:abc")


def test_announced_digest_checked_before_unpacking(state_root):
    store = ImageStore(state_root)
    blob = gzip.compress(make_tar([("a", "file", "a")]), mtime=0)
    with pytest.raises(DigestError, match="digest mismatch"):
        store.add_layer_tar(io.BytesIO(blob), digest=sha(b"something else"))
    assert_store_empty(store)
    assert store.add_layer_tar(io.BytesIO(blob), digest=sha(blob)) == sha(gzip.decompress(blob))


def test_progress_counts_the_bytes_read(state_root):
    store = ImageStore(state_root)
    blob = gzip.compress(make_tar([("a", "file", os.urandom(3 << 20).hex())]), mtime=0)
    seen = []
    store.add_layer_tar(io.BytesIO(blob), progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == len(blob) and len(seen) > 2


def test_delete_keeps_shared_layers(state_root):
    store = ImageStore(state_root)
    shared = store.add_layer_tar(io.BytesIO(make_tar([("s", "file", "s" * 4096)])))
    own = store.add_layer_tar(io.BytesIO(make_tar([("o", "file", "o" * 8192)])))
    store.record_compressed(own, sha(b"x"))
    store.compressed_layer(own)
    os.makedirs(os.path.join(store.layers, own[7:], "userns-0-100000-65536"))  # a shifted copy
    config = {"rootfs": {"type": "layers", "diff_ids": [shared, own]}}
    image = store.put_config(config)
    other = store.put_config({"rootfs": {"type": "layers", "diff_ids": [shared]}})
    tar_bytes = store.layer_size(own)
    freed = store.delete([image], keep_diff_ids={shared})
    assert freed >= tar_bytes + 8192 + len(canonical_json(config))
    assert not store.has_blob(image) and not store.has_layer(own)
    assert not os.path.exists(os.path.join(store.layers, own[7:]))
    assert not store.has_blob(own) and store.compressed_digests(own) == []
    assert os.listdir(store.compressed) == []
    assert store.has_layer(shared) and store.has_blob(shared) and store.has_blob(other)
    assert os.listdir(store.tmp) == []
    assert store.delete([image], keep_diff_ids=set()) == 0  # already gone

