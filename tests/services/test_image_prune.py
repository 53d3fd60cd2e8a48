"""docker image prune [-a] at the service layer: dangling only by default, every image no
container uses with -a, the until and label filters, one files job."""

import pytest

from panel.errors import InvalidParameter
from panel.images import services as images
from panel.images.models import Image
from panel.jobs.models import Job

from .test_image_rmi import make_container, make_image


def ids():
    return sorted(i[:1] for i in Image.objects.values_list("id", flat=True))


def test_dangling_only_by_default(owner, team):
    make_image("1", team)  # dangling
    make_image("2", team, digests=["app@sha256:" + "9" * 64])  # digest only: dangling too
    make_image("3", team, tags=["app:1"])
    used = make_image("4", team)
    make_container(used)
    parent = make_image("5", team)
    make_image("6", team, parent=parent.id, tags=["child:1"])  # 5 is intermediate: kept
    report = images.prune(owner)
    assert sorted(r.get("Deleted", "")[7:8] for r in report["ImagesDeleted"] if "Deleted" in r) \
        == ["1", "2"]
    assert {"Untagged": "app@sha256:" + "9" * 64} in report["ImagesDeleted"]
    assert ids() == ["3", "4", "5", "6"]
    assert sorted(Job.objects.get().payload["image_ids"]) == ["1" * 64, "2" * 64]


def test_all_removes_every_unused_image_and_their_parents(owner, team):
    make_image("3", team, tags=["app:1", "app:2"])
    used = make_image("4", team, tags=["used:1"])
    make_container(used)
    parent = make_image("5", team, year=2019)
    make_image("6", team, parent=parent.id, tags=["child:1"])
    report = images.prune(owner, all_images=True)
    assert ids() == ["4"]
    deleted = [r["Deleted"][7:8] for r in report["ImagesDeleted"] if "Deleted" in r]
    assert sorted(deleted) == ["3", "5", "6"]


def test_until_and_label_filters(owner, team):
    make_image("1", team, year=2019)
    make_image("2", team, year=2025)
    images.prune(owner, filters={"until": ["2020-01-01T00:00:00Z"]})
    assert ids() == ["2"]
    labelled = make_image("3", team)
    labelled.config["config"]["Labels"] = {"keep": "yes"}
    labelled.save()
    images.prune(owner, filters={"label!": ["keep"]})
    assert ids() == ["3"]
    images.prune(owner, filters={"label": ["keep=yes"]})
    assert ids() == []
    with pytest.raises(InvalidParameter, match="invalid filter 'until=soon'"):
        images.prune(owner, filters={"until": ["soon"]})


def test_others_and_shared_images_stay(owner, outsider, team, image):
    from panel.teams.models import Team

    make_image("1", Team.objects.get(name="red"))
    make_image("2", None)
    assert images.prune(owner, all_images=True)["ImagesDeleted"] is None
    assert len(ids()) == 3
