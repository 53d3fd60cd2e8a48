"""A whole build through the image.build job on a real node: two stages, COPY --from, ARG
(before and after FROM, --build-arg) and ENV substituted, .dockerignore applied, USER and
WORKDIR in effect for RUN and in the image's config; intermediate images recorded; the
tags set at the end; nothing left behind (containers, rows, network, context)."""

import re

from panel.images.models import Image, ImageTag
from panel.jobs.models import Job

from .build_node import build_node  # noqa: F401

DOCKERFILE = """\
ARG BASE=busybox:1.29
FROM ${BASE} AS builder
ARG GREETING=hello
ENV TARGET=/out
WORKDIR /src
COPY src/ ./
RUN mkdir -p $TARGET && cat *.txt > $TARGET/all.txt && echo "$GREETING" > ${TARGET}/greeting
FROM busybox:1.29
COPY --from=builder /out/ /app/
USER 1000
WORKDIR /app
RUN id -u > /tmp/uid && pwd > /tmp/pwd && ls -a /app > /tmp/listing
CMD ["cat", "/app/all.txt"]
"""

FILES = {
    "Dockerfile": DOCKERFILE,
    ".dockerignore": "src/secret.txt\n**/*.log\n",
    "src/a.txt": "alpha\n",
    "src/b.txt": "beta\n",
    "src/secret.txt": "do not ship\n",
    "src/debug.log": "noise\n",
}


def test_multistage_build(build_node, owner, team):  # noqa: F811
    job = build_node.build(owner, FILES, tags=["app:1", "app:latest"],
                           build_args={"GREETING": "hi there"})
    out = build_node.stream()
    assert job.state == Job.State.SUCCEEDED, (job.error, out)
    image = Image.objects.get(pk=job.result["id"][7:])
    assert job.result["tags"] == ["app:1", "app:latest"]
    assert {str(t) for t in ImageTag.objects.filter(image=image)} == {"app:1", "app:latest"}
    assert image.team == team

    assert re.search(r"^Step \d+/13 : COPY --from=builder /out/ /app/$", out, re.M)
    assert f"Successfully built {image.short_id}\n" in out
    assert out.endswith("Successfully tagged app:1\nSuccessfully tagged app:latest\n")
    assert {"aux": {"ID": image.docker_id}} in build_node.progress

    assert build_node.file(image, "/app/all.txt") == b"alpha\nbeta\n"  # no secret.txt
    assert build_node.file(image, "/app/greeting") == b"hi there\n"
    assert build_node.file(image, "/tmp/uid") == b"1000\n"
    assert build_node.file(image, "/tmp/pwd") == b"/app\n"
    assert build_node.file(image, "/tmp/listing").split() == [b".", b"..", b"all.txt",
                                                              b"greeting"]
    config = image.run_config
    assert (config["User"], config["WorkingDir"], config["Cmd"]) == \
        ("1000", "/app", ["cat", "/app/all.txt"])
    assert "TARGET=/out" not in config.get("Env", [])  # the builder stage's ENV stays there

    # Every step image is recorded (docker images -a), each the child of the one before.
    chain, current = [], image
    while current.parent:
        chain.append(current)
        current = Image.objects.get(pk=current.parent)
    assert current == build_node.busybox and len(chain) == 5  # COPY, USER, WORKDIR, RUN, CMD
    assert Job.objects.count() == 1  # the RUN steps ran inside the build job
    assert build_node.leftovers() == []
