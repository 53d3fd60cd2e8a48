"""`docker load` of OCI image layout archives: skopeo's oci-archive (gzipped layers), a layout
made with umoci (init/new/unpack/repack, a whiteout in its second layer) and tarred, a
gzipped archive, a nested multi-platform index (this node's linux/amd64 picked)."""

import gzip
import io
import json
import os
import tarfile

import pytest
from layerkit import make_tar, run_image, run_tool, sha

from workers.runtime import archive, oci
from workers.runtime.images import ImageStore, busybox_image_config


@pytest.fixture
def busybox_save(store, busybox_tar, tmp_path):
    diff_id = store.add_layer_tar(io.BytesIO(busybox_tar))
    image_id = store.put_config(busybox_image_config(diff_id))
    path = tmp_path / "busybox.tar"
    with open(path, "wb") as f:
        archive.save(store, [archive.SaveItem(image_id, ["busybox:dy"])], f)
    return path


def test_load_skopeo_oci_archive(busybox_save, tmp_path, state_root, runtime_factory, read_log):
    out = tmp_path / "oci.tar"
    run_tool("skopeo", "copy", "-q", f"docker-archive:{busybox_save}",
             f"oci-archive:{out}:skopeo/busybox:oci")
    with tarfile.open(out) as tf:
        index = json.load(tf.extractfile("index.json"))
        manifest = json.load(tf.extractfile(
            "blobs/sha256/" + index["manifests"][0]["digest"][7:]))
    assert manifest["layers"][0]["mediaType"].endswith("tar+gzip")
    store = ImageStore(state_root + "/other")
    [loaded] = archive.load(store, str(out))
    assert loaded.repo_tags == ["skopeo/busybox:oci"]
    assert run_image(runtime_factory, read_log, store, loaded, ["echo", "oci"]) == "oci\n"
    # a bare tag as the ref name: an untagged image, as Docker loads it
    run_tool("skopeo", "copy", "-q", f"docker-archive:{busybox_save}",
             f"oci-archive:{tmp_path / 'bare.tar'}:v1")
    [bare] = archive.load(store, str(tmp_path / "bare.tar"))
    assert bare.repo_tags == [] and bare.image_id == loaded.image_id


def test_load_umoci_layout(store, busybox_tar, tmp_path, runtime_factory, read_log):
    layout, bundle = tmp_path / "layout", tmp_path / "bundle"
    run_tool("umoci", "init", "--layout", str(layout))
    run_tool("umoci", "new", "--image", f"{layout}:v1")
    run_tool("umoci", "unpack", "--image", f"{layout}:v1", str(bundle))
    (tmp_path / "busybox.tar").write_bytes(busybox_tar)
    run_tool("tar", "-xf", str(tmp_path / "busybox.tar"), "-C", str(bundle / "rootfs"))
    run_tool("umoci", "repack", "--image", f"{layout}:v1", str(bundle))
    second = tmp_path / "bundle2"  # a second layer: unpacked anew, changed, repacked
    run_tool("umoci", "unpack", "--image", f"{layout}:v1", str(second))
    (second / "rootfs" / "etc" / "group").unlink()
    (second / "rootfs" / "umoci").write_text("made by umoci\n")
    run_tool("umoci", "repack", "--image", f"{layout}:v1", str(second))
    run_tool("umoci", "config", "--image", f"{layout}:v1", "--config.cmd", "cat",
             "--config.cmd", "/umoci")
    run_tool("tar", "-cf", str(tmp_path / "umoci.tar"), "-C", str(layout), ".")
    [loaded] = archive.load(store, str(tmp_path / "umoci.tar"))
    assert loaded.config["config"]["Cmd"] == ["cat", "/umoci"]
    assert len(loaded.diff_ids) == 2
    out = run_image(runtime_factory, read_log, store, loaded, ["cat", "/umoci"])
    assert out == "made by umoci\n"
    out = run_image(runtime_factory, read_log, store, loaded,
                    ["sh", "-c", "test -e /etc/group || echo whited-out"])
    assert out == "whited-out\n"


def test_load_gzipped_archive(store, busybox_save, tmp_path):
    gz = tmp_path / "busybox.tar.gz"
    gz.write_bytes(gzip.compress(busybox_save.read_bytes(), compresslevel=1))
    [loaded] = archive.load(store, str(gz))
    assert loaded.repo_tags == ["busybox:dy"]
    assert archive.load(store, str(busybox_save))[0].image_id == loaded.image_id
    assert os.listdir(store.tmp) == []


def oci_layout_tar(blobs: dict[str, bytes], index: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                 "index.json": json.dumps(index).encode(),
                 **{"blobs/sha256/" + d[7:]: data for d, data in blobs.items()}}
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def add_blob(blobs, data: bytes, media: str, **extra) -> dict:
    blobs[sha(data)] = data
    return {"mediaType": media, "digest": sha(data), "size": len(data), **extra}


def platform_image(blobs, arch: str, variant: str = "") -> dict:
    layer = gzip.compress(make_tar([("arch", "file", arch + variant)]), mtime=0)
    layer_desc = add_blob(blobs, layer, "application/vnd.oci.image.layer.v1.tar+gzip")
    config = json.dumps({"architecture": arch, "os": "linux",
                         "rootfs": {"type": "layers",
                                    "diff_ids": [sha(gzip.decompress(layer))]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
        "config": add_blob(blobs, config, oci.OCI_CONFIG),
        "layers": [layer_desc]}).encode()
    plat = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
    return add_blob(blobs, manifest, oci.OCI_MANIFEST, platform=plat)


def test_nested_index_picks_linux_amd64(store):
    assert oci.host_platform()[:2] == ("linux", "amd64")
    blobs = {}
    arm = platform_image(blobs, "arm64", "v8")
    amd = platform_image(blobs, "amd64")
    ppc = platform_image(blobs, "ppc64le")
    inner = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                        "manifests": [arm, amd]}).encode()
    middle = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                         "manifests": [ppc, add_blob(blobs, inner, oci.OCI_INDEX)]})
    top = add_blob(blobs, middle.encode(), oci.OCI_INDEX, annotations={
        "io.containerd.image.name": "docker.io/library/multi:1",
        "org.opencontainers.image.ref.name": "1"})
    tar = oci_layout_tar(blobs, {"schemaVersion": 2, "manifests": [top]})
    path = os.path.join(store.root, "multi.tar")
    with open(path, "wb") as f:
        f.write(tar)
    [loaded] = archive.load(store, path)
    assert loaded.repo_tags == ["multi:1"] and loaded.config["architecture"] == "amd64"
    assert open(store.layer_dir(loaded.diff_ids[0]) + "/arch").read() == "amd64"
    assert len(os.listdir(store.layers)) == 1  # the others were never unpacked

    only_arm = oci_layout_tar(blobs, {"schemaVersion": 2, "manifests": [
        add_blob(blobs, json.dumps({"schemaVersion": 2, "manifests": [arm]}).encode(),
                 oci.OCI_INDEX)]})
    with open(path, "wb") as f:
        f.write(only_arm)
    with pytest.raises(archive.ArchiveError, match="no image for linux/amd64"):
        archive.load(store, path)
