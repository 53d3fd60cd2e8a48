"""GET /containers/{id}/stats: Docker's stats, one object or a stream of one a second.

- ``stream`` (default true): one JSON object per line, every second (the first at once,
  its ``precpu_stats`` empty), until the client goes away or the container stops.
- ``stream=false``: one object whose ``precpu_stats`` come from a sample taken a second
  before, as Docker's (so the CLI's ``--no-stream`` has a CPU %); ``one-shot=true`` with it
  answers at once, without the earlier sample.

The numbers come from ``panel.containers.stats.stats_json`` (the node's files), read in a
worker thread so the event loop keeps serving while it reads.
"""

import asyncio
import json

from asgiref.sync import sync_to_async
from django.http import HttpResponse, StreamingHttpResponse

from panel.containers import services
from panel.containers.stats import ZERO_TIME, stats_json

from .common import BadRequest, endpoint, qbool

INTERVAL = 1.0  # seconds between two samples, as dockerd's stats collector


def _line(stats: dict) -> bytes:
    return json.dumps(stats, separators=(",", ":")).encode() + b"\n"


async def _sample(container, previous=None) -> dict:
    return await asyncio.to_thread(stats_json, container, previous)


async def _stream(container):
    loop = asyncio.get_running_loop()
    previous = None
    while True:
        taken = loop.time()
        stats = await _sample(container, previous)
        yield _line(stats)
        if stats["read"] == ZERO_TIME:  # not running (any more): nothing will come
            return
        previous = stats
        await asyncio.sleep(max(0.0, taken + INTERVAL - loop.time()))


async def _stats(request, ref):
    container = await sync_to_async(services.resolve)(request.user, ref)
    stream = qbool(request, "stream", default=True)
    one_shot = qbool(request, "one-shot")
    if stream and one_shot:
        raise BadRequest("cannot have stream=true and one-shot=true")
    if stream:
        return StreamingHttpResponse(_stream(container), content_type="application/json")
    stats = await _sample(container)
    if not one_shot and stats["read"] != ZERO_TIME:
        await asyncio.sleep(INTERVAL)
        stats = await _sample(container, stats)
    return HttpResponse(_line(stats), content_type="application/json")


container_stats = endpoint(GET=_stats)
