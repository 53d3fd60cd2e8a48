"""`docker save`'s tar (Docker 25's format: OCI layout + manifest.json + repositories) is read
by skopeo as a docker-archive and as an oci-archive, and loads and runs in the real Docker
engine."""

import io
import json
import tarfile

from layerkit import run_tool, sha

from workers.runtime import archive
from workers.runtime.images import busybox_image_config


def two_images(store, busybox_tar):
    """busybox, and a child image sharing its layer (saved once)."""
    base = store.add_layer_tar(io.BytesIO(busybox_tar))
    config = busybox_image_config(base)
    busybox = store.put_config(config)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = b"from dockyard\n"
        ti = tarfile.TarInfo("hello.txt")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    top = store.add_layer_tar(io.BytesIO(buf.getvalue()))
    child_config = json.loads(json.dumps(config))
    child_config["rootfs"]["diff_ids"].append(top)
    child_config["config"]["Cmd"] = ["cat", "/hello.txt"]
    return busybox, store.put_config(child_config), [base, top]


def test_save_format(store, busybox_tar, tmp_path):
    busybox, child, (base, top) = two_images(store, busybox_tar)
    out = tmp_path / "save.tar"
    with open(out, "wb") as f:
        archive.save(store, [archive.SaveItem(busybox, ["busybox:dy", "localhost:5000/a/b:c"]),
                             archive.SaveItem(child, [])], f)
    with tarfile.open(out) as tf:
        names = tf.getnames()
        files = {n: tf.extractfile(n).read() for n in names if tf.getmember(n).isfile()}
    assert names.count(f"blobs/sha256/{base[7:]}") == 1  # shared layer stored once
    for name, data in files.items():
        if name.startswith("blobs/sha256/"):
            assert sha(data) == "sha256:" + name.rsplit("/", 1)[1]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    manifest = json.loads(files["manifest.json"])
    assert manifest == [
        {"Config": f"blobs/sha256/{busybox}", "RepoTags": ["busybox:dy", "localhost:5000/a/b:c"],
         "Layers": [f"blobs/sha256/{base[7:]}"]},
        {"Config": f"blobs/sha256/{child}", "RepoTags": None,
         "Layers": [f"blobs/sha256/{base[7:]}", f"blobs/sha256/{top[7:]}"]},
    ]
    assert json.loads(files["repositories"]) == {"busybox": {"dy": base[7:]},
                                                 "localhost:5000/a/b": {"c": base[7:]}}
    index = json.loads(files["index.json"])
    names = [d.get("annotations") for d in index["manifests"]]
    assert names == [
        {"io.containerd.image.name": "docker.io/library/busybox:dy",
         "org.opencontainers.image.ref.name": "dy"},
        {"io.containerd.image.name": "localhost:5000/a/b:c",
         "org.opencontainers.image.ref.name": "c"},
        None]
    image_manifest = json.loads(files["blobs/sha256/" + index["manifests"][2]["digest"][7:]])
    assert image_manifest["config"]["digest"] == "sha256:" + child
    assert [layer["digest"] for layer in image_manifest["layers"]] == [base, top]


def test_skopeo_reads_the_save_both_ways(store, busybox_tar, tmp_path):
    busybox, _child, (base, _top) = two_images(store, busybox_tar)
    out = tmp_path / "save.tar"
    with open(out, "wb") as f:
        archive.save(store, [archive.SaveItem(busybox, ["busybox:dy"])], f)
    for transport in ("docker-archive:", "oci-archive:"):
        info = json.loads(run_tool("skopeo", "inspect", transport + str(out)))
        assert info["Layers"] == [base], transport
        assert info["Architecture"] == "amd64" and info["Os"] == "linux"
        config = json.loads(run_tool("skopeo", "inspect", "--config", transport + str(out)))
        assert config["rootfs"]["diff_ids"] == [base]
    info = json.loads(run_tool("skopeo", "inspect", f"oci-archive:{out}:dy"))
    assert info["Layers"] == [base]


def test_docker_engine_loads_and_runs_the_save(store, busybox_tar, tmp_path, docker_engine):
    busybox, child, _layers = two_images(store, busybox_tar)
    buf = io.BytesIO()
    archive.save(store, [archive.SaveItem(busybox, ["dockyard-saved/busybox:1"]),
                         archive.SaveItem(child, ["dockyard-saved/hello:1"])], buf)
    out = docker_engine.cli("load", input=buf.getvalue()).stdout.decode()
    assert "Loaded image: dockyard-saved/busybox:1" in out
    assert "Loaded image: dockyard-saved/hello:1" in out
    inspect = json.loads(docker_engine.cli("image", "inspect", "dockyard-saved/hello:1").stdout)
    assert inspect[0]["Id"] == "sha256:" + child  # the same image, the same id
    run = docker_engine.cli("run", "--rm", "--network", "none", "dockyard-saved/hello:1")
    assert run.stdout == b"from dockyard\n"
    run = docker_engine.cli("run", "--rm", "--network", "none", "dockyard-saved/busybox:1",
                            "sh", "-c", "echo $PATH; id -u")
    assert run.stdout.decode().split() == [busybox_image_config(_layers[0])["config"]["Env"][0]
                                           .split("=", 1)[1], "0"]
    docker_engine.cli("rmi", "dockyard-saved/busybox:1", "dockyard-saved/hello:1")
