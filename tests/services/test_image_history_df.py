"""docker history and the images part of docker system df at the service layer."""

import io
from datetime import UTC, datetime

import pytest
from registry import file_layer

from panel.images import services as images
from panel.images.models import Image, ImageTag
from panel.nodes.services import local_node
from workers.runtime.images import ImageStore

from .test_image_rmi import make_container


@pytest.fixture
def layers(tmp_path, monkeypatch):
    store = ImageStore(str(tmp_path / "state"))
    monkeypatch.setattr("workers.node.image_store", lambda: store)
    base = file_layer("bin/tool", b"t" * 5000)
    top = file_layer("etc/conf", b"c" * 100)
    return [(store.add_layer_tar(io.BytesIO(data)), len(data)) for data in (base, top)]


def add(char, team, diff_ids, history, *, parent="", tag=""):
    image = Image.objects.create(
        id=char * 64, node=local_node(), team=team, parent=parent, layers=diff_ids,
        config={"config": {}, "rootfs": {"diff_ids": diff_ids}, "history": history},
        created=datetime(2022, 1, 1, tzinfo=UTC))
    if tag:
        repository, name = tag.split(":")
        ImageTag.objects.create(image=image, repository=repository, tag=name)
    return image


def test_history_newest_first_with_parents(owner, viewer, outsider, team, layers):
    (base_id, base_size), (top_id, top_size) = layers
    entries = [{"created": "2022-01-01T00:00:00.123456789Z", "created_by": "ADD tool"},
               {"created": "2022-01-02T00:00:00Z", "created_by": "ENV A=1", "empty_layer": True}]
    base = add("1", team, [base_id], entries[:1], tag="base:1")
    top = add("2", team, [base_id, top_id],
              [*entries, {"created": "2022-01-03T00:00:00Z", "created_by": "ADD conf",
                          "comment": "hi"}], parent=base.id, tag="top:1")
    rows = images.history(owner, "top:1")
    assert [(r["Id"], r["CreatedBy"], r["Size"], r["Tags"]) for r in rows] == [
        (top.docker_id, "ADD conf", top_size, ["top:1"]),
        (base.docker_id, "ENV A=1", 0, ["base:1"]),
        ("<missing>", "ADD tool", base_size, None),
    ]
    assert rows[0]["Comment"] == "hi" and rows[2]["Created"] == 1640995200
    with pytest.raises(Exception, match="No such image"):
        images.history(outsider, "top:1")
    assert images.history(viewer, "top:1") == rows


def test_disk_usage_shares_layers_and_counts_containers(owner, team, layers):
    (base_id, base_size), (top_id, top_size) = layers
    base = add("1", team, [base_id], [], tag="base:1")
    add("2", team, [base_id, top_id], [], tag="top:1")
    make_container(base)
    usage = images.disk_usage(owner)
    assert usage["LayersSize"] == base_size + top_size
    by_id = {row["Id"]: row for row in usage["Images"]}
    assert by_id[base.docker_id]["SharedSize"] == base_size
    assert by_id[base.docker_id]["Containers"] == 1
    assert by_id["sha256:" + "2" * 64]["SharedSize"] == base_size
    assert by_id["sha256:" + "2" * 64]["Containers"] == 0
