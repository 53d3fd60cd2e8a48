"""import, save, load, commit and export through the services and the worker's handlers:
spool files in and out, tags, --change, the committed image's parent and config."""

import os
import tarfile

import pytest
from registry import file_layer

from panel.containers.models import Container
from panel.errors import InvalidParameter
from panel.images import services as images
from panel.images import spool
from panel.images.models import Image
from workers.image_tasks import IMAGE_HANDLERS


def run(job):
    return IMAGE_HANDLERS[job.kind](job)


def spooled(data: bytes) -> str:
    path = spool.spool_path(".tar")
    with open(path, "wb") as f:
        f.write(data)
    return path


def names_in(path: str) -> set[str]:
    with tarfile.open(path) as tf:
        return {m.name.removeprefix("./") for m in tf.getmembers()}


def imported(owner, team) -> Image:
    path = spooled(file_layer("etc/motd", b"imported\n"))
    result = run(images.import_image(owner, path, repository="imp/app", tag="1", team=team,
                                     changes=['CMD ["/bin/sh"]', "ENV A=1"]))
    assert not os.path.exists(path)  # the job removed the upload
    return Image.objects.get(pk=result["id"].removeprefix("sha256:"))


def test_import_with_changes(owner, team, store):
    image = imported(owner, team)
    assert [str(t) for t in image.tags.all()] == ["imp/app:1"]
    assert image.run_config["Cmd"] == ["/bin/sh"] and image.run_config["Env"] == ["A=1"]
    assert image.config["history"][0]["comment"] == "Imported from -"
    with pytest.raises(InvalidParameter, match="run is not a valid change command"):
        images.import_image(owner, spooled(b""), changes=["RUN x"], team=team)


def test_save_then_load_round_trip(owner, team, store):
    image = imported(owner, team)
    saved = run(images.save(owner, ["imp/app"]))["path"]
    assert os.path.dirname(saved) == spool.spool_dir() and "manifest.json" in names_in(saved)
    images.remove(owner, "imp/app:1")
    assert not Image.objects.exists()
    upload = spool.spool_path(".tar")
    os.rename(saved, upload)
    result = run(images.load(owner, upload, team=team))
    assert result == {"images": [{"id": image.docker_id, "tags": ["imp/app:1"]}]}
    assert not os.path.exists(upload)
    assert images.resolve(owner, "imp/app:1").id == image.id


def test_commit_and_export(owner, team, store, settings):
    image = imported(owner, team)
    container = Container.objects.create(id="c" * 64, name="box", team=team, node=image.node,
                                         image=image, image_ref="imp/app:1", state="exited",
                                         env=["B=2"])
    upper = settings.STATE_ROOT / "containers" / container.id / "upper"
    os.makedirs(upper / "srv")
    (upper / "srv" / "new.txt").write_bytes(b"made in the container\n")

    job = images.commit(owner, "box", repository="committed", tag="v1",
                        changes=["LABEL stage=test"], author="me", comment="snapshot")
    new = Image.objects.get(pk=run(job)["id"].removeprefix("sha256:"))
    assert new.parent == image.id and [str(t) for t in new.tags.all()] == ["committed:v1"]
    assert new.layers[:-1] == image.layers and len(new.layers) == 2
    assert new.run_config["Labels"] == {"stage": "test"}
    assert sorted(new.run_config["Env"]) == ["A=1", "B=2"]
    assert new.config["author"] == "me" and new.config["history"][-1]["comment"] == "snapshot"
    with tarfile.open(store.layer_tar_path(new.layers[-1])) as tf:
        assert "srv/new.txt" in {m.name.removeprefix("./") for m in tf.getmembers()}
    assert [row["Id"] for row in images.history(owner, "committed:v1")][:2] == [
        new.docker_id, image.docker_id]

    exported = run(images.export_container(owner, "box"))["path"]
    try:
        assert {"etc/motd", "srv/new.txt"} <= names_in(exported)
    finally:
        os.unlink(exported)
