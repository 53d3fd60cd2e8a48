"""Container quotas (panel/containers/quotas.py): count, memory and CPUs of a team's
containers, at create and at `docker update`, for everyone (site admins too), audited as
quota.exceeded; a build's RUN containers are outside them; usage() for the team page."""

import pytest
from django.contrib.auth import get_user_model

from panel.audit import context
from panel.audit import services as audit
from panel.audit.models import AuditEvent
from panel.containers import quotas, services
from panel.containers.models import Container
from panel.containers.quotas import QuotaExceeded
from panel.jobs.models import Job

MiB, GiB, CPU = 1024 ** 2, 1024 ** 3, 10 ** 9


def create(user, team, **host_config):
    return services.create(acting_user=user, team=team, config={"Image": "busybox:1.29"},
                           host_config=host_config)


def set_quotas(team, **quota):
    for name, value in quota.items():
        setattr(team, name, value)
    team.save()


@pytest.fixture
def refusals():
    with context.bound("panel", route="web:container-new"):
        yield lambda: (audit.flush(), list(AuditEvent.objects.filter(outcome="denied")
                                           .order_by("seq")))[1]


@pytest.fixture
def admin(team):
    return get_user_model().objects.create_superuser("root", password="x")


def test_container_count(owner, admin, team, image, enqueued, refusals):
    set_quotas(team, max_containers=2)
    first = create(owner, team)
    create(admin, team)
    for user in (owner, admin):  # quotas bind site admins too
        with pytest.raises(QuotaExceeded) as info:
            create(user, team)
        assert info.value.status == 403
        assert info.value.message == "container quota of team blue exceeded: 2 containers of 2"
    assert Container.objects.count() == 2
    rows = refusals()
    assert [(r.action, r.actor) for r in rows] == [("quota.exceeded", owner),
                                                   ("quota.exceeded", admin)]
    assert rows[0].params == {"route": "web:container-new", "quota": "max_containers",
                              "used": 2, "limit": 2}
    Container.objects.filter(pk=first.pk).update(state=Container.State.REMOVING)
    create(owner, team)  # a container being removed no longer counts


def test_memory(owner, team, image, enqueued, refusals):
    set_quotas(team, max_memory=GiB)
    with pytest.raises(QuotaExceeded, match=r"^team blue has a memory quota \(1 GiB, 0 B used\): "
                                            r"give the container a memory limit \(-m, e\.g\. "
                                            r"-m 256m\)$"):
        create(owner, team)
    create(owner, team, Memory=768 * MiB)
    with pytest.raises(QuotaExceeded) as info:
        create(owner, team, Memory=512 * MiB)
    assert info.value.message == ("memory quota of team blue exceeded: 768 MiB used, 512 MiB "
                                  "more asked, quota 1 GiB")
    create(owner, team, Memory=256 * MiB)
    assert [r.params["quota"] for r in refusals()] == ["max_memory", "max_memory"]
    assert quotas.usage(team)["memory"] == GiB


def test_cpus_from_nano_cpus_and_cfs_quota(owner, team, image, enqueued):
    set_quotas(team, max_nano_cpus=2 * CPU)
    with pytest.raises(QuotaExceeded, match=r"give the container a CPU limit \(--cpus"):
        create(owner, team, Memory=64 * MiB)
    create(owner, team, NanoCpus=CPU * 3 // 2)
    with pytest.raises(QuotaExceeded, match=r"^CPU quota of team blue exceeded: 1\.5 CPUs "
                                            r"used, 1 CPU more asked, quota 2 CPUs$"):
        create(owner, team, CpuQuota=100_000, CpuPeriod=100_000)
    create(owner, team, CpuQuota=25_000)  # 0.25 CPU of the default 100ms period
    assert quotas.usage(team)["nano_cpus"] == CPU * 7 // 4


def test_update_of_a_limit_that_grows(owner, team, image, enqueued, refusals):
    set_quotas(team, max_memory=GiB)
    a = create(owner, team, Memory=512 * MiB)
    b = create(owner, team, Memory=256 * MiB)
    with pytest.raises(QuotaExceeded, match=r"^memory quota of team blue exceeded: 768 MiB "
                                            r"used, 512 MiB more asked, quota 1 GiB$"):
        services.update(acting_user=owner, container=b, resources={"Memory": 768 * MiB,
                                                                   "MemorySwap": 2 * GiB})
    assert refusals()[0].params["quota"] == "max_memory"
    services.update(acting_user=owner, container=b, resources={"Memory": 512 * MiB,
                                                               "MemorySwap": GiB})
    # the update's job has not run yet: its larger limit counts already
    assert Job.objects.filter(kind="container.update", state="queued").count() == 1
    with pytest.raises(QuotaExceeded, match="1 GiB used, 1 MiB more asked"):
        services.update(acting_user=owner, container=a, resources={"Memory": 513 * MiB,
                                                                   "MemorySwap": GiB * 2})
    # lowering a limit, or an update that leaves the limits alone, is always allowed
    set_quotas(team, max_memory=256 * MiB)
    services.update(acting_user=owner, container=a, resources={"Memory": 128 * MiB})
    services.update(acting_user=owner, container=a, resources={
        "RestartPolicy": {"Name": "always"}})


def test_update_of_a_container_without_a_limit(owner, team, image, enqueued):
    old = create(owner, team)  # made before the team had a CPU quota
    set_quotas(team, max_nano_cpus=CPU)
    services.update(acting_user=owner, container=old, resources={"CpuShares": 512})
    with pytest.raises(QuotaExceeded, match="0 CPUs used, 2 CPUs more asked, quota 1 CPU$"):
        services.update(acting_user=owner, container=old, resources={"NanoCpus": 2 * CPU})
    services.update(acting_user=owner, container=old, resources={"NanoCpus": CPU})


def test_build_steps_are_outside_the_quotas(owner, team, image, enqueued):
    set_quotas(team, max_containers=0, max_memory=64 * MiB)
    step = services.create(acting_user=owner, team=team, config={"Image": "busybox:1.29"},
                           host_config={"NetworkMode": "default"}, build_step=True)
    assert quotas.usage(team)["containers"] == 1  # it counts while it exists
    with pytest.raises(QuotaExceeded):
        create(owner, team, Memory=64 * MiB)
    assert list(Container.objects.all()) == [step]


def test_usage(owner, team, image, enqueued, monkeypatch):
    monkeypatch.setattr("panel.images.quota.usage", lambda t: 12345)
    assert quotas.usage(team) == {"containers": 0, "memory": 0, "nano_cpus": 0,
                                  "storage": 12345}
    create(owner, team, Memory=64 * MiB, NanoCpus=CPU // 2)
    create(owner, team)
    assert quotas.usage(team) == {"containers": 2, "memory": 64 * MiB, "nano_cpus": CPU // 2,
                                  "storage": 12345}
