"""Pull from a loopback docker-registry: Docker schema 2 and OCI manifests, progress in
Docker's vocabulary, "Already exists" on a second pull."""

import os
import uuid

import pytest
import requests
from registry import file_layer

from workers.runtime.images import ImageStore
from workers.runtime.registry import RemoteRef, pull


def _ref(reg, name):
    return RemoteRef.parse(f"{reg.host}/{name}")


@pytest.mark.parametrize("fmt, media_type", [
    ("v2s2", "application/vnd.docker.distribution.manifest.v2+json"),
    ("oci", "application/vnd.oci.image.manifest.v1+json"),
])
def test_pull(registry, store, busybox_tar, fmt, media_type):
    name = f"pull/{fmt}-{uuid.uuid4().hex[:8]}:1.0"
    extra = file_layer("etc/motd", b"hello from the registry\n")
    built = registry.push_image(name, [busybox_tar, extra],
                                {"config": {"Cmd": ["sh"], "Env": ["A=1"]}}, fmt=fmt)
    served = requests.get(f"{registry.url}/v2/{name.replace(':1.0', '')}/manifests/1.0",
                          headers={"Accept": media_type})
    assert served.headers["Content-Type"] == media_type

    events = []
    result = pull(store, _ref(registry, name), insecure=True, progress=events.append)

    assert result.image_id == built["config_digest"][7:]
    assert store.get_blob(result.image_id) == built["config"]  # the exact bytes served
    assert result.diff_ids == built["diff_ids"]
    assert result.manifest_digest == served.headers["Docker-Content-Digest"]
    assert result.downloaded and result.layers_skipped == []
    assert result.config["config"]["Env"] == ["A=1"]
    assert result.size == len(busybox_tar) + len(extra)
    top = store.layer_dir(built["diff_ids"][1])
    with open(os.path.join(top, "etc/motd"), "rb") as f:
        assert f.read() == b"hello from the registry\n"
    assert os.path.isfile(os.path.join(store.layer_dir(built["diff_ids"][0]), "bin/busybox"))

    statuses = [e["status"] for e in events]
    repo = name.split(":")[0]
    assert events[0] == {"status": f"Pulling from {repo}", "id": "1.0", "progressDetail": {}}
    assert statuses[-1] == "Digest: " + result.manifest_digest
    for layer in built["layer_digests"]:
        ident = layer[7:19]
        mine = [e["status"] for e in events if e.get("id") == ident]
        assert mine[0] == "Pulling fs layer"
        assert mine.index("Verifying Checksum") < mine.index("Download complete") < mine.index(
            "Pull complete")
        downloading = [e for e in events if e.get("id") == ident and e["status"] == "Downloading"]
        assert downloading[-1]["progressDetail"]["current"] == downloading[-1][
            "progressDetail"]["total"]
        assert any(e["status"] == "Extracting" for e in events if e.get("id") == ident)
        assert mine[-1] == "Pull complete"
    assert not os.listdir(store.tmp)  # no scratch files left


def test_second_pull_already_exists(registry, store, busybox_tar, tmp_path):
    name = f"pull/again-{uuid.uuid4().hex[:8]}"
    built = registry.push_image(name, [busybox_tar])
    first = pull(store, _ref(registry, name), insecure=True)
    assert first.downloaded

    events = []
    again = pull(store, _ref(registry, name), insecure=True, progress=events.append)
    assert again.image_id == first.image_id
    assert not again.downloaded
    assert again.layers_skipped == built["diff_ids"]
    ident = built["layer_digests"][0][7:19]
    assert {"status": "Already exists", "id": ident, "progressDetail": {}} in events
    assert not any(e["status"] in ("Downloading", "Pulling fs layer") for e in events)

    fresh = ImageStore(str(tmp_path / "fresh"))
    assert pull(fresh, _ref(registry, name), insecure=True).downloaded
    assert fresh.has_layer(built["diff_ids"][0])


def test_missing_repository_and_tag(registry, store, busybox_tar):
    from workers.runtime.registry import RegistryError

    with pytest.raises(RegistryError) as e:
        pull(store, _ref(registry, f"nobody/{uuid.uuid4().hex[:8]}"), insecure=True)
    assert e.value.http_status == 404
    assert "not found" in str(e.value)

    name = f"pull/tags-{uuid.uuid4().hex[:8]}"
    registry.push_image(name, [busybox_tar])
    with pytest.raises(RegistryError) as e:
        pull(store, _ref(registry, name + ":nope"), insecure=True)
    assert e.value.http_status == 404
    assert "manifest unknown" in str(e.value)
    assert os.listdir(store.layers) == []


def test_layer_bomb_refused(registry, store):
    name = f"pull/bomb-{uuid.uuid4().hex[:8]}"
    registry.push_image(name, [file_layer("big", b"\0" * (4 << 20))])
    from workers.runtime.images import LayerError

    with pytest.raises(LayerError):
        pull(store, _ref(registry, name), insecure=True, max_layer_size=1 << 20)
    assert os.listdir(store.layers) == []
