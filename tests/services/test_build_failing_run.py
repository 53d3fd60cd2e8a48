"""A failing RUN: the job fails with Docker's words (the step's command and exit code), the
result carries the code for the API, and neither a container nor a tagged image is left."""

from panel.images.models import ImageTag
from panel.jobs.models import Job

from .build_node import build_node  # noqa: F401


def test_failing_run_reports_step_command_and_code(build_node, owner):  # noqa: F811
    dockerfile = "FROM busybox:1.29\nRUN echo ok > /ok\nRUN echo about to fail && exit 3\n"
    job = build_node.build(owner, {"Dockerfile": dockerfile}, tags=["broken:1"])
    out = build_node.stream()
    assert job.state == Job.State.FAILED
    assert job.error == "The command '/bin/sh -c echo about to fail && exit 3' returned a " \
                        "non-zero code: 3"
    assert job.result == {"status": 400, "code": 3}
    assert "Step 3/3 : RUN echo about to fail && exit 3" in out
    assert "about to fail\n" in out and "Successfully" not in out
    assert not ImageTag.objects.filter(repository="broken").exists()
    assert build_node.leftovers() == []


def test_a_bad_dockerfile_fails_cleanly(build_node, owner):  # noqa: F811
    job = build_node.build(owner, {"Dockerfile": "FROM busybox:1.29\nFROOM x\n"}, tags=["b:1"])
    assert job.state == Job.State.FAILED and job.result["status"] == 400
    assert "FROOM" in job.error.upper()
    assert build_node.leftovers() == []
