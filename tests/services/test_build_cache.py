"""The build cache through the image.build job: an unchanged rebuild reuses every step (same
image, no container run), a changed file rebuilds from its COPY on, --no-cache runs all."""

from panel.jobs.models import Job

from .build_node import build_node  # noqa: F401

DOCKERFILE = """\
FROM busybox:1.29
ENV MODE=cached
RUN echo first > /first
COPY data.txt /data.txt
RUN cat /data.txt > /copied && date +%s%N > /stamp
"""


def _build(build_node, owner, data, **options):  # noqa: F811
    job = build_node.build(owner, {"Dockerfile": DOCKERFILE, "data.txt": data}, tags=["c:1"],
                           **options)
    assert job.state == Job.State.SUCCEEDED, (job.error, build_node.stream())
    return job.result["id"], build_node.stream()


def test_cache_hits_and_misses(build_node, owner):  # noqa: F811
    first, out = _build(build_node, owner, "v1\n")
    assert "Using cache" not in out and out.count("Running in") == 2

    again, out = _build(build_node, owner, "v1\n")
    assert again == first
    assert out.count(" ---> Using cache\n") == 4 and "Running in" not in out

    changed, out = _build(build_node, owner, "v2\n")
    assert changed != first
    assert out.count(" ---> Using cache\n") == 2  # ENV, the first RUN
    assert out.count("Running in") == 1  # the RUN after the changed COPY
    from panel.images.models import Image

    assert build_node.file(Image.objects.get(pk=changed[7:]), "/copied") == b"v2\n"

    fresh, out = _build(build_node, owner, "v2\n", no_cache=True)
    assert "Using cache" not in out and out.count("Running in") == 2
    assert fresh != changed  # the stamp differs
    assert build_node.leftovers() == []
