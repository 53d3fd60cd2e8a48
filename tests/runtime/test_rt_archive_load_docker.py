"""`docker load` of Docker save tars: made by the real Docker engine (its classic format:
<id>/layer.tar, <config>.json) and by skopeo's docker-archive; the images keep their ids and
tags and run in Dockyard."""

import io
import json
import tarfile

import pytest
from layerkit import assert_store_empty, run_image, run_tool

from workers.runtime import archive


@pytest.fixture(scope="module")
def docker_saved(docker_engine, busybox_tar, tmp_path_factory):
    """busybox imported into the engine, and a child committed from a container that
    deleted a file and wrote one (a whiteout in its layer); both saved by the engine."""
    cli = docker_engine.cli
    cli("import", "--change", 'CMD ["sh"]', "-", "dockyard-peer/busybox:1", input=busybox_tar)
    cli("run", "--network", "none", "--name", "dockyard-peer-commit", "dockyard-peer/busybox:1",
        "sh", "-c", "rm /etc/group && echo hi > /hello")
    cli("commit", "--change", 'CMD ["cat", "/hello"]', "dockyard-peer-commit",
        "dockyard-peer/child:1")
    cli("rm", "dockyard-peer-commit")
    ids = {ref: json.loads(cli("image", "inspect", ref).stdout)[0]["Id"]
           for ref in ("dockyard-peer/busybox:1", "dockyard-peer/child:1")}
    path = tmp_path_factory.mktemp("docker-save") / "docker.tar"
    path.write_bytes(cli("save", "dockyard-peer/busybox:1", "dockyard-peer/child:1").stdout)
    cli("rmi", "dockyard-peer/busybox:1", "dockyard-peer/child:1")
    return path, ids


def test_load_docker_engine_save(store, docker_saved, runtime_factory, read_log):
    path, ids = docker_saved
    events = []
    loaded = archive.load(store, str(path), progress=events.append)
    by_tag = {item.repo_tags[0]: item for item in loaded}
    assert sorted(by_tag) == ["dockyard-peer/busybox:1", "dockyard-peer/child:1"]
    for tag, item in by_tag.items():
        assert "sha256:" + item.image_id == ids[tag]
        assert item.size == sum(store.layer_size(d) for d in item.diff_ids)
    child = by_tag["dockyard-peer/child:1"]
    assert len(child.diff_ids) == 2 and child.diff_ids[0] == by_tag[
        "dockyard-peer/busybox:1"].diff_ids[0]
    assert {e["id"] for e in events} == {d[7:19] for d in child.diff_ids}
    assert all(e["status"] == "Loading layer" for e in events)
    last = {e["id"]: e["progressDetail"] for e in events}
    assert all(p["current"] == p["total"] > 0 for p in last.values())
    assert child.config["config"]["Cmd"] == ["cat", "/hello"]
    out = run_image(runtime_factory, read_log, store, child,
                    ["sh", "-c", "cat /hello; test -e /etc/group || echo whited-out"])
    assert out == "hi\nwhited-out\n"
    # loading again adds nothing and gives the same images
    assert sorted(i.image_id for i in archive.load(store, str(path))) == sorted(
        i.image_id for i in loaded)


def test_load_skopeo_docker_archive(store, docker_saved, tmp_path, runtime_factory, read_log):
    path, _ids = docker_saved
    out = tmp_path / "skopeo.tar"
    # via an OCI layout dir: skopeo 1.9 cannot copy docker-archive to docker-archive directly
    run_tool("skopeo", "copy", "-q", f"docker-archive:{path}:dockyard-peer/child:1",
             f"oci:{tmp_path / 'layout'}:x")
    run_tool("skopeo", "copy", "-q", f"oci:{tmp_path / 'layout'}:x",
             f"docker-archive:{out}:skopeo/child:2")
    with tarfile.open(out) as tf:  # skopeo's own layout: <id>/layer.tar symlinks
        assert any(m.issym() and m.name.endswith("/layer.tar") for m in tf.getmembers())
    [loaded] = archive.load(store, str(out))
    assert loaded.repo_tags == ["skopeo/child:2"]
    assert len(loaded.diff_ids) == 2  # (skopeo rewrites the config via OCI: another id)
    assert run_image(runtime_factory, read_log, store, loaded, ["cat", "/hello"]) == "hi\n"


def test_corrupt_docker_save_refused(store, docker_saved, tmp_path):
    """The config's diff_ids do not match a layer.tar: nothing stays in the store."""
    path, _ids = docker_saved
    bad = tmp_path / "bad.tar"
    with tarfile.open(path) as src, tarfile.open(bad, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if data and m.name.endswith("/layer.tar") and b"hi\n" in data:
                data = data.replace(b"hi\n", b"HI\n")  # the child's layer: same length
            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    with pytest.raises(archive.ArchiveError, match="digest mismatch"):
        archive.load(store, str(bad))
    assert_store_empty(store)
