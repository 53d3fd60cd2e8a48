"""`docker commit` and `docker export` of real containers: the upper dir of a container that
deleted, replaced and added files becomes an OCI layer (whiteouts, an opaque dir, owners,
a hard link); the commit runs; the export is the merged view. With userns-remap the
container's writes (the node's 100000 + n) come out as n."""

import io
import os
import secrets
import stat
import tarfile

import pytest
from layerkit import run_image, tar_listing

from workers.runtime import archive
from workers.runtime.container import Runtime

REMAP = 100000
CHANGES = ("rm /etc/group; rm -r /home; mkdir /home; echo new > /home/f; "
           "echo added > /added; chown 1000:1001 /added; ln /added /added-link; "
           "chmod 4711 /added; mkdir -p /var/app && touch /var/app/x")


def run_changes(rt, make_spec, read_log, **kw):
    spec = make_spec(["sh", "-c", CHANGES], **kw)
    rt.create(spec)
    rt.start(spec.id)
    code = rt.wait(spec.id, 10)
    assert code == 0, read_log(rt, spec.id)
    return spec, os.path.join(rt.containers, spec.id, "upper")


def check_diff(entries):
    assert entries["etc/.wh.group"].isfile() and entries["etc/.wh.group"].size == 0
    assert "home/.wh..wh..opq" in entries and entries["home/f"].isfile()
    added = entries["added"]
    assert (added.uid, added.gid, added.mode) == (1000, 1001, 0o4711)
    assert entries["added-link"].islnk() and entries["added-link"].linkname == "added"
    assert entries["var/app/x"].isfile()
    assert not any(n.startswith("bin/") for n in entries)  # untouched: not in the diff
    assert not {"etc/hostname", "etc/hosts", "etc/resolv.conf"} & set(entries)  # mount points
    assert not any(m.ischr() for m in entries.values())


def test_diff_commit_export_of_a_container(rt, make_spec, read_log, store, image,
                                           runtime_factory, tmp_path):
    spec, upper = run_changes(rt, make_spec, read_log)
    buf = io.BytesIO()
    archive.diff_tar(upper, buf)
    check_diff(tar_listing(buf.getvalue()))

    loaded = archive.commit(store, image["id"], upper, config_changes={"Cmd": ["cat", "/added"]},
                            comment="a commit", author="tester", created_by="sh -c ...")
    assert loaded.diff_ids[:-1] == image["config"]["rootfs"]["diff_ids"]
    assert loaded.config["config"]["Cmd"] == ["cat", "/added"]
    assert loaded.config["config"]["Env"] == image["config"]["config"]["Env"]
    assert loaded.config["author"] == "tester"
    assert loaded.config["history"][-1] == {
        "created": loaded.config["created"], "author": "tester", "created_by": "sh -c ...",
        "comment": "a commit"}
    assert store.get_config(loaded.image_id) == loaded.config
    out = run_image(runtime_factory, read_log, store, loaded, ["sh", "-c", (
        "cat /added /home/f; ls /home; test -e /etc/group || echo no-group; "
        "stat -c '%u %g %a %h' /added")])
    assert out == "added\nnew\nf\nno-group\n1000 1001 4711 2\n"

    export = io.BytesIO()
    archive.export_rootfs(image["layers"], upper, export)
    entries = tar_listing(export.getvalue())
    assert "etc/group" not in entries and "etc/passwd" in entries
    assert sorted(n for n in entries if n.startswith("home/")) == ["home/f"]
    assert entries["bin/busybox"].size == os.path.getsize("/bin/busybox")
    assert entries["bin/sh"].issym() and entries["bin/sh"].linkname == "busybox"
    with tarfile.open(fileobj=io.BytesIO(export.getvalue())) as tf:
        assert tf.extractfile("added").read() == b"added\n"
    assert not any(".wh." in n for n in entries)
    assert (entries["added"].uid, entries["added"].mode) == (1000, 0o4711)


def test_empty_diff_still_makes_a_layer(store, image, tmp_path):
    upper = tmp_path / "upper"
    upper.mkdir()
    loaded = archive.commit(store, image["id"], str(upper), config_changes={})
    assert len(loaded.diff_ids) == 2
    assert store.layer_size(loaded.diff_ids[-1]) > 0
    assert os.listdir(store.layer_dir(loaded.diff_ids[-1])) == []


@pytest.fixture
def userns_rt(state_root, cgroup_parent):
    rt = Runtime(state_root, node="t" + secrets.token_hex(4), redis_url="redis://127.0.0.1:1/0",
                 launcher=False, cgroup_parent=cgroup_parent, userns_remap="default")
    yield rt
    for cid in rt.list_ids():
        rt.remove(cid, force=True)


def test_userns_container_ids_shifted_back(userns_rt, make_spec, read_log, store, image,
                                           runtime_factory):
    spec, upper = run_changes(userns_rt, make_spec, read_log)
    on_node = os.lstat(os.path.join(upper, "added"))
    assert (on_node.st_uid, on_node.st_gid) == (REMAP + 1000, REMAP + 1001)
    assert os.lstat(os.path.join(upper, "var/app/x")).st_uid == REMAP
    whiteout = os.lstat(os.path.join(upper, "etc/group"))
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0

    buf = io.BytesIO()
    archive.diff_tar(upper, buf, id_shift=REMAP)
    entries = tar_listing(buf.getvalue())
    check_diff(entries)
    assert (entries["var/app/x"].uid, entries["var/app/x"].gid) == (0, 0)

    export = io.BytesIO()
    archive.export_rootfs(image["layers"], upper, export, id_shift=REMAP)
    merged = tar_listing(export.getvalue())
    assert (merged["added"].uid, merged["added"].gid) == (1000, 1001)
    assert (merged["var/app/x"].uid, merged["bin/busybox"].uid) == (0, 0)
    assert "etc/group" not in merged
    assert sorted(n for n in merged if n.startswith("home/")) == ["home/f"]

    loaded = archive.commit(store, image["id"], upper, config_changes={}, id_shift=REMAP)
    out = run_image(runtime_factory, read_log, store, loaded, ["stat", "-c", "%u %g", "/added",
                                                     "/var/app/x"])
    assert out == "1000 1001\n0 0\n"
