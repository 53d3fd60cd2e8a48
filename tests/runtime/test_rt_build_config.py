"""The image config and history a build writes: USER and WORKDIR holding in the config and
at RUN; CMD/ENTRYPOINT/EXPOSE/LABEL/VOLUME/STOPSIGNAL/SHELL/HEALTHCHECK/ONBUILD/MAINTAINER;
metadata steps as empty_layer history entries with Docker's created_by; ONBUILD triggers
running in a child build; scratch images; --label; Docker's step output."""

import pytest
from buildkit import build, host, image_files, read, write_context  # noqa: F401

from workers.runtime.build.builder import BuildError

DOCKERFILE = """\
FROM busybox
MAINTAINER someone <a@b.c>
LABEL com.example.a="x y" b=c
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data", "/cache"]
STOPSIGNAL SIGQUIT
USER nobody
WORKDIR /srv
WORKDIR app
RUN whoami > /tmp/who; pwd > /tmp/where; id -u
SHELL ["/bin/sh", "-ec"]
RUN echo shell-form
HEALTHCHECK --interval=90s --timeout=3s --retries=3 CMD wget -q localhost || exit 1
ENTRYPOINT ["/bin/sh", "-c"]
CMD echo hi
ONBUILD RUN echo triggered > /tmp/trigger
ONBUILD ENV FROM_PARENT=yes
"""


def test_config_history_and_output(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": DOCKERFILE})
    result = build(store, host, ctx, labels={"built.by": "test"})
    config = store.get_config(result.image_id)
    c = config["config"]
    assert c["User"] == "nobody" and c["WorkingDir"] == "/srv/app"
    assert c["Labels"] == {"com.example.a": "x y", "b": "c", "built.by": "test"}
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert c["Volumes"] == {"/data": {}, "/cache": {}}
    assert c["StopSignal"] == "SIGQUIT" and c["Shell"] == ["/bin/sh", "-ec"]
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost || exit 1"],
                                "Interval": 90 * 10**9, "Timeout": 3 * 10**9, "Retries": 3}
    assert c["Entrypoint"] == ["/bin/sh", "-c"] and c["Cmd"] == ["/bin/sh", "-ec", "echo hi"]
    assert c["OnBuild"] == ["RUN echo triggered > /tmp/trigger", "ENV FROM_PARENT=yes"]
    assert config["author"] == "someone <a@b.c>"
    # USER and WORKDIR held at RUN (the run's output went into the image and the log)
    assert read(store, result.image_id, "tmp/who") == "nobody\n"
    assert read(store, result.image_id, "tmp/where") == "/srv/app\n"
    assert host.runs[0]["user"] == "nobody" and host.runs[0]["workdir"] == "/srv/app"
    assert host.runs[1]["argv"] == ["/bin/sh", "-ec", "echo shell-form"]
    fs = image_files(store, result.image_id)
    assert fs.lstat("srv/app") is not None and fs.lstat("srv/app").st_uid == 0

    history = config["history"][1:]
    created_by = [h["created_by"] for h in history]
    assert created_by[:6] == [
        "/bin/sh -c #(nop)  MAINTAINER someone <a@b.c>",
        '/bin/sh -c #(nop)  LABEL com.example.a=x y b=c',
        "/bin/sh -c #(nop)  EXPOSE 80 53/udp 8000-8001",
        "/bin/sh -c #(nop)  VOLUME [/data /cache]",
        "/bin/sh -c #(nop)  STOPSIGNAL SIGQUIT",
        "/bin/sh -c #(nop)  USER nobody"]
    assert created_by[6:10] == [
        "/bin/sh -c #(nop) WORKDIR /srv", "/bin/sh -c #(nop) WORKDIR /srv/app",
        "/bin/sh -c whoami > /tmp/who; pwd > /tmp/where; id -u",
        "/bin/sh -ec #(nop)  SHELL [/bin/sh -ec]"]
    assert created_by[10:] == [
        "/bin/sh -ec echo shell-form",
        '/bin/sh -ec #(nop)  HEALTHCHECK &{["CMD-SHELL" "wget -q localhost || exit 1"] '
        "\"1m30s\" \"3s\" \"0s\" '\\x03'}",
        '/bin/sh -ec #(nop)  ENTRYPOINT ["/bin/sh" "-c"]',
        '/bin/sh -ec #(nop)  CMD ["/bin/sh" "-ec" "echo hi"]',
        "/bin/sh -ec #(nop)  ONBUILD RUN echo triggered > /tmp/trigger",
        "/bin/sh -ec #(nop)  ONBUILD ENV FROM_PARENT=yes",
        "/bin/sh -ec #(nop)  LABEL built.by=test"]
    layered = {h["created_by"].split("#(nop) ")[-1].strip() for h in history
               if not h.get("empty_layer")}
    assert layered == {"WORKDIR /srv", "WORKDIR /srv/app",
                       "/bin/sh -c whoami > /tmp/who; pwd > /tmp/where; id -u"}
    assert len(config["rootfs"]["diff_ids"]) == 4     # busybox + 2 WORKDIR + 1 RUN
    assert len(host.registered) == 17 and len(result.images) == 17

    text = host.text
    step = text.index("Step 10/18 : RUN whoami")
    assert text[step:].startswith(
        "Step 10/18 : RUN whoami > /tmp/who; pwd > /tmp/where; id -u\n ---> Running in ")
    assert "\n65534\nRemoving intermediate container " in text[step:]
    assert text.endswith(f"Step 18/18 : LABEL \"built.by\"='test'\n"
                         f" ---> {result.image_id[:12]}\n")
    assert result.steps == 18 and result.cached_steps == 0


def test_onbuild_triggers_run_in_a_child_build(store, host, tmp_path):  # noqa: F811
    parent_ctx = write_context(tmp_path / "parent", {
        "Dockerfile": "FROM busybox\nONBUILD COPY marker /marker\n"
                      "ONBUILD RUN echo triggered > /trigger\n"})
    parent = build(store, host, parent_ctx)
    host.images["parent"] = parent.image_id
    child_ctx = write_context(tmp_path / "child", {"Dockerfile": "FROM parent\nCMD [\"sh\"]\n",
                                                   "marker": "m"})
    host.output.clear()
    child = build(store, host, child_ctx)
    assert read(store, child.image_id, "marker") == "m"
    assert read(store, child.image_id, "trigger") == "triggered\n"
    config = store.get_config(child.image_id)
    assert "OnBuild" not in config["config"] or not config["config"]["OnBuild"]
    assert host.text.startswith("Step 1/2 : FROM parent\n# Executing 2 build triggers\n")


def test_scratch_images(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM scratch\nCOPY f /f\n"
                                           "ENV A=1\nCMD [\"/f\"]\n", "f": "data"})
    result = build(store, host, ctx)
    config = store.get_config(result.image_id)
    assert len(config["rootfs"]["diff_ids"]) == 1
    assert image_files(store, result.image_id).listdir("") == ["f"]
    assert config["config"]["Env"] == [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1"]
    assert [bool(h.get("empty_layer")) for h in config["history"]] == [False, True, True]
    assert host.text.startswith("Step 1/4 : FROM scratch\n ---> \nStep 2/4 : COPY f /f\n")
    assert host.registered[0][1] == ""          # the first image's parent: none

    write_context(ctx, {"Dockerfile": "FROM scratch\n"})
    with pytest.raises(BuildError, match="No image was generated. Is your Dockerfile empty"):
        build(store, host, ctx)
