"""Multi-stage builds: COPY --from a stage name, a stage index and an image; ARG before FROM
used in FROM and re-declared in a stage; --build-arg overriding defaults; ENV substitution
(ENV wins over ARG; a new ENV is seen by the next instruction, not its own); --target; the
result run in a real container."""

import pytest
from buildkit import build, host, read, write_context  # noqa: F401
from layerkit import run_image

from workers.runtime.archive import Loaded
from workers.runtime.build.builder import BuildError

DOCKERFILE = """\
ARG BASE=busybox
ARG GREETING=hello
FROM ${BASE} AS builder
ARG GREETING
ARG WHO=world
ENV OUT=/out
RUN mkdir -p $OUT && echo "$GREETING $WHO" > $OUT/msg && echo built
FROM $BASE:latest AS second
RUN echo two > /two
FROM scratch
COPY --from=builder /out/msg /msg
COPY --from=1 /two /from-index
COPY --from=busybox /bin/busybox /bin/busybox
ENV DIR=/etc/app A=1
ENV A=2 B=${A}
WORKDIR $DIR
COPY --from=builder ["/out/msg", "copied"]
CMD ["/bin/busybox", "cat", "/msg"]
"""


def test_multistage_with_args(store, host, tmp_path, runtime_factory, read_log):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE})
    result = build(store, host, ctx, build_args={"WHO": "dockyard"})
    assert read(store, result.image_id, "msg") == "hello dockyard\n"
    assert read(store, result.image_id, "from-index") == "two\n"
    assert read(store, result.image_id, "etc/app/copied") == "hello dockyard\n"
    config = store.get_config(result.image_id)
    env = config["config"]["Env"]
    assert "A=2" in env and "B=1" in env and "DIR=/etc/app" in env  # B saw the old A
    assert config["config"]["WorkingDir"] == "/etc/app"
    assert len(config["rootfs"]["diff_ids"]) == 5          # 4 COPY + WORKDIR's new dir
    # the RUN saw the args as its environment; the history shows them like Docker's
    run = host.runs[0]
    assert "GREETING=hello" in run["env"] and "WHO=dockyard" in run["env"]
    assert "OUT=/out" in run["env"]
    builder_image = store.get_config(host.registered[3][0])
    assert builder_image["history"][-1]["created_by"] == (
        '|2 GREETING=hello WHO=dockyard /bin/sh -c mkdir -p $OUT && echo "$GREETING $WHO" > '
        '$OUT/msg && echo built')
    text = host.text
    assert text.startswith("Step 1/18 : ARG BASE=busybox\nStep 2/18 : ARG GREETING=hello\n"
                           "Step 3/18 : FROM ${BASE} AS builder\n")
    assert "Step 18/18 : CMD [\"/bin/busybox\", \"cat\", \"/msg\"]\n" in text
    assert "built\n" in text
    loaded = Loaded(result.image_id, config, config["rootfs"]["diff_ids"], 0)
    out = run_image(runtime_factory, read_log, store, loaded,
                    ["/bin/busybox", "sh", "-c", "cat /msg; pwd"])
    assert out == "hello dockyard\n/\n"


def test_build_arg_overrides_the_global_default_and_target(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE})
    host.images["other"] = host.images["busybox"]
    host.images["other:latest"] = host.images["busybox"]
    result = build(store, host, ctx, build_args={"BASE": "other", "GREETING": "hi",
                                                 "UNUSED": "x"}, target="second")
    assert read(store, result.image_id, "two") == "two\n"
    assert "Step 1/9 : ARG BASE=busybox" in host.text
    assert host.text.count("Step ") == 9 and "Step 9/9 : RUN echo two > /two" in host.text
    assert "[Warning] One or more build-args [UNUSED] were not consumed\n" in host.text
    first_stage = store.get_config(host.registered[3][0])
    assert first_stage["history"][-1]["created_by"].startswith("|2 GREETING=hi WHO=world ")


def test_unknown_target_and_stage_errors(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE})
    with pytest.raises(BuildError, match="failed to reach build target nope in Dockerfile"):
        build(store, host, ctx, target="nope")
    write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nCOPY --from=0 /a /b\n"})
    with pytest.raises(BuildError, match="refers to current build stage"):
        build(store, host, ctx)
    write_context(tmp_path / "ctx", {"Dockerfile": "FROM nosuchimage\n"})
    with pytest.raises(BuildError, match="pull access denied for nosuchimage"):
        build(store, host, ctx)
    write_context(tmp_path / "ctx", {"Dockerfile": "ARG B\nFROM $B\n"})
    with pytest.raises(BuildError, match=r"base name \(\$B\) should not be blank"):
        build(store, host, ctx)


def test_proxy_args_need_no_arg_line_and_stay_out_of_history(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN echo $http_proxy\n"})
    result = build(store, host, ctx, build_args={"http_proxy": "http://proxy:3128"})
    assert "http_proxy=http://proxy:3128" in host.runs[0]["env"]
    assert "\nhttp://proxy:3128\n" in host.text and "[Warning]" not in host.text
    history = store.get_config(result.image_id)["history"]
    assert history[-1]["created_by"] == "|0 /bin/sh -c echo $http_proxy"   # as Docker
