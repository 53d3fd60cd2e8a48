"""GET /events: Docker's event stream for containers (create, start, die, kill, stop, pause,
unpause, restart, rename, destroy, ...).

`since` replays the stored history (panel.containers.history: ContainerEvent rows), then the
stream follows the live events that the services and the node record (pushed on commit to
the Channels groups `events.all` / `events.team.<id>`) until `until`, or for ever. The
Channels group is joined before the replay is read, so nothing falls between the two; an
event in both is sent once.
"""

import asyncio
import json
import time
from datetime import datetime

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.http import StreamingHttpResponse

from panel.containers import history
from panel.containers.models import ContainerEvent
from panel.teams.services import teams_of

from .common import BadRequest, endpoint, query_filters

# the filters `docker events` knows; those about other object types match no container event
KNOWN_FILTERS = {"config", "container", "daemon", "event", "image", "label", "network", "node",
                 "plugin", "scope", "secret", "service", "type", "volume"}
OTHER_TYPES = KNOWN_FILTERS - {"container", "event", "image", "label", "scope", "type"}
KEEPALIVE_SECONDS = 1.0


def parse_timestamp(raw: str | None, name: str) -> int | None:
    """Docker's `since`/`until`: Unix seconds with optional fraction (what the CLI sends:
    "1700000000.000000000"), or an RFC 3339 date -> Unix nanoseconds."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    seconds, dot, frac = text.partition(".")
    if seconds.lstrip("-").isdigit() and (not dot or frac.isdigit()):
        return int(seconds) * 1_000_000_000 + int((frac + "000000000")[:9] if frac else 0)
    ns = history.parse_time_ns(text)
    if ns is None:
        try:
            ns = int(datetime.fromisoformat(text).timestamp() * 1_000_000_000)
        except ValueError:
            raise BadRequest(f"invalid value for {name}: {raw!r}") from None
    return ns


def matches(event: dict, filters: dict[str, list[str]]) -> bool:
    """Docker's event filters, each key an OR of its values, all keys AND."""
    if any(filters.get(k) for k in OTHER_TYPES):
        return False
    if filters.get("type") and "container" not in filters["type"]:
        return False
    if filters.get("scope") and "local" not in filters["scope"]:
        return False
    attrs = event["Actor"]["Attributes"]
    if filters.get("container") and not any(
            event["id"].startswith(v) or attrs.get("name") == v.removeprefix("/")
            for v in filters["container"]):
        return False
    if filters.get("event") and not any(
            event["Action"] == v or event["Action"].startswith(v + ":")
            for v in filters["event"]):
        return False
    if filters.get("image") and not any(
            attrs.get("image") == v or attrs.get("image", "").split(":")[0] == v
            for v in filters["image"]):
        return False
    for term in filters.get("label", []):
        key, sep, value = term.partition("=")
        if key not in attrs or (sep and attrs[key] != value):
            return False
    return True


def _visible(user):
    rows = ContainerEvent.objects.all()
    if not user.is_superuser:
        rows = rows.filter(team__in=teams_of(user))
    return rows


def _groups(user) -> list[str]:
    if user.is_superuser:
        return [history.ALL_GROUP]
    return [history.team_group(t) for t in teams_of(user).values_list("id", flat=True)]


def _replay(user, since_ns: int, until_ns: int | None) -> list[tuple[int, dict]]:
    rows = _visible(user).filter(time_nano__gte=since_ns)
    if until_ns is not None:
        rows = rows.filter(time_nano__lte=until_ns)
    return [(e.pk, history.docker_shape(e)) for e in rows.order_by("time_nano", "id")[:10000]]


async def _events(request):
    since_ns = parse_timestamp(request.GET.get("since"), "since")
    until_ns = parse_timestamp(request.GET.get("until"), "until")
    filters = query_filters(request, known=KNOWN_FILTERS)
    if since_ns is not None and until_ns is not None and until_ns < since_ns:
        raise BadRequest("`since` time must be before `until` time")
    user = request.user
    layer = get_channel_layer()
    channel = await layer.new_channel()
    groups = await sync_to_async(_groups)(user)
    for group in groups:
        await layer.group_add(group, channel)

    async def body():
        sent: set[int] = set()
        try:
            if since_ns is not None:
                for pk, event in await sync_to_async(_replay)(user, since_ns, until_ns):
                    sent.add(pk)
                    if matches(event, filters):
                        yield json.dumps(event).encode() + b"\n"
            yield b""  # headers and replay out now
            while True:
                left = None
                if until_ns is not None:
                    left = (until_ns - time.time_ns()) / 1e9
                    if left <= 0:
                        return
                try:
                    message = await asyncio.wait_for(
                        layer.receive(channel),
                        timeout=KEEPALIVE_SECONDS if left is None else min(left, KEEPALIVE_SECONDS))
                except TimeoutError:
                    continue
                if message.get("type") != "container.event" or message.get("pk") in sent:
                    continue
                event = message["event"]
                if since_ns is not None and event["timeNano"] < since_ns:
                    continue
                if until_ns is not None and event["timeNano"] > until_ns:
                    continue
                if matches(event, filters):
                    yield json.dumps(event).encode() + b"\n"
        finally:
            for group in groups:
                await layer.group_discard(group, channel)

    return StreamingHttpResponse(body(), content_type="application/json")


system_events = endpoint(GET=_events)
