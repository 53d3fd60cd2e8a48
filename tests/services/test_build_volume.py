"""A RUN after VOLUME: as in Docker, what the step writes under the volume is discarded
(the step container mounts an anonymous volume there) and the volume goes with the
container; the rest of the step's changes are kept."""

import os

from panel.images.models import Image
from panel.jobs.models import Job
from panel.volumes.models import Volume

from .build_node import build_node  # noqa: F401


def test_run_after_volume_discards_the_volumes_changes(build_node, owner):  # noqa: F811
    dockerfile = ("FROM busybox:1.29\nRUN mkdir /data && echo before > /data/seed\n"
                  "VOLUME /data\nRUN echo lost > /data/f && cat /data/seed && echo kept > /kept\n")
    job = build_node.build(owner, {"Dockerfile": dockerfile}, tags=["vol:1"])
    assert job.state == Job.State.SUCCEEDED, (job.error, build_node.stream())
    assert "before\n" in build_node.stream()  # the volume was filled from the image
    image = Image.objects.get(pk=job.result["id"][7:])
    assert build_node.file(image, "/kept") == b"kept\n"
    assert build_node.file(image, "/data/f") is None
    assert build_node.file(image, "/data/seed") == b"before\n"
    assert not Volume.objects.exists()
    volumes = os.path.join(build_node.root, "volumes")
    assert not os.path.isdir(volumes) or os.listdir(volumes) == []
    assert build_node.leftovers() == []
