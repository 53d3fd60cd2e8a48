"""Cancelling a running build (builds.cancel): the RUN step's container is killed and
removed within about a second, the job fails as cancelled, nothing is tagged."""

import time

from panel.images import builds
from panel.images.models import ImageTag
from panel.jobs.models import Job

from .build_node import build_node  # noqa: F401


def test_cancel_during_run(build_node, owner):  # noqa: F811
    job = builds.build(owner, context_path=build_node.context(
        {"Dockerfile": "FROM busybox:1.29\nRUN echo started; sleep 30\nRUN echo never\n"}),
        tags=["cancelled:1"])
    seen = build_node.cancel_when_a_step_runs(lambda: builds.cancel(owner, job.id))
    job = build_node.run(job)
    ended = time.monotonic()
    seen["thread"].join()
    assert "at" in seen, "the RUN step never ran"
    assert ended - seen["at"] < 5
    assert job.state == Job.State.FAILED and "cancel" in job.error
    out = build_node.stream()
    assert "started\n" in out and "never" not in out.replace("RUN echo never", "")
    assert not ImageTag.objects.filter(repository="cancelled").exists()
    assert build_node.leftovers() == []
