"""Failures: a failing RUN stops the build with Docker's message and the exit code, its
container removed; cancellation between steps and during a RUN (the container killed and
removed); the quota check before a layer is added; bad substitutions and a missing
Dockerfile."""

import os
import threading
import time

import pytest
from buildkit import build, host, write_context  # noqa: F401

from workers.runtime.build.builder import BuildCancelled, BuildError


def test_failing_run(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": "FROM busybox\nRUN echo before\nRUN echo oops >&2; exit 3\nRUN echo never\n"})
    with pytest.raises(BuildError) as err:
        build(store, host, ctx)
    assert str(err.value) == "The command '/bin/sh -c echo oops >&2; exit 3' returned a " \
                             "non-zero code: 3"
    assert err.value.code == 3
    assert "Step 3/4 : RUN echo oops >&2; exit 3\n" in host.text and "oops\n" in host.text
    assert "Step 4/4" not in host.text
    assert host.rt.list_ids() == []
    assert len(host.registered) == 1                       # only the first RUN's image
    assert not [n for n in os.listdir(store.tmp)]

    write_context(ctx, {"Dockerfile": 'FROM busybox\nRUN ["/no/such/binary"]\n'})
    with pytest.raises(BuildError) as err:
        build(store, host, ctx)
    assert 'exec: "/no/such/binary": stat /no/such/binary: no such file' in str(err.value)
    assert host.rt.list_ids() == []


def test_cancel_between_steps(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": "FROM busybox\nENV A=1\nENV B=2\nENV C=3\n"})
    host.cancel_when = lambda: "Step 3/4" in host.text
    with pytest.raises(BuildCancelled):
        build(store, host, ctx)
    assert "Step 3/4" in host.text and "Step 4/4" not in host.text
    assert len(host.registered) == 2


def test_cancel_during_run(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN sleep 30\n"})
    flag = threading.Event()
    host.cancel_when = flag.is_set
    threading.Timer(0.5, flag.set).start()
    started = time.monotonic()
    with pytest.raises(BuildCancelled):
        build(store, host, ctx)
    assert time.monotonic() - started < 10
    assert host.rt.list_ids() == [] and host.registered == []


def test_quota_checked_before_a_layer_is_added(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {
        "Dockerfile": "FROM busybox\nCOPY small /small\nRUN head -c 200000 /dev/zero > /big\n",
        "small": "x"})
    host.quota = 100000
    layers_before = len(os.listdir(store.layers))
    with pytest.raises(BuildError, match="storage quota of team t exceeded"):
        build(store, host, ctx)
    assert len(os.listdir(store.layers)) == layers_before + 1   # the COPY only


@pytest.mark.parametrize("dockerfile, message", [
    ("FROM busybox\nENV A=${B\n", 'failed to process "${B": syntax error: missing \'}\''),
    ("FROM busybox\nUSER ${U:?must be set}\n", "U: must be set"),
    ("FROM busybox\nSTOPSIGNAL SIGNOPE\n", "Invalid signal: SIGNOPE"),
    ("FROM busybox\nEXPOSE 80/bogus\n", "Invalid containerPort: 80/bogus"),
    ("FROM busybox\nHEALTHCHECK --interval=5x CMD true\n", 'invalid argument "5x"'),
    ("FROM busybox\nRUN true\nbogus x\n", "Dockerfile parse error line 3: unknown instruction"),
])
def test_step_errors(store, host, tmp_path, dockerfile, message):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"Dockerfile": dockerfile})
    with pytest.raises(BuildError) as err:
        build(store, host, ctx)
    assert message in str(err.value)


def test_missing_dockerfile(store, host, tmp_path):  # noqa: F811
    ctx = write_context(tmp_path / "ctx", {"other": "x"})
    with pytest.raises(BuildError, match="Cannot locate specified Dockerfile: Dockerfile"):
        build(store, host, ctx)
    write_context(ctx, {"sub/Build.df": "FROM busybox\nENV X=1\n"})
    assert build(store, host, ctx, dockerfile="sub/Build.df").image_id
