"""WebSockets of the panel: team-wide state changes, one container's state and output, and one
job's state and progress."""

import asyncio
import codecs
import contextlib
import logging

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from .auditing import AuditedConnect

log = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def output_channel(container_id: str) -> str:
    return f"dockyard:output:{container_id}"


class _StateForwarder(AsyncJsonWebsocketConsumer):
    """Forwards the Channels messages of its groups to the browser as JSON."""

    groups_joined: list[str]

    async def join(self, groups: list[str]) -> None:
        self.groups_joined = list(groups)
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def container_state(self, event):
        await self.send_json(event)

    async def container_removed(self, event):
        await self.send_json(event)

    async def job_state(self, event):
        await self.send_json(event)

    async def receive_json(self, content, **kwargs):
        pass  # the browser only listens


@database_sync_to_async
def _team_ids(user) -> list[int]:
    from panel.teams.services import teams_of

    return list(teams_of(user).values_list("id", flat=True))


@database_sync_to_async
def _may_see(user, container_id: str) -> bool:
    """Whether the user sees the container; another team's is refused (and audited)."""
    from panel.containers.models import Container
    from panel.containers.services import visible_containers
    from panel.teams.services import hidden

    if visible_containers(user).filter(pk=container_id).exists():
        return True
    hidden(user, f"No such container: {container_id}", obj_type="container", ref=container_id,
           elsewhere=Container.objects.filter(pk=container_id))
    return False


class TeamConsumer(AuditedConnect, _StateForwarder):
    """ws/team/: container and job changes of every team the user belongs to (all for admins)."""

    audit_route = "/ws/team/"

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.join([f"team.{team_id}" for team_id in await _team_ids(user)])
        await self.accept()


class ContainerConsumer(AuditedConnect, _StateForwarder):
    """ws/containers/<id>/?offset=N: the container's state messages and its live output.

    The page shows the log file up to byte N; this consumer sends what the file got after N,
    subscribes to the shim's output channel (`1` stdout, `2` stderr, `x` exit code), and then
    forwards the live chunks, leaving out what its catch-up already carried.
    """

    audit_route = "/ws/containers/<str:container_id>/"

    async def connect(self):
        user = self.scope.get("user")
        self.container_id = self.scope["url_route"]["kwargs"]["container_id"]
        self.redis = None
        self.pubsub = None
        self.reader = None
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await _may_see(user, self.container_id):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.join([f"container.{self.container_id}"])
        await self.accept()
        # Output written before the subscription is only in the file, output written after it
        # is in both: read what the file got up to now, subscribe, read again; only the second,
        # short read can repeat what the channel brings.
        offset = await self._catch_up(self._offset())
        try:
            self.redis = aioredis.Redis.from_url(settings.REDIS_URL)
            self.pubsub = self.redis.pubsub()
            await self.pubsub.subscribe(output_channel(self.container_id))
        except Exception as exc:  # Redis is down: state still arrives; say so instead of hanging
            log.warning("live output of %s unavailable: %s", self.container_id, exc)
            await self.send_json({"type": "output.unavailable", "error": str(exc)})
            return
        pending = {"stdout": "", "stderr": ""}
        await self._catch_up(offset, pending)
        self.reader = asyncio.create_task(self._forward(pending))

    def _offset(self) -> int:
        query = self.scope.get("query_string", b"").decode()
        for part in query.split("&"):
            key, _, value = part.partition("=")
            if key == "offset" and value.isdigit():
                return int(value)
        return 0

    async def _catch_up(self, offset: int, pending: dict[str, str] | None = None) -> int:
        from panel.web import logs

        chunks, end = await asyncio.to_thread(logs.read_from, self.container_id, offset)
        for chunk in chunks:
            await self.send_json({"type": "output", "stream": chunk.stream, "data": chunk.text})
            if pending is not None:
                pending[chunk.stream] += chunk.text
        return end or offset

    async def _forward(self, pending: dict[str, str]) -> None:
        decoders = {k: codecs.getincrementaldecoder("utf-8")("replace") for k in pending}
        try:
            async for message in self.pubsub.listen():
                if message.get("type") != "message":
                    continue
                payload = message["data"]
                kind, body = payload[:1], payload[1:]
                if kind == b"x":
                    code = body.decode(errors="replace").strip()
                    await self.send_json({"type": "output.exit",
                                          "code": int(code) if code.lstrip("-").isdigit() else None})
                    continue
                stream = "stderr" if kind == b"2" else "stdout"
                text = decoders[stream].decode(body)
                text, pending[stream] = _dedupe(text, pending[stream])
                if text:
                    await self.send_json({"type": "output", "stream": stream, "data": text})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("live output of %s stopped", self.container_id, exc_info=True)

    async def disconnect(self, code):
        await super().disconnect(code)
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.reader
        if self.pubsub is not None:
            with contextlib.suppress(Exception):
                await self.pubsub.unsubscribe()
                await self.pubsub.aclose()
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()


# The session key of the job ids the panel handed out for jobs this browser is about to
# start: their page follows the job before the job's row exists (panel/web/image_views.py).
RESERVED_JOBS_KEY = "reserved_job_ids"


@database_sync_to_async
def _job_state(user, session, job_id: str) -> dict | None:
    """The job's state as publish.job_state sends it; {} for a job this session reserved
    and has not started yet; None when the user may not see it."""
    from panel.errors import NotFound
    from panel.jobs import services as jobs

    try:
        job = jobs.resolve(user, job_id)
    except NotFound:
        pass
    else:
        return {"type": "job.state", "id": str(job.id), "kind": job.kind, "state": job.state,
                "error": job.error, "target_id": job.target_id}
    if session is not None and job_id in session.get(RESERVED_JOBS_KEY, []):
        return {}
    return None


class JobConsumer(AuditedConnect, _StateForwarder):
    """ws/jobs/<uuid>/: one job's state changes and progress messages (Docker's JSON
    progress lines), for the users who may see the job; others are closed."""

    audit_route = "/ws/jobs/<uuid:job_id>/"

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        job_id = str(self.scope["url_route"]["kwargs"]["job_id"])
        # Join first, then read the row: a change between the two is sent twice, never lost.
        await self.join([f"job.{job_id}"])
        state = await _job_state(user, self.scope.get("session"), job_id)
        if state is None:
            await self.disconnect(CLOSE_NOT_FOUND)  # leaves the group
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        if state:
            await self.send_json(state)

    async def job_progress(self, event):
        await self.send_json(event)


def _dedupe(text: str, pending: str) -> tuple[str, str]:
    """Drop from a live chunk what the second catch-up read already sent (`pending`)."""
    if not pending:
        return text, ""
    found = pending.find(text)
    if found >= 0:
        return "", pending[found + len(text):]
    for size in range(min(len(pending), len(text)), 0, -1):  # the chunk starts with its tail
        if text.startswith(pending[-size:]):
            return text[size:], ""
    return text, ""
