"""Push to a loopback registry: skopeo sees the image, a pull into a fresh store gives the same
image id, and layers the registry has are not uploaded again ("Layer already exists")."""

import io
import uuid

import pytest
from registry import file_layer

from workers.runtime.images import ImageStore, busybox_image_config
from workers.runtime.registry import Credentials, RemoteRef, pull, push


@pytest.fixture
def two_layer_image(store, busybox_tar):
    base = store.add_layer_tar(io.BytesIO(busybox_tar))
    top = store.add_layer_tar(io.BytesIO(file_layer("srv/index.html", uuid.uuid4().bytes)))
    config = busybox_image_config(base)
    config["rootfs"]["diff_ids"].append(top)
    return store.put_config(config)


@pytest.mark.parametrize("auth", ["none", "token"])
def test_push_then_pull(request, store, two_layer_image, tmp_path, auth):
    reg = request.getfixturevalue({"none": "registry", "token": "token_registry"}[auth])
    creds = Credentials(reg.username, reg.password) if reg.username else None
    name = f"push/app-{uuid.uuid4().hex[:8]}:v1"
    ref = RemoteRef.parse(f"{reg.host}/{name}")
    events = []
    result = push(store, two_layer_image, ref, credentials=creds, insecure=True,
                  progress=events.append)

    diff_ids = store.get_config(two_layer_image)["rootfs"]["diff_ids"]
    idents = [d[7:19] for d in diff_ids]
    assert events[0] == {"status": f"The push refers to repository [{reg.host}/{name[:-3]}]"}
    assert [e["id"] for e in events if e["status"] == "Preparing"] == idents[::-1]
    assert sorted(e["id"] for e in events if e["status"] == "Pushed") == sorted(idents)
    assert any(e["status"] == "Pushing" for e in events)
    assert events[-1] == {"status": f"v1: digest: {result.digest} size: {result.size}"}

    inspected = reg.skopeo_inspect(name)
    assert inspected["Digest"] == result.digest
    assert inspected["Layers"] == [store.compressed_layer(d)[0] for d in diff_ids]
    assert inspected["Architecture"] == "amd64"

    fresh = ImageStore(str(tmp_path / "fresh"))
    pulled = pull(fresh, ref, credentials=creds, insecure=True)
    assert pulled.image_id == two_layer_image
    assert pulled.manifest_digest == result.digest
    assert pulled.diff_ids == diff_ids


def test_push_existing_layers(registry, store, two_layer_image):
    first = RemoteRef.parse(f"{registry.host}/push/first-{uuid.uuid4().hex[:8]}")
    push(store, two_layer_image, first, insecure=True)
    events = []
    again = push(store, two_layer_image, first, insecure=True, progress=events.append)
    statuses = [e["status"] for e in events if "id" in e]
    assert statuses.count("Layer already exists") == 2
    assert "Pushing" not in statuses and "Pushed" not in statuses
    assert again.digest == registry.skopeo_inspect(first.repository)["Digest"]


def test_push_pulled_image(registry, store, busybox_tar, tmp_path):
    """A pulled image pushed back to the same repository: every layer already exists (the
    store remembers the digests the pull saw)."""
    name = f"push/pulled-{uuid.uuid4().hex[:8]}"
    registry.push_image(name, [busybox_tar], fmt="v2s2")
    ref = RemoteRef.parse(f"{registry.host}/{name}")
    pulled = pull(store, ref, insecure=True)
    events = []
    push(store, pulled.image_id, RemoteRef.parse(f"{registry.host}/{name}:copy"),
         insecure=True, progress=events.append)
    assert [e["status"] for e in events if "id" in e] == ["Preparing", "Layer already exists"]
