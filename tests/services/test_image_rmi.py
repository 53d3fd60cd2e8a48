"""docker rmi at the service layer: untag before delete, Docker's conflicts and words,
parents pruned, the node's files removed by a job `image.remove`."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import PermissionDenied

from panel.audit.models import AuditEvent
from panel.containers.models import Container
from panel.errors import Conflict
from panel.images import services as images
from panel.images.models import Image, ImageTag
from panel.jobs.models import Job
from panel.nodes.services import local_node


def make_image(char, team, *, tags=(), parent="", digests=(), layers=None, year=2021):
    image = Image.objects.create(
        id=char * 64, node=local_node(), team=team, parent=parent,
        config={"config": {"Cmd": ["sh"]}, "rootfs": {"diff_ids": layers or []}},
        layers=layers or [f"sha256:{char * 64}"], repo_digests=list(digests),
        created=datetime(year, 1, 1, tzinfo=UTC))
    for ref in tags:
        repository, tag = ref.rsplit(":", 1)
        ImageTag.objects.create(image=image, repository=repository, tag=tag)
    return image


def make_container(image, state="exited", name="web"):
    return Container.objects.create(id=name[0] * 64, name=name, team=image.team,
                                    node=image.node, image=image, image_ref="x", state=state)


def test_untag_one_of_several_tags(owner, team):
    make_image("1", team, tags=["app:1", "app:2"])
    assert images.remove(owner, "app:1") == [{"Untagged": "app:1"}]
    assert [str(t) for t in Image.objects.get().tags.all()] == ["app:2"]
    assert not Job.objects.exists()


def test_last_tag_deletes_and_a_job_removes_the_files(owner, team):
    image = make_image("1", team, tags=["app:1"], digests=["app@sha256:" + "9" * 64])
    assert images.remove(owner, "app:1") == [{"Untagged": "app:1"},
                                             {"Untagged": "app@sha256:" + "9" * 64},
                                             {"Deleted": image.docker_id}]
    assert not Image.objects.exists()
    job = Job.objects.get()
    assert (job.kind, job.payload) == ("image.remove", {"image_ids": [image.id]})
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["image.untag", "image.untag", "image.remove"]


def test_by_id_with_several_tags_must_be_forced(owner, team):
    image = make_image("1", team, tags=["app:1", "other:1"])
    with pytest.raises(Conflict, match=r"^conflict: unable to delete 111111111111 \(must be "
                                       r"forced\) - image is referenced in multiple repositories"):
        images.remove(owner, image.id[:5])
    records = images.remove(owner, image.id[:5], force=True)
    assert records == [{"Untagged": "app:1"}, {"Untagged": "other:1"},
                       {"Deleted": image.docker_id}]


def test_a_container_holds_its_image(owner, team):
    image = make_image("1", team, tags=["app:1"])
    make_container(image)
    with pytest.raises(Conflict, match=r'^conflict: unable to remove repository reference "app:1" '
                                       r"\(must force\) - container wwwwwwwwwwww is using its "
                                       r"referenced image 111111111111$"):
        images.remove(owner, "app:1")
    with pytest.raises(Conflict, match=r"\(must be forced\) - image is being used by stopped "
                                       r"container wwwwwwwwwwww"):
        images.remove(owner, image.id)
    # Forced: untagged, but the row stays for the container (it still runs from it).
    assert images.remove(owner, "app:1", force=True) == [{"Untagged": "app:1"}]
    assert Image.objects.filter(pk=image.pk).exists()
    assert not Job.objects.exists()


def test_a_running_container_refuses_even_force(owner, team):
    image = make_image("1", team, tags=["app:1"])
    make_container(image, state="running")
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image is being used by running "
                                       r"container wwwwwwwwwwww"):
        images.remove(owner, image.id, force=True)
    assert ImageTag.objects.filter(image=image).exists()


def test_children_and_parent_pruning(owner, team):
    base = make_image("1", team)  # untagged parent (an intermediate image)
    middle = make_image("2", team, parent=base.id, tags=["mid:1"])
    top = make_image("3", team, parent=middle.id, tags=["top:1"])
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image has dependent child images"):
        images.remove(owner, middle.id, force=True)
    # Deleting the top image goes up the chain while parents are untagged and childless.
    assert images.remove(owner, "top:1") == [{"Untagged": "top:1"}, {"Deleted": top.docker_id}]
    assert images.remove(owner, "mid:1") == [{"Untagged": "mid:1"}, {"Deleted": middle.docker_id},
                                             {"Deleted": base.docker_id}]
    assert not Image.objects.exists()


def test_noprune_keeps_parents(owner, team):
    base = make_image("1", team)
    make_image("2", team, parent=base.id, tags=["x:1"])
    images.remove(owner, "x:1", prune_parents=False)
    assert list(Image.objects.values_list("id", flat=True)) == [base.id]


def test_a_digest_of_another_repository_keeps_the_image(owner, team):
    digest_ref = "localhost:5000/x@sha256:" + "9" * 64
    make_image("1", team, tags=["app:1"], digests=[digest_ref])
    assert images.remove(owner, "app:1") == [{"Untagged": "app:1"}]
    assert Image.objects.get().repo_digests == [digest_ref]


def test_untag_by_digest(owner, team):
    digest_ref = "localhost:5000/x@sha256:" + "9" * 64
    image = make_image("1", team, tags=["app:1"], digests=[digest_ref])
    assert images.resolve(owner, digest_ref) == image
    assert images.remove(owner, digest_ref) == [{"Untagged": digest_ref}]
    image.refresh_from_db()
    assert image.repo_digests == []


def test_permissions(viewer, owner, team, image):
    make_image("1", team, tags=["app:1"])
    with pytest.raises(PermissionDenied):
        images.remove(viewer, "app:1")
    with pytest.raises(PermissionDenied, match="Only site admins"):
        images.remove(owner, "busybox:1.29")  # the shared base image


def test_image_remove_job_keeps_layers_in_use(owner, team, monkeypatch):
    from workers import image_tasks

    shared = "sha256:" + "c" * 64
    make_image("1", team, tags=["a:1"], layers=[shared, "sha256:" + "d" * 64])
    make_image("2", team, tags=["b:1"], layers=[shared])
    calls = []

    class Store:
        def delete(self, image_ids, *, keep_diff_ids):
            calls.append((image_ids, keep_diff_ids))
            return 42

    monkeypatch.setattr(image_tasks.node, "image_store", Store)
    images.remove(owner, "a:1")
    result = image_tasks.IMAGE_HANDLERS["image.remove"](Job.objects.get(kind="image.remove"))
    assert result == {"freed": 42}
    assert calls == [(["1" * 64], {shared})]
