"""POST /build's stream (panel.dockerapi.build), in process: the query as the service gets
it, the build's lines in order, Docker's status before the first line and errorDetail (with
the RUN's exit code) after it, quiet mode, and a client that goes away cancelling the build.
The build service is played by the test."""

import asyncio
import base64
import gzip
import io
import json
import tarfile
import time
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from panel.dockerapi import build as build_api
from panel.errors import NotFound
from panel.images import builds, spool
from panel.jobs.models import Job
from panel.nodes.services import local_node

pytestmark = pytest.mark.django_db(transaction=True)

RUN_FAILED = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def user():
    return get_user_model().objects.create_superuser("builder", password="x")


class FakeBuilds:
    """builds.build/cancel stand-ins: the job is made with the follower's id, sends `events`,
    then ends in `state` (or stays running with `finish=False`)."""

    def __init__(self, monkeypatch, events, *, state=Job.State.SUCCEEDED, error="",
                 result=None, finish=True, delay=0.0):
        self.events, self.state, self.error, self.delay = events, state, error, delay
        self.result, self.finish = result or {}, finish
        self.calls, self.cancelled, self.context = [], [], b""
        monkeypatch.setattr(builds, "build", self.build, raising=False)
        monkeypatch.setattr(builds, "cancel", self.cancel, raising=False)

    def build(self, user, *, job_id, source, context_path="", **options):
        assert source == "api"
        self.calls.append(options)
        time.sleep(self.delay)  # a slow enqueue
        if context_path:
            with open(context_path, "rb") as f:
                self.context = f.read()
            spool.discard(context_path)
        layer = get_channel_layer()
        job = Job.objects.create(id=job_id, kind="image.build", target_type="image",
                                 target_id="", node=local_node(), state=Job.State.RUNNING)
        for event in self.events:
            async_to_sync(layer.group_send)(f"job.{job_id}", {
                "type": "job.progress", "id": str(job_id), "event": event})
        if self.finish:
            Job.objects.filter(pk=job.pk).update(state=self.state, error=self.error,
                                                 result=self.result)
            async_to_sync(layer.group_send)(f"job.{job_id}", {
                "type": "job.state", "id": str(job_id), "state": self.state})
        return job

    def cancel(self, user, job_id, *, source="panel"):
        if not Job.objects.filter(pk=job_id).exists():
            raise NotFound(f"No such build: {job_id}")  # as the service
        self.cancelled.append(str(job_id))


def context_tar(dockerfile: str = "FROM busybox:1.29\n") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tf.addfile(info, io.BytesIO(dockerfile.encode()))
    return buf.getvalue()


def request(user, query: str = "", body: bytes | None = None, headers=None):
    req = RequestFactory().post(f"/build{query}", data=context_tar() if body is None else body,
                                content_type="application/x-tar", headers=headers or {})
    req.user = user
    return req


def call(req):
    async def go():
        response = await build_api._build(req)
        if not response.streaming:
            return response.status_code, json.loads(response.content)
        body = b"".join([chunk async for chunk in response.streaming_content])
        return response.status_code, [json.loads(line) for line in body.split(b"\r\n") if line]

    return asyncio.run(go())


STEPS = [{"stream": "Step 1/2 : FROM busybox:1.29\n"}, {"stream": " ---> 0123456789ab\n"},
         {"stream": "Step 2/2 : RUN true\n"}, {"aux": {"ID": "sha256:" + "b" * 64}},
         {"stream": "Successfully built bbbbbbbbbbbb\n"},
         {"stream": "Successfully tagged a:1\n"}]


def test_query_reaches_the_service_and_lines_come_in_order(monkeypatch, user):
    fake = FakeBuilds(monkeypatch, STEPS, result={"id": "sha256:" + "b" * 64, "tags": ["a:1"]})
    query = ("?t=a:1&t=b&dockerfile=sub/Dockerfile.dev&target=base&nocache=1&pull=1&rm=1"
             "&buildargs=%7B%22V%22%3A%222%22%2C%22UNSET%22%3Anull%7D"
             "&labels=%7B%22team%22%3A%22x%22%7D&networkmode=default&memory=0&version=1")
    body = gzip.compress(context_tar())
    status, lines = call(request(user, query, body=body))
    assert status == 200
    assert lines == STEPS
    assert fake.calls == [{"remote": "", "tags": ["a:1", "b"], "dockerfile": "sub/Dockerfile.dev",
                           "build_args": {"V": "2", "UNSET": None}, "target": "base",
                           "no_cache": True, "pull": True, "labels": {"team": "x"},
                           "registry_auth": None}]
    assert fake.context == body  # spooled as sent (gzip): the job unpacks it


def test_defaults(monkeypatch, user):
    fake = FakeBuilds(monkeypatch, STEPS)
    call(request(user))
    assert fake.calls == [{"remote": "", "tags": [], "dockerfile": "Dockerfile",
                           "build_args": None, "target": "", "no_cache": False, "pull": False,
                           "labels": None, "registry_auth": None}]


def test_failing_run_ends_with_error_detail_and_exit_code(monkeypatch, user):
    FakeBuilds(monkeypatch, STEPS[:3], state=Job.State.FAILED, error=RUN_FAILED,
               result={"status": 400, "code": 3})
    status, lines = call(request(user, "?t=a"))
    assert status == 200
    assert lines == [*STEPS[:3], {"errorDetail": {"code": 3, "message": RUN_FAILED},
                                  "error": RUN_FAILED}]


def test_error_without_exit_code_has_no_code(monkeypatch, user):
    FakeBuilds(monkeypatch, STEPS[:1], state=Job.State.FAILED, error="COPY failed: no source",
               result={"status": 400})
    _, lines = call(request(user))
    assert lines[-1] == {"errorDetail": {"message": "COPY failed: no source"},
                         "error": "COPY failed: no source"}


def test_failure_before_any_line_is_the_status(monkeypatch, user):
    FakeBuilds(monkeypatch, [], state=Job.State.FAILED,
               error="dockerfile parse error line 1: unknown instruction: FORM",
               result={"status": 400})
    assert call(request(user)) == (
        400, {"message": "dockerfile parse error line 1: unknown instruction: FORM"})


def test_quiet_sends_only_the_id(monkeypatch, user):
    image_id = "sha256:" + "c" * 64
    FakeBuilds(monkeypatch, STEPS, result={"id": image_id, "tags": []})
    status, lines = call(request(user, "?q=1"))
    assert status == 200
    assert lines == [{"aux": {"ID": image_id}}, {"stream": f"{image_id}\n"}]


def test_quiet_failure_sends_the_held_output_then_the_error(monkeypatch, user):
    FakeBuilds(monkeypatch, STEPS[:3], state=Job.State.FAILED, error=RUN_FAILED,
               result={"status": 400, "code": 3})
    status, lines = call(request(user, "?q=1"))
    assert status == 200
    assert lines == [*STEPS[:3], {"errorDetail": {"code": 3, "message": RUN_FAILED},
                                  "error": RUN_FAILED}]


@pytest.mark.parametrize("query, message", [
    ("?buildargs=%7Bx", "invalid buildargs"),
    ("?labels=nope", "invalid labels"),
    ("?version=2", "BuildKit is not supported"),
    ("?networkmode=host", "network mode 'host' is not supported"),
    ("?remote=https://example.com/context.tar.gz", "only git repositories"),
])
def test_bad_query_is_a_400(monkeypatch, user, query, message):
    from panel.dockerapi.common import BadRequest

    fake = FakeBuilds(monkeypatch, STEPS)
    with pytest.raises(BadRequest, match=message):
        call(request(user, query))
    assert fake.calls == []


def test_git_remote_needs_no_body(monkeypatch, user):
    fake = FakeBuilds(monkeypatch, STEPS)
    remote = "https://git.example.com/app.git#main:docker"
    status, _ = call(request(user, f"?remote={quote(remote, safe='')}", body=b""))
    assert status == 200
    assert fake.calls[0]["remote"] == remote
    assert fake.context == b""


def test_registry_config_header_reaches_the_service(monkeypatch, user):
    config = {"localhost:5000": {"username": "u", "password": "p"}}
    raw = base64.urlsafe_b64encode(json.dumps(config).encode()).decode().rstrip("=")
    fake = FakeBuilds(monkeypatch, STEPS)
    call(request(user, headers={"X-Registry-Config": raw}))
    call(request(user, headers={"X-Registry-Config": "%%%"}))  # unreadable: anonymous
    assert [c["registry_auth"] for c in fake.calls] == [config, None]


def test_client_going_away_cancels_the_build(monkeypatch, user):
    fake = FakeBuilds(monkeypatch, STEPS[:3], finish=False)

    async def go():
        response = await build_api._build(request(user))
        stream = response.streaming_content
        lines = [await anext(stream) for _ in STEPS[:3]]
        # what Django's ASGI handler does when the client disconnects
        reader = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.1)
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        return lines

    assert [json.loads(line) for line in asyncio.run(go())] == STEPS[:3]
    job = Job.objects.get(kind="image.build")
    assert fake.cancelled == [str(job.id)]


def _client_leaves_after(user, seconds: float) -> None:
    """The view runs for `seconds`, then its client goes away (the view is cancelled)."""
    async def go():
        view = asyncio.ensure_future(build_api._build(request(user)))
        await asyncio.sleep(seconds)
        view.cancel()
        with pytest.raises(asyncio.CancelledError):
            await view

    asyncio.run(go())


def test_client_going_away_before_the_first_line_cancels_the_build(monkeypatch, user):
    fake = FakeBuilds(monkeypatch, [], finish=False)
    _client_leaves_after(user, 0.3)
    job = Job.objects.get(kind="image.build")
    assert fake.cancelled == [str(job.id)]


def test_client_going_away_while_the_build_is_enqueued_cancels_it(monkeypatch, user):
    fake = FakeBuilds(monkeypatch, [], finish=False, delay=0.5)
    _client_leaves_after(user, 0.2)  # inside builds.build
    job = Job.objects.get(kind="image.build")
    assert fake.cancelled == [str(job.id)]


def test_finished_build_is_not_cancelled(monkeypatch, user):
    fake = FakeBuilds(monkeypatch, STEPS, result={"id": "sha256:" + "b" * 64})
    call(request(user))
    assert fake.cancelled == []
