"""Team policy (panel/containers/policy.py): each flag is refused to a team's members with a
403 naming the flag, the team and who can change it, is audited as policy.denied, and is
allowed once the team's policy allows it; site admins are never limited."""

import os

import pytest
from django.contrib.auth import get_user_model

from panel.audit import context
from panel.audit import services as audit
from panel.audit.models import AuditEvent
from panel.containers import execs, policy, services
from panel.containers.models import Container
from panel.containers.policy import PolicyDenied
from panel.volumes import services as volumes

WHO = "a team admin can allow it on the team's policy page"


def create(user, team, **host_config):
    return services.create(acting_user=user, team=team, config={"Image": "busybox:1.29"},
                           host_config=host_config)


@pytest.fixture
def refusals():
    """Bind an audit context as an interface does; returns the denied rows written."""
    with context.bound("api", route="POST /containers/create"):
        yield lambda: (audit.flush(), list(AuditEvent.objects.filter(outcome="denied")
                                           .order_by("seq")))[1]


def allow(team, **fields):
    for name, value in fields.items():
        setattr(team, name, value)
    team.save()


@pytest.mark.parametrize("field, host_config, flag, words", [
    ("allow_privileged", {"Privileged": True}, "--privileged", "privileged containers"),
    ("allow_devices", {"Devices": [{"PathOnHost": "/dev/zero"}]}, "--device /dev/zero",
     "host devices"),
    ("allow_extra_capabilities", {"CapAdd": ["NET_ADMIN"]}, "--cap-add CAP_NET_ADMIN",
     "capabilities beyond Docker's default set"),
    ("allow_unconfined_seccomp", {"SecurityOpt": ["seccomp=unconfined"]},
     "--security-opt seccomp=unconfined", "an unconfined or custom seccomp profile"),
    ("allow_host_namespaces", {"PidMode": "host"}, "--pid host",
     "sharing the node's namespaces"),
    ("allow_host_namespaces", {"IpcMode": "host", "UTSMode": "host"},
     "--ipc host, --uts host", "sharing the node's namespaces"),
    ("allow_host_namespaces", {"NetworkMode": "host"}, "--network host",
     "sharing the node's namespaces"),
    ("allow_low_ports", {"PortBindings": {"80/tcp": [{"HostPort": "80"}]}}, "-p 80:80/tcp",
     "publishing host ports below 1024"),
    ("allow_low_ports", {"PortBindings": {"8080/tcp": [{"HostPort": "1000-1030"}]}},
     "-p 1000-1030:8080/tcp", "publishing host ports below 1024"),
])
def test_each_flag_is_refused_then_allowed(owner, team, image, enqueued, refusals, field,
                                           host_config, flag, words):
    with pytest.raises(PolicyDenied) as info:
        create(owner, team, **host_config)
    assert info.value.status == 403
    assert info.value.message == (f"{flag}: the policy of team blue does not allow {words}; "
                                  f"{WHO}")
    assert not Container.objects.exists()
    [row] = refusals()
    assert (row.action, row.actor, row.team, row.source) == ("policy.denied", owner, team, "api")
    assert row.params["policy"] == field and row.params["flags"] == flag.split(", ")
    assert row.result == {"message": info.value.message}

    allow(team, **{field: True})
    assert create(owner, team, **host_config).host_config == host_config


def test_one_field_does_not_allow_another(owner, team, image, enqueued):
    allow(team, allow_privileged=True)
    create(owner, team, Privileged=True)
    with pytest.raises(PolicyDenied, match=r"^--cap-add CAP_SYS_ADMIN: the policy of team"):
        create(owner, team, CapAdd=["SYS_ADMIN"])
    create(owner, team, CapAdd=["CHOWN"])  # in Docker's default set: no policy


def test_random_and_high_ports_need_nothing(owner, team, image, enqueued):
    image.config["config"]["ExposedPorts"] = {"80/tcp": {}}
    image.save()
    create(owner, team, PublishAllPorts=True, PortBindings={
        "80/tcp": [{"HostPort": ""}], "443/tcp": [{"HostPort": "8443"}]})


def test_site_admins_and_the_system_are_not_limited(team, image, enqueued):
    admin = get_user_model().objects.create_superuser("root", password="x")
    everything = {"Privileged": True, "CapAdd": ["ALL"], "PidMode": "host",
                  "SecurityOpt": ["seccomp=unconfined"], "NetworkMode": "host",
                  "Binds": ["/etc:/host-etc:ro"]}
    create(admin, team, **everything)
    policy.check_security(None, team, everything)
    policy.check_host_binds(None, team, ["/"])


@pytest.fixture
def host_dirs(tmp_path):
    for name in ("data", "database", "outside"):
        (tmp_path / name).mkdir()
    (tmp_path / "data" / "escape").symlink_to(tmp_path / "outside")
    return tmp_path


def test_bind_prefixes(owner, team, image, enqueued, host_dirs, refusals):
    data, database = host_dirs / "data", host_dirs / "database"
    with pytest.raises(PolicyDenied) as info:
        create(owner, team, Binds=[f"{data}:/data"])
    assert info.value.message == (
        f"bind mount of host path {data}: the policy of team blue does not allow bind mounts "
        "of host paths; use a named volume, or a team admin can allow a host path prefix on "
        "the team's policy page")
    assert refusals()[0].params == {"route": "POST /containers/create",
                                    "policy": "bind_prefixes",
                                    "flags": [f"bind mount of host path {data}"]}

    allow(team, bind_prefixes=[f"{data}/", "relative/ignored", ""])
    assert policy.bind_prefixes_for(team) == [str(data)]
    create(owner, team, Binds=[f"{data}:/data", f"{data}/sub/dir:/sub:ro"])
    create(owner, team, Mounts=[
        {"Type": "bind", "Source": str(data), "Target": "/m"}])
    for refused in (database, host_dirs, f"{data}/../outside", f"{data}/escape",
                    f"{data}/escape/x"):
        with pytest.raises(PolicyDenied, match=f"allows host paths under {data} only; a team "
                                               "admin can change it"):
            policy.check_host_binds(owner, team, [str(refused)])
    with pytest.raises(PolicyDenied, match=f"host path {database}: "):
        create(owner, team, Binds=[f"{database}:/db"])
    with pytest.raises(PolicyDenied, match=f"host path {host_dirs}/outside: "):
        volumes.create(acting_user=owner, team=team, name="vol", driver="local", options={
            "type": "none", "o": "bind", "device": f"{host_dirs}/outside"})


def test_a_prefix_that_is_a_symlink_allows_what_is_under_it(owner, team, host_dirs):
    link = host_dirs / "link"
    link.symlink_to(host_dirs / "data")
    allow(team, bind_prefixes=[str(link)])
    policy.check_host_binds(owner, team, [f"{link}/x"])
    with pytest.raises(PolicyDenied):
        policy.check_host_binds(owner, team, [os.path.join(link, "escape")])


def test_privileged_exec_follows_allow_privileged(owner, team, image, enqueued, refusals):
    box = create(owner, team)
    Container.objects.filter(pk=box.pk).update(state=Container.State.RUNNING)
    with pytest.raises(PolicyDenied, match="^docker exec --privileged: the policy of team "
                                           "blue does not allow privileged containers"):
        execs.create(acting_user=owner, container=box, config={"Cmd": ["sh"],
                                                                "Privileged": True})
    [row] = refusals()
    assert (row.object_type, row.object_id) == ("container", box.id)
    allow(team, allow_privileged=True)
    box.team.refresh_from_db()
    instance = execs.create(acting_user=owner, container=box,
                            config={"Cmd": ["sh"], "Privileged": True})
    assert instance.config["Privileged"] is True
