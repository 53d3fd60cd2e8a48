"""The team's storage quota (Team.storage_quota, panel/images/quota.py): distinct layers count
once; a pull or an import that would go over it fails with a 403 and leaves no row and no
file of the new image; a team already over it downloads nothing; a build stops at the step
that would go over it, tagging nothing; its RUN steps are outside the container quotas."""

import io
import os
import tarfile
import uuid

import pytest
from registry import file_layer

from panel.containers.models import Container
from panel.images import quota, spool
from panel.images import services as images
from panel.images.models import Image, ImageTag
from panel.jobs.models import Job
from workers.tasks import run_job

from .build_node import build_node  # noqa: F401


def _run(job) -> Job:
    run_job(str(job.id))
    job.refresh_from_db()
    return job


def _rootfs_tar(size: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("data")
        info.size = size
        tf.addfile(info, io.BytesIO(b"x" * size))
    return buf.getvalue()


def _spooled(data: bytes) -> str:
    path = spool.spool_path(".tar")
    with open(path, "wb") as f:
        f.write(data)
    return path


def test_pull_over_the_quota_is_refused_and_leaves_nothing(owner, team, registry, store,
                                                           enqueued):
    small = f"{registry.host}/quota/small-{uuid.uuid4().hex[:8]}"
    big = f"{registry.host}/quota/big-{uuid.uuid4().hex[:8]}"
    registry.push_image(small.split("/", 1)[1] + ":1", [file_layer("a", b"a" * 10_000)])
    pushed = registry.push_image(big.split("/", 1)[1] + ":1",
                                 [file_layer("a", b"a" * 10_000), file_layer("b", b"b" * 50_000)])
    team.storage_quota = 40_000
    team.save()
    assert _run(images.pull(owner, f"{small}:1", team=team)).state == Job.State.SUCCEEDED
    used = quota.usage(team)
    assert 10_000 < used < 40_000

    job = _run(images.pull(owner, f"{big}:1", team=team))
    assert job.state == Job.State.FAILED and job.result == {"status": 403}
    assert job.error.startswith("storage quota of team blue exceeded")
    big_id = pushed["config_digest"][7:]
    assert not Image.objects.filter(pk=big_id).exists()
    assert not store.has_blob(pushed["config_digest"])
    assert not store.has_layer(pushed["diff_ids"][1])  # the new layer went again
    assert store.has_layer(pushed["diff_ids"][0])  # the small image's stays
    assert quota.usage(team) == used

    team.storage_quota = None
    team.save()
    assert _run(images.pull(owner, f"{big}:1", team=team)).state == Job.State.SUCCEEDED
    # Over the (lowered) quota now: nothing more is even downloaded.
    team.storage_quota = 1
    team.save()
    job = _run(images.pull(owner, f"{small}:1", team=team))
    assert job.state == Job.State.FAILED and job.result == {"status": 403}


def test_import_over_the_quota_is_refused(owner, team, store, enqueued):
    team.storage_quota = 20_000
    team.save()
    job = _run(images.import_image(owner, _spooled(_rootfs_tar(30_000)), repository="big",
                                   team=team))
    assert job.state == Job.State.FAILED and job.result == {"status": 403}
    assert not Image.objects.exists()
    assert os.listdir(store.layers) == []  # its layer went again
    ok = _run(images.import_image(owner, _spooled(_rootfs_tar(5_000)), repository="small",
                                  team=team))
    assert ok.state == Job.State.SUCCEEDED


def test_commit_over_the_quota_is_refused(owner, team, store, settings, enqueued):
    base = _run(images.import_image(owner, _spooled(_rootfs_tar(1_000)), repository="base",
                                    team=team))
    image = Image.objects.get(pk=base.result["id"][7:])
    Container.objects.create(id="c" * 64, name="box", team=team, node=image.node, image=image,
                             image_ref="base", state="exited")
    upper = settings.STATE_ROOT / "containers" / ("c" * 64) / "upper"
    upper.mkdir(parents=True)
    (upper / "big").write_bytes(b"x" * 50_000)
    team.storage_quota = quota.usage(team) + 10_000
    team.save()
    job = _run(images.commit(owner, "box", repository="snap"))
    assert job.state == Job.State.FAILED and job.result == {"status": 403}
    assert list(Image.objects.all()) == [image]
    assert sorted(os.listdir(store.layers)) == [image.layers[0][7:]]


def test_shared_layers_count_once(owner, team, store, enqueued):
    job = _run(images.import_image(owner, _spooled(_rootfs_tar(5_000)), repository="one",
                                   team=team))
    image = Image.objects.get(pk=job.result["id"][7:])
    single = quota.usage(team)
    assert single == store.layer_size(image.layers[0])
    assert quota.new_bytes(team, image.layers) == 0
    team.storage_quota = single
    team.save()
    quota.check_image(team, image.layers)  # an image of layers the team holds fits
    with pytest.raises(quota.StorageQuotaExceeded):
        quota.check_storage(team, 1)
    Image.objects.filter(pk=image.pk).update(team=None)
    assert quota.usage(team) == 0  # layers that a shared image holds are the node's


def test_a_build_over_the_quota_stops(build_node, owner, team):  # noqa: F811
    team.storage_quota = 100_000
    team.save()
    dockerfile = ("FROM busybox:1.29\nRUN echo small > /small\n"
                  "RUN dd if=/dev/zero of=/big bs=1024 count=200\nRUN echo never\n")
    job = build_node.build(owner, {"Dockerfile": dockerfile}, tags=["big:1"])
    assert job.state == Job.State.FAILED and job.result["status"] == 403
    assert job.error.startswith("storage quota of team blue exceeded")
    assert "Step 3/4" in build_node.stream() and "Step 4/4" not in build_node.stream()
    assert not ImageTag.objects.filter(repository="big").exists()
    assert quota.usage(team) <= 100_000
    assert build_node.leftovers() == []


def test_run_steps_are_outside_the_container_quotas(build_node, owner, team):  # noqa: F811
    """A build's RUN containers are the system's, transient: a team with no room left for
    containers (and a memory quota its RUN steps do not ask for) still builds."""
    team.max_containers, team.max_memory, team.max_nano_cpus = 0, 64 * 1024 ** 2, 10 ** 9
    team.save()
    job = build_node.build(owner, {"Dockerfile": "FROM busybox:1.29\nRUN echo hi > /hi\n"},
                           tags=["steps:1"])
    assert job.state == Job.State.SUCCEEDED, job.error
    assert not Container.objects.filter(team=team).exists()
