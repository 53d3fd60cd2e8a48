"""HostConfig limits in the services: Docker's refusals (400), the runtime's resources,
dockerd's MemorySwap default, and `docker update` (permission, merge rules, audit, job),
plus the job handler storing the values; an OOM kill reaching the row and the history."""

import pytest
from django.core.exceptions import PermissionDenied

from panel.audit.models import AuditEvent
from panel.containers import resources, services
from panel.containers.models import Container, ContainerEvent
from panel.errors import Conflict, InvalidParameter
from panel.jobs.models import Job

MiB = 1024 * 1024


def create(user, team, **host_config):
    return services.create(acting_user=user, team=team, config={"Image": "busybox:1.29"},
                           host_config=host_config)


@pytest.mark.parametrize("host_config, words", [
    ({"Memory": 4 * MiB}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 64 * MiB, "MemorySwap": 32 * MiB}, "Minimum memoryswap limit should be larger"),
    ({"MemorySwap": 32 * MiB}, "You should always set the Memory limit"),
    ({"NanoCpus": 500_000_000, "CpuQuota": 50000},
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"NanoCpus": 500_000_000, "CpuPeriod": 50000},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 10**12}, "Range of CPUs is from 0.01 to"),
    ({"CpusetCpus": "0-99"}, "Requested CPUs are not available"),
    ({"BlkioWeight": 5}, "Range of blkio weight is from 10 to 1000"),
    ({"Memory": "256m"}, "Memory must be an integer"),
    ({"OomKillDisable": "yes"}, "OomKillDisable must be a boolean"),
])
def test_bad_limits_are_refused_with_dockers_words(owner, team, image, host_config, words):
    with pytest.raises(InvalidParameter, match=words):
        create(owner, team, **host_config)
    assert not Container.objects.exists()


def test_limits_become_the_runtime_resources(owner, team, image):
    c = create(owner, team, Memory=256 * MiB, CpuShares=1024, NanoCpus=750_000_000,
               PidsLimit=20, CpusetCpus="0", MemoryReservation=64 * MiB, OomKillDisable=True,
               BlkioWeight=300)
    assert c.host_config["MemorySwap"] == 512 * MiB  # dockerd's default
    assert resources.runtime_fields(c) == {"resources": {
        "memory": 256 * MiB, "memory_swap": 512 * MiB, "memory_reservation": 64 * MiB,
        "oom_kill_disable": True, "cpu_shares": 1024, "cpu_period": 100000,
        "cpu_quota": 75000, "cpuset_cpus": "0", "pids_limit": 20, "blkio_weight": 300}}
    assert resources.runtime_fields(create(owner, team)) == {"resources": {}}
    assert resources.runtime_resources({"CpuShares": 1})["cpu_shares"] == 2  # clamped


def test_update_merges_audits_and_enqueues(owner, viewer, team, image, enqueued):
    c = create(owner, team, Memory=64 * MiB, PidsLimit=50)
    with pytest.raises(PermissionDenied):
        services.update(acting_user=viewer, container=c, resources={"Memory": 96 * MiB})
    job = services.update(acting_user=owner, container=c,
                          resources={"Memory": 96 * MiB, "CpuShares": 0, "PidsLimit": None,
                                     "RestartPolicy": {"Name": "on-failure",
                                                       "MaximumRetryCount": 3}})
    assert job.kind == "container.update"
    hc = job.payload["host_config"]
    assert (hc["Memory"], hc["MemorySwap"], hc["PidsLimit"]) == (96 * MiB, 128 * MiB, 50)
    assert "CpuShares" not in hc  # 0: unchanged
    assert hc["RestartPolicy"]["Name"] == "on-failure"
    row = AuditEvent.objects.get(action="container.update")
    assert row.before["Memory"] == 64 * MiB and row.after["Memory"] == 96 * MiB
    with pytest.raises(Conflict, match="Memory limit should be smaller than already set "
                                       "memoryswap limit"):
        services.update(acting_user=owner, container=c, resources={"Memory": 200 * MiB})
    with pytest.raises(InvalidParameter, match="Minimum memory limit allowed is 6MB"):
        services.update(acting_user=owner, container=c, resources={"Memory": MiB,
                                                                   "MemorySwap": 2 * MiB})
    quota = create(owner, team, CpuQuota=50000)
    with pytest.raises(Conflict, match="Nano CPUs cannot be updated as CPU Period"):
        services.update(acting_user=owner, container=quota, resources={"NanoCpus": 10**9})
    nano = create(owner, team, NanoCpus=10**9)
    with pytest.raises(Conflict, match="CPU Quota cannot be updated as NanoCPUs"):
        services.update(acting_user=owner, container=nano, resources={"CpuQuota": 20000})


def test_update_job_stores_values_on_a_stopped_container(owner, team, image, enqueued,
                                                         monkeypatch):
    from workers import tasks

    class NoRuntime:
        def list_ids(self):
            return []

    monkeypatch.setattr(tasks.node, "runtime", NoRuntime)
    c = create(owner, team, Memory=64 * MiB)
    job = services.update(acting_user=owner, container=c, resources={"NanoCpus": 5 * 10**8})
    tasks.update_container(Job.objects.get(pk=job.pk))
    c.refresh_from_db()
    assert c.host_config["NanoCpus"] == 5 * 10**8 and c.host_config["Memory"] == 64 * MiB
    assert ContainerEvent.objects.filter(container_id=c.id, action="update").exists()


def test_an_oom_kill_reaches_the_row_and_the_history(owner, team, image):
    from panel.containers import observed
    from workers.runtime.container import ContainerState

    c = create(owner, team, Memory=16 * MiB)
    import time

    now = time.time_ns() // 10**9 + 5
    started, finished = (time.strftime("%Y-%m-%dT%H:%M:%S.000000001Z", time.gmtime(t))
                         for t in (now, now + 1))
    observed.sync(c, ContainerState(id=c.id, status="exited", exit_code=137,
                                    started_at=started, finished_at=finished, oom_killed=True),
                  event={"status": "exited", "exit_code": "137", "started_at": started,
                         "finished_at": finished, "oom_killed": "1"})
    c.refresh_from_db()
    assert c.oom_killed and c.exit_code == 137
    actions = list(ContainerEvent.objects.filter(container_id=c.id)
                   .order_by("time_nano", "id").values_list("action", flat=True))
    assert actions == ["create", "start", "oom", "die"]
    from panel.dockerapi.shapes import container_state

    assert container_state(c)["OOMKilled"] is True
