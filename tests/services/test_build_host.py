"""The worker's BuildHost on a real node: a RUN step is a real Dockyard container on the
default bridge, its output streamed, its changes a layer tar, and the container (runtime,
netns, veth, row) gone afterwards, also when the step fails or the build is cancelled; FROM
images resolved through the images services or pulled inline; step images recorded."""

import os
import tarfile
import time
import uuid

import pytest
from registry import file_layer

from panel.audit.models import AuditEvent
from panel.images.models import Image
from panel.jobs import services as jobs
from panel.jobs.models import Job
from panel.nodes.services import local_node
from workers.build_tasks import BUILD_LABEL, BuildHost
from workers.runtime.build.builder import BuildCancelled, BuildError
from workers.runtime.registry import RegistryError

from .build_node import build_node  # noqa: F401


@pytest.fixture
def host(build_node, owner, team):  # noqa: F811
    job = jobs.enqueue("image.build", target_type="image", target_id="", actor=owner,
                       team=team, node=local_node(), payload={"source": "panel"})
    return BuildHost(job, build_node.store)


def _members(tar_path):
    with tarfile.open(tar_path) as tf:
        return {m.name: (tf.extractfile(m).read() if m.isfile() else None)
                for m in tf.getmembers()}


def test_run_streams_output_and_returns_the_changes(build_node, host):  # noqa: F811
    outcome = host.run(build_node.busybox.id,
                       ["/bin/sh", "-c", "echo hello from $GREETING; id -u; pwd; "
                        "ip -4 -o addr show eth0; echo made > /tmp/made"],
                       env=["PATH=/bin", "GREETING=build"], user="1000", workdir="/tmp",
                       shell=["/bin/sh", "-c"])
    assert outcome.exit_code == 0
    files = _members(outcome.layer_tar)
    assert files["tmp/made"] == b"made\n"
    out = build_node.stream()
    assert " ---> Running in " in out and "Removing intermediate container" in out
    assert "hello from build\n1000\n/tmp\n" in out, out
    assert " inet 10.215." in out  # on the default bridge, with an address of its subnet
    assert build_node.leftovers() == []
    # It was a real Dockyard container, labelled with the build, of the build's team.
    created = AuditEvent.objects.get(action="container.create")
    assert created.team == host.job.team


def test_failing_step_leaves_nothing(build_node, host):  # noqa: F811
    outcome = host.run(build_node.busybox.id, ["/bin/sh", "-c", "echo oops >&2; exit 3"],
                       env=["PATH=/bin"], user="", workdir="")
    assert outcome.exit_code == 3 and outcome.layer_tar is None
    assert "oops\n" in build_node.stream()
    assert "Removing intermediate container" not in build_node.stream()
    assert build_node.leftovers() == []


def test_a_missing_command_is_exit_127(build_node, host):  # noqa: F811
    outcome = host.run(build_node.busybox.id, ["/no/such/tool"], env=["PATH=/bin"], user="",
                       workdir="")
    assert outcome.exit_code == 127
    assert build_node.leftovers() == []


def test_cancel_kills_and_removes_the_step_container(build_node, host):  # noqa: F811
    seen = build_node.cancel_when_a_step_runs(lambda: jobs.request_cancel(host.job))
    started = time.monotonic()
    with pytest.raises(BuildCancelled):
        host.run(build_node.busybox.id, ["sleep", "30"], env=["PATH=/bin"], user="",
                 workdir="")
    seen["thread"].join()
    assert seen.get("container"), "the step container never ran"
    assert time.monotonic() - started < 10
    assert build_node.leftovers() == []


def test_base_image_is_resolved_or_pulled_inline(build_node, host, registry):  # noqa: F811
    assert host.base_image("busybox:1.29") == build_node.busybox.id
    assert build_node.progress == []
    name = f"{registry.host}/build/base-{uuid.uuid4().hex[:8]}"
    pushed = registry.push_image(f"{name}:1".split("/", 1)[1], [file_layer("etc/base", b"b\n")],
                                 {"config": {"Cmd": ["sh"]}})
    image_id = host.base_image(f"{name}:1")
    assert image_id == pushed["config_digest"][7:]
    assert Image.objects.get(pk=image_id).team == host.job.team
    assert build_node.progress[-1] == {"status": f"Status: Downloaded newer image for {name}:1"}
    assert Job.objects.filter(kind="image.pull").count() == 0  # inline, not another job
    with pytest.raises(RegistryError) as missing:
        host.base_image(f"{registry.host}/build/missing-{uuid.uuid4().hex[:8]}:1")
    assert missing.value.http_status == 404


def test_register_records_a_step_image_with_its_parent(build_node, host):  # noqa: F811
    parent = build_node.busybox
    config = {**parent.config, "created": "2026-01-01T00:00:00Z"}
    config["config"] = {**parent.run_config, "Env": ["PATH=/bin", "STEP=1"]}
    image_id = build_node.store.put_config(config)
    host.register(image_id, config, parent.id)
    image = Image.objects.get(pk=image_id)
    assert image.parent == parent.id and image.team == host.job.team
    assert image.layers == parent.layers and image.size > 0


def test_check_quota_is_a_403_build_error(build_node, host, team):  # noqa: F811
    host.check_quota(10**9)  # no quota: anything goes
    team.storage_quota = 1000
    team.save()
    with pytest.raises(BuildError, match="storage quota of team blue exceeded") as caught:
        host.check_quota(1001)
    assert caught.value.http_status == 403
    host.check_quota(1000)


def test_a_redelivered_build_removes_what_its_first_attempt_left(build_node, owner, team):  # noqa: F811
    from panel.containers import services as containers
    from panel.images import builds
    from workers import tasks

    job = builds.build(owner, context_path=build_node.context(
        {"Dockerfile": "FROM busybox:1.29\nRUN echo again\n"}), tags=["again:1"])
    left = containers.create(acting_user=owner, team=team,
                             config={"Image": "busybox:1.29", "Cmd": ["sleep", "30"],
                                     "Labels": {BUILD_LABEL: str(job.id)}})
    tasks.start_on_node(left)
    os.makedirs(os.path.join(build_node.root, "builds", str(job.id), "context"))
    job = build_node.run(job)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert build_node.leftovers() == []
