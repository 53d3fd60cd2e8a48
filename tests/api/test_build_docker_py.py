"""docker-py's `client.images.build`: from a directory (with buildargs, labels, target,
nocache), from a gzipped tar as a custom context, and a failing RUN as docker-py's
BuildError with the build's log."""

import io

import docker
import pytest

from .build_helpers import build_containers, tar_context, write_context

DOCKERFILE = """\
FROM busybox:1.29 AS base
ARG FLAVOUR=plain
WORKDIR /app
COPY . .
RUN echo "$FLAVOUR" > flavour
FROM base AS extra
RUN echo extra > extra
"""


def _log_text(logs) -> str:
    return "".join(chunk.get("stream", "") for chunk in logs)


def test_build_from_a_directory(docker_client, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE, "note.txt": "note\n"})
    tag = build_tags("py")
    image, logs = docker_client.images.build(
        path=str(ctx), tag=tag, buildargs={"FLAVOUR": "spicy"}, labels={"via": "docker-py"},
        target="base", nocache=True, rm=True)
    text = _log_text(logs)
    assert "Step 1/6 : FROM busybox:1.29 AS base" in text  # the target stage and a LABEL
    assert f"Successfully built {image.short_id.removeprefix('sha256:')}" in text
    assert tag in image.tags
    assert image.labels == {"via": "docker-py"}
    assert image.attrs["Config"]["WorkingDir"] == "/app"
    out = docker_client.containers.run(tag, ["sh", "-c", "cat flavour note.txt; ls"],
                                       remove=True)
    assert out.decode().split() == ["spicy", "note", "Dockerfile", "flavour", "note.txt"]


def test_build_from_a_gzipped_custom_context(docker_client, build_tags):
    body = tar_context({"Dockerfile": "FROM busybox:1.29\nCOPY msg /msg\n", "msg": "hi\n"},
                       compress=True)
    tag = build_tags("gz")
    image, _ = docker_client.images.build(fileobj=io.BytesIO(body), custom_context=True,
                                          encoding="gzip", tag=tag)
    assert tag in image.tags
    out = docker_client.containers.run(tag, ["cat", "/msg"], remove=True)
    assert out == b"hi\n"


def test_failing_run_is_a_build_error(docker_client, live_stack, build_tags, tmp_path):
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": "FROM busybox:1.29\nRUN echo before-failure && false\n"})
    tag = build_tags("pyfail")
    with pytest.raises(docker.errors.BuildError) as caught:
        docker_client.images.build(path=str(ctx), tag=tag)
    assert caught.value.msg == ("The command '/bin/sh -c echo before-failure && false' "
                                "returned a non-zero code: 1")
    log = list(caught.value.build_log)
    assert "before-failure" in _log_text(log)
    assert log[-1]["errorDetail"] == {"code": 1, "message": caught.value.msg}
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)
    assert build_containers(live_stack.docker_cli) == []
