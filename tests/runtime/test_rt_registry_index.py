"""A manifest list / OCI index with linux/amd64 and linux/arm64 entries: the host's platform
(or the one asked for) is picked; pulls by digest check the digest."""

import hashlib
import json
import uuid

import pytest
import requests
from registry import file_layer

from workers.runtime import oci
from workers.runtime.registry import RegistryError, RemoteRef, pull


def _put_manifest(reg, repo, reference, body: bytes, media_type: str) -> str:
    resp = requests.put(f"{reg.url}/v2/{repo}/manifests/{reference}", data=body,
                        headers={"Content-Type": media_type})
    assert resp.status_code == 201, resp.text
    return resp.headers["Docker-Content-Digest"]


def _multiarch(reg, busybox_tar, index_type):
    """Two single-arch images (amd64: busybox + /arch "amd64", arm64: /arch "arm64") under
    one index. Returns repo and {arch: (manifest_digest, diff_id of the arch layer)}."""
    repo = f"multi/{uuid.uuid4().hex[:8]}"
    images = {}
    for arch in ("amd64", "arm64"):
        built = reg.push_image(f"{repo}:{arch}", [busybox_tar, file_layer("arch", arch.encode())],
                               {"architecture": arch, "os": "linux"}, fmt="v2s2")
        raw = requests.get(f"{reg.url}/v2/{repo}/manifests/{arch}", headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
        images[arch] = (raw.headers["Docker-Content-Digest"], len(raw.content),
                        built["diff_ids"][1])
    child_type = "application/vnd.docker.distribution.manifest.v2+json"
    index = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": [
        {"mediaType": child_type, "digest": images["arm64"][0], "size": images["arm64"][1],
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        {"mediaType": child_type, "digest": images["amd64"][0], "size": images["amd64"][1],
         "platform": {"architecture": "amd64", "os": "linux"}},
    ]}).encode()
    index_digest = _put_manifest(reg, repo, "latest", index, index_type)
    assert index_digest == "sha256:" + hashlib.sha256(index).hexdigest()
    return repo, index_digest, images


@pytest.mark.parametrize("index_type", [oci.DOCKER_LIST, oci.OCI_INDEX])
def test_index_picks_host_platform(registry, store, busybox_tar, index_type, tmp_path):
    assert oci.format_platform(oci.host_platform()) == "linux/amd64", "this test expects an amd64 host"
    repo, index_digest, images = _multiarch(registry, busybox_tar, index_type)
    result = pull(store, RemoteRef.parse(f"{registry.host}/{repo}"), insecure=True)
    assert result.diff_ids[1] == images["amd64"][2]
    assert result.config["architecture"] == "amd64"
    assert result.manifest_digest == index_digest  # RepoDigests name the index, like Docker

    from workers.runtime.images import ImageStore

    other = ImageStore(str(tmp_path / "arm"))
    result = pull(other, RemoteRef.parse(f"{registry.host}/{repo}"), insecure=True,
                  platform="linux/arm64")
    assert result.diff_ids[1] == images["arm64"][2]
    with pytest.raises(RegistryError) as e:
        pull(other, RemoteRef.parse(f"{registry.host}/{repo}"), insecure=True,
             platform="linux/s390x")
    assert e.value.http_status == 404
    assert "no matching manifest for linux/s390x" in str(e.value)


def test_pull_by_digest(registry, store, busybox_tar):
    repo, index_digest, images = _multiarch(registry, busybox_tar, oci.OCI_INDEX)
    by_index = pull(store, RemoteRef.parse(f"{registry.host}/{repo}@{index_digest}"),
                    insecure=True)
    assert by_index.manifest_digest == index_digest
    assert by_index.diff_ids[1] == images["amd64"][2]

    arm_digest = images["arm64"][0]
    by_manifest = pull(store, RemoteRef.parse(f"{registry.host}/{repo}@{arm_digest}"),
                       insecure=True)
    assert by_manifest.manifest_digest == arm_digest
    assert by_manifest.diff_ids[1] == images["arm64"][2]

    unknown = "sha256:" + "0" * 64
    with pytest.raises(RegistryError) as e:
        pull(store, RemoteRef.parse(f"{registry.host}/{repo}@{unknown}"), insecure=True)
    assert e.value.http_status == 404

