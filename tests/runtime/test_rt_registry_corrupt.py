"""A blob whose bytes do not match its digest is refused (DigestMismatch) and nothing of the
image is stored: not the bad layer, not the good one beside it, not the config."""

import os
import uuid

import pytest
from registry import file_layer

from workers.runtime.registry import DigestMismatch, RemoteRef, pull


def _corrupt(path: str):
    with open(path, "r+b") as f:
        f.seek(-3, os.SEEK_END)
        tail = f.read(3)
        f.seek(-3, os.SEEK_END)
        f.write(bytes(b ^ 0xFF for b in tail))


@pytest.mark.parametrize("which", ["layer", "config"])
def test_corrupted_blob_refused(registry, store, busybox_tar, which):
    name = f"corrupt/{which}-{uuid.uuid4().hex[:8]}"
    built = registry.push_image(name, [busybox_tar, file_layer("x", os.urandom(4096))])
    target = built["layer_digests"][1] if which == "layer" else built["config_digest"]
    _corrupt(registry.blob_data_path(target))

    with pytest.raises(DigestMismatch) as e:
        pull(store, RemoteRef.parse(f"{registry.host}/{name}"), insecure=True)
    assert target in str(e.value)
    assert os.listdir(store.layers) == []
    assert os.listdir(store.blobs) == []
    assert os.listdir(store.tmp) == []
