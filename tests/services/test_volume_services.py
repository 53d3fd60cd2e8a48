"""Volumes and container mounts at the service layer (panel/volumes, panel/containers/mounts)."""

import pytest
from django.core.exceptions import PermissionDenied

from panel.audit.models import AuditEvent
from panel.containers import mounts
from panel.containers import services as containers
from panel.containers.models import Container
from panel.containers.policy import Forbidden
from panel.errors import Conflict, InvalidParameter, NotFound
from panel.jobs.models import Job
from panel.teams.models import Team
from panel.volumes import services as volumes
from panel.volumes.models import Volume


def _create(user, team, host_config=None, **config):
    return containers.create(acting_user=user, team=team, host_config=host_config or {},
                             config={"Image": "busybox:1.29", **config})


def test_create_remove_audit_and_jobs(owner, team):
    volume = volumes.create(acting_user=owner, name="cass-shared", labels={"example": "x"},
                            team=team)
    assert (volume.team, volume.anonymous, volume.labels) == (team, False, {"example": "x"})
    assert volumes.mountpoint(volume).endswith("/volumes/cass-shared/_data")
    assert volume.job.kind == "volume.create"
    assert volumes.create(acting_user=owner, name="cass-shared", team=team).pk == volume.pk
    volumes.remove(acting_user=owner, volume=volume)
    assert not Volume.objects.exists()
    assert [e.action for e in AuditEvent.objects.order_by("id")] == ["volume.create",
                                                                     "volume.remove"]
    assert [(j.kind, j.payload["name"]) for j in Job.objects.order_by("created")] == [
        ("volume.create", "cass-shared"), ("volume.remove", "cass-shared")]


def test_anonymous_create_and_bad_input(owner, team, viewer):
    anon = volumes.create(acting_user=owner, team=team)
    assert anon.anonymous and len(anon.name) == 64
    with pytest.raises(InvalidParameter, match="includes invalid characters"):
        volumes.create(acting_user=owner, name="bad/name", team=team)
    with pytest.raises(NotFound, match='plugin "nfsd" not found'):
        volumes.create(acting_user=owner, name="x1", driver="nfsd", team=team)
    with pytest.raises(InvalidParameter, match='invalid option: "bogus"'):
        volumes.create(acting_user=owner, name="x2", options={"bogus": "1"}, team=team)
    with pytest.raises(PermissionDenied):
        volumes.create(acting_user=viewer, name="x3", team=team)
    with pytest.raises(Forbidden, match="policy of team blue does not allow bind mounts"):
        volumes.create(acting_user=owner, name="x4", team=team,
                       options={"type": "none", "o": "bind", "device": "/srv"})


def test_teams_see_only_their_volumes(owner, team, outsider):
    volumes.create(acting_user=owner, name="blue-data", team=team)
    with pytest.raises(NotFound, match="get blue-data: no such volume"):
        volumes.resolve(outsider, "blue-data")
    red = Team.objects.get(name="red")
    with pytest.raises(Conflict, match="taken by another team"):
        volumes.ensure_for_container(acting_user=outsider, team=red, name="blue-data")


def test_container_mounts_resolved_at_create(owner, team, image):
    image.config["config"]["Volumes"] = {"/var/lib/data": {}}
    image.save()
    container = _create(owner, team, {"Binds": ["named:/n:ro"], "Tmpfs": {"/run": "size=1m"},
                                      "Mounts": [{"Type": "tmpfs", "Target": "/t",
                                                  "TmpfsOptions": {"SizeBytes": 1 << 20}}]},
                        Volumes={"/anon": {}})
    shown = {m["Destination"]: m for m in mounts.describe(container)}
    assert set(shown) == {"/n", "/t", "/anon", "/var/lib/data"}  # --tmpfs is not listed
    assert shown["/n"] == {"Type": "volume", "Name": "named", "Source": volumes.mountpoint(
        Volume.objects.get(name="named")), "Destination": "/n", "Driver": "local",
        "Mode": "ro", "RW": False, "Propagation": ""}
    anon = Volume.objects.filter(anonymous=True)
    assert anon.count() == 2 and {shown["/anon"]["Name"], shown["/var/lib/data"]["Name"]} == \
        set(anon.values_list("name", flat=True))
    runtime = {m["target"]: m for m in mounts.runtime_fields(container)["mounts"]}
    assert runtime["/run"] == {"type": "tmpfs", "target": "/run", "readonly": False,
                               "options": ["size=1m"]}
    assert runtime["/t"]["options"] == ["size=1m"]
    assert runtime["/n"]["copy_up"] and runtime["/n"]["readonly"]
    named = Volume.objects.get(name="named")
    assert volumes.users_of(named) == [container]
    with pytest.raises(Conflict, match=f"remove named: volume is in use - \\[{container.id}\\]"):
        volumes.remove(acting_user=owner, volume=named, force=True)
    assert volumes.release_anonymous(container) == [shown["/anon"]["Name"],
                                                    shown["/var/lib/data"]["Name"]]


def test_volumes_from_copies_mounts(owner, team, image, outsider):
    donor = _create(owner, team, {"Binds": ["shared:/s"], "Tmpfs": {"/t": ""}})
    copier = _create(owner, team, {"VolumesFrom": [f"{donor.name}:ro"]})
    assert [(m["Name"], m["Destination"], m["RW"]) for m in mounts.describe(copier)] == \
        [("shared", "/s", False)]
    with pytest.raises(NotFound, match=f"No such container: {donor.name}"):
        mounts.resolve(acting_user=outsider, team=Team.objects.get(name="red"), config={},
                       host_config={"VolumesFrom": [donor.name]}, image=None)


def test_host_bind_policy(owner, team, image, monkeypatch):
    with pytest.raises(Forbidden, match="bind mount of host path /srv/x"):
        _create(owner, team, {"Binds": ["/srv/x:/x", "/anon"]})
    assert not Container.objects.exists() and not Volume.objects.exists()
    monkeypatch.setattr("panel.containers.policy.bind_prefixes_for", lambda team: ["/srv"])
    container = _create(owner, team, {"Binds": ["/srv/x:/x"]})
    assert mounts.describe(container)[0]["Source"] == "/srv/x"
    with pytest.raises(Forbidden):
        _create(owner, team, {"Binds": ["/srvother:/x"]})


@pytest.mark.parametrize("host_config, message", [
    ({"Binds": ["/a:rel"]}, "mount path must be absolute"),
    ({"Binds": ["a:b:c:d"]}, "invalid volume specification"),
    ({"Binds": ["/a:/b:rx"]}, "invalid mode: rx"),
    ({"Binds": ["/a:/b", "vv:/b"]}, "Duplicate mount point: /b"),
    ({"Binds": ["/a:/"]}, "destination can't be '/'"),
    ({"Mounts": [{"Type": "bind", "Target": "/x"}]}, "field Source must not be empty"),
    ({"Mounts": [{"Type": "bind", "Source": "/nonexistent-dy", "Target": "/x"}]},
     "bind source path does not exist: /nonexistent-dy"),
    ({"Mounts": [{"Type": "tmpfs", "Source": "x", "Target": "/x"}]},
     "field Source must not be specified"),
    ({"Mounts": [{"Type": "volume", "Target": "/x", "BindOptions": {"Propagation": "shared"}}]},
     "field BindOptions must not be specified"),
    ({"Mounts": [{"Type": "npipe", "Target": "/x"}]}, "mount type unknown"),
    ({"Tmpfs": {"/t": "size=1m,bogus"}}, "invalid mount option"),
    ({"VolumesFrom": ["c:rx"]}, "invalid mode for volumes-from"),
])
def test_bad_mounts_are_400(owner, team, image, host_config, message):
    with pytest.raises(InvalidParameter, match=message):
        _create(owner, team, host_config)
    assert not Container.objects.exists() and not Volume.objects.exists()


def test_prune(owner, team, image):
    named = volumes.create(acting_user=owner, name="keepme", labels={"tier": "db"}, team=team)
    volumes.create(acting_user=owner, team=team)
    used = _create(owner, team, {"Binds": ["/anon-in-use"]})
    removed, _ = volumes.prune(acting_user=owner)
    assert len(removed) == 1 and Volume.objects.filter(anonymous=True).count() == 1
    assert volumes.users_of(Volume.objects.get(anonymous=True)) == [used]
    removed, _ = volumes.prune(acting_user=owner, filters={"all": ["true"],
                                                            "label!": ["tier=db"]})
    assert removed == [] and Volume.objects.filter(pk=named.pk).exists()
    removed, _ = volumes.prune(acting_user=owner, filters={"all": ["true"], "label": ["tier"]})
    assert removed == ["keepme"]
