"""The job-following JSON stream of pull/push/load (panel.dockerapi.images.stream_job), in
process: progress lines in order, Docker's status before the first line, errorDetail after
it, the lines the API adds from the job's result. The job here is played by the test."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from panel.dockerapi.images import stream_job
from panel.jobs.models import Job
from panel.nodes.services import local_node


@pytest.fixture(autouse=True)
def in_memory_channel_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def fake_job(events, *, state=Job.State.SUCCEEDED, error="", result=None):
    """A service stand-in: makes the job with the follower's id, sends its progress and its
    terminal state to `job.<id>` (on the caller's event loop, as async_to_sync does)."""

    def start(job_id):
        layer = get_channel_layer()
        job = Job.objects.create(id=job_id, kind="image.pull", target_type="image",
                                 target_id="x", node=local_node())
        for event in events:
            async_to_sync(layer.group_send)(f"job.{job_id}", {
                "type": "job.progress", "id": str(job_id), "event": event})
        Job.objects.filter(pk=job.pk).update(state=state, error=error, result=result or {})
        async_to_sync(layer.group_send)(f"job.{job_id}", {
            "type": "job.state", "id": str(job_id), "state": state})
        return job

    return start


def run(*starts, **kwargs):
    async def go():
        response = await stream_job(*starts, **kwargs)
        if not response.streaming:
            return response.status_code, json.loads(response.content)
        body = b"".join([chunk async for chunk in response.streaming_content])
        return response.status_code, [json.loads(line) for line in body.split(b"\r\n") if line]

    return asyncio.run(go())


pytestmark = pytest.mark.django_db(transaction=True)


def test_progress_lines_in_order_then_finish_lines():
    events = [{"status": "Pulling from x"}, {"status": "Downloading", "id": "abc"},
              {"status": "Status: Downloaded newer image for x:latest"}]
    status, lines = run(fake_job(events), finish=lambda job: [{"status": "done"}])
    assert status == 200
    assert lines == [*events, {"status": "done"}]


def test_failure_before_any_line_is_the_status():
    status, body = run(fake_job([], state=Job.State.FAILED, result={"status": 404},
                                error="pull access denied for x, repository does not exist"))
    assert status == 404
    assert body == {"message": "pull access denied for x, repository does not exist"}
    status, body = run(fake_job([], state=Job.State.FAILED, error="boom"))
    assert (status, body) == (500, {"message": "boom"})


def test_failure_after_a_line_is_an_error_detail():
    status, lines = run(fake_job([{"status": "Pulling from x"}], state=Job.State.FAILED,
                                 error="digest mismatch"),
                        finish=lambda job: [{"status": "not sent"}])
    assert status == 200
    assert lines == [{"status": "Pulling from x"},
                     {"errorDetail": {"message": "digest mismatch"}, "error": "digest mismatch"}]


def test_quiet_drops_progress_but_keeps_result_lines():
    status, lines = run(fake_job([{"status": "Loading layer"}], result={"id": "f" * 64}),
                        finish=lambda job: [{"stream": f"Loaded image ID: {job.result['id']}"}],
                        progress=False)
    assert (status, lines) == (200, [{"stream": "Loaded image ID: " + "f" * 64}])


def test_jobs_in_turn_and_a_later_failure_ends_the_stream():
    first = fake_job([{"status": "one"}], result={"tag": "a"})
    second = fake_job([{"status": "two"}], state=Job.State.FAILED, error="denied")
    third = fake_job([{"status": "never"}])
    status, lines = run(first, second, third,
                        finish=lambda job: [{"aux": {"Tag": job.result.get("tag")}}])
    assert status == 200
    assert lines == [{"status": "one"}, {"aux": {"Tag": "a"}}, {"status": "two"},
                     {"errorDetail": {"message": "denied"}, "error": "denied"}]
