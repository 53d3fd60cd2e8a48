"""`docker import` of rootfs tarballs (plain, gzip, bzip2, xz) with config changes, and the
round trip of exported filesystems with the real Docker engine in both directions."""

import bz2
import gzip
import io
import lzma

import pytest
from layerkit import assert_store_empty, make_tar, run_image, tar_listing

from workers.runtime import archive
from workers.runtime.images import ImageStore, LayerError


@pytest.mark.parametrize("compress", [bytes, lambda b: gzip.compress(b, mtime=0),
                                      bz2.compress, lzma.compress],
                         ids=["plain", "gzip", "bzip2", "xz"])
def test_import_rootfs(store, busybox_tar, tmp_path, runtime_factory, read_log, compress):
    path = tmp_path / "rootfs.tar"
    path.write_bytes(compress(busybox_tar))
    loaded = archive.import_rootfs(store, str(path), comment="Imported from -",
                                   config_changes={"Cmd": ["sh", "-c", "echo $GREETING"],
                                                   "Env": ["GREETING=imported"]})
    config = loaded.config
    assert config["config"] == {"Cmd": ["sh", "-c", "echo $GREETING"],
                                "Env": ["GREETING=imported"]}
    assert (config["os"], config["architecture"], config["comment"]) == (
        "linux", "amd64", "Imported from -")
    assert config["history"] == [{"created": config["created"], "comment": "Imported from -"}]
    assert loaded.diff_ids == config["rootfs"]["diff_ids"] and len(loaded.diff_ids) == 1
    assert loaded.size == len(busybox_tar)
    assert store.get_config(loaded.image_id) == config
    assert run_image(runtime_factory, read_log, store, loaded,
                     config["config"]["Cmd"]) == "imported\n"


def test_import_limit(state_root, tmp_path):
    path = tmp_path / "big.tar.gz"
    path.write_bytes(make_tar([("big", "file", "\0" * (4 << 20))], gz=True))
    store = ImageStore(state_root)
    with pytest.raises(LayerError, match="limit"):
        archive.import_rootfs(store, str(path), config_changes={}, max_layer_size=1 << 20)
    assert_store_empty(store)


def test_export_import_round_trips_with_docker(store, image, tmp_path, docker_engine,
                                               runtime_factory, read_log):
    # Dockyard's export -> docker import -> docker run
    exported = io.BytesIO()
    archive.export_rootfs(image["layers"], None, exported)
    docker_engine.cli("import", "--change", 'CMD ["sh"]', "-", "dockyard-export:1",
                      input=exported.getvalue())
    run = docker_engine.cli("run", "--rm", "--network", "none", "dockyard-export:1",
                            "sh", "-c", "echo from-dockyard > /f && cat /f && ls /bin | wc -l")
    lines = run.stdout.decode().split()
    assert lines[0] == "from-dockyard" and int(lines[1]) > 100
    # docker export of a container that changed files -> Dockyard import -> run
    docker_engine.cli("run", "--network", "none", "--name", "dockyard-export-src",
                      "dockyard-export:1", "sh", "-c", "echo from-docker > /made; rm /etc/group")
    tarball = docker_engine.cli("export", "dockyard-export-src").stdout
    docker_engine.cli("rm", "dockyard-export-src")
    docker_engine.cli("rmi", "dockyard-export:1")
    assert "made" in tar_listing(tarball)
    path = tmp_path / "docker-export.tar"
    path.write_bytes(tarball)
    loaded = archive.import_rootfs(store, str(path), config_changes={"Cmd": ["cat", "/made"]})
    out = run_image(runtime_factory, read_log, store, loaded,
                    ["sh", "-c", "cat /made; test -e /etc/group || echo no-group"])
    assert out == "from-docker\nno-group\n"
