"""/containers/...: thin views. Parse the request, call the services, answer in Docker's shape."""

import asyncio
import json
import re

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from panel.containers import console, services
from panel.containers.models import Container
from panel.errors import DockyardError, InvalidParameter, NotFound
from panel.images import services as images
from panel.jobs import services as jobs
from panel.jobs.models import Job

from . import logs, shapes
from .common import BadRequest, endpoint, json_body, qbool, qint, query_filters

JOB_TIMEOUT = 120.0
KILL_SETTLE_TIMEOUT = 10.0
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
STATUS_VALUES = {s.value for s in Container.State}


class StartFailed(DockyardError):
    status = 400


# ---------------------------------------------------------------------------- helpers


def _resolve(request, ref: str) -> Container:
    return services.resolve(request.user, ref)


async def _aresolve(request, ref: str) -> Container:
    return await sync_to_async(services.resolve)(request.user, ref)


def _start_failed(error: str) -> DockyardError:
    """A failed start in Docker's words, which the docker CLI maps to exit codes 126/127."""
    if error.startswith(("internal error", "driver failed programming",
                         "cannot join network")):  # the network's, not the process's
        return DockyardError(error)
    if not error.startswith("failed to create task"):
        error = f"failed to create task for container: {error}: unknown"
    return StartFailed(error)


async def _finish(job: Job, timeout: float = JOB_TIMEOUT, failed=DockyardError) -> Job:
    """Await a job; a failed one raises `failed(error)`."""
    job = await jobs.wait_for(job.id, timeout=timeout)
    if job.state == Job.State.FAILED:
        raise failed(job.error or f"{job.kind} failed")
    if not job.is_terminal:
        raise DockyardError(f"timed out after {timeout:.0f}s waiting for {job.kind} on the node")
    return job


async def _row(container_id: str) -> dict | None:
    return await Container.objects.filter(pk=container_id).values(
        "state", "exit_code", "error", "finished_at", "started_at"
    ).afirst()


async def _watch(container_id: str, done, timeout: float | None, on_message=None):
    """Re-read the container row on every event of its Channels group (and every second)
    until `done(row)` returns a result that is not None; `row` is None once it is removed.
    `on_message` sees each event first (a row re-read later may have moved on)."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = f"container.{container_id}"
    await layer.group_add(group, channel)
    try:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            result = done(await _row(container_id))
            if result is not None:
                return result
            wait = 1.0 if deadline is None else min(1.0, deadline - loop.time())
            if wait <= 0:
                return None
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=wait)
            except TimeoutError:
                continue
            if on_message:
                on_message(message)
    finally:
        await layer.group_discard(group, channel)


def _regex_match(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def _labels_match(labels: dict, terms: list[str]) -> bool:
    for term in terms:
        key, sep, value = term.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


# ---------------------------------------------------------------------------- list / inspect

_CONTAINER_FILTERS = {"id", "name", "status", "label", "ancestor", "exited", "before", "since"}


def _list(request):
    filters = query_filters(request)
    unknown = set(filters) - _CONTAINER_FILTERS
    if unknown:
        raise BadRequest(f"invalid filter '{sorted(unknown)[0]}'")
    for status in filters.get("status", []):
        if status not in STATUS_VALUES:
            raise BadRequest(f"invalid filter 'status={status}'")
    exited = []
    for value in filters.get("exited", []):
        try:
            exited.append(int(value))
        except ValueError:
            raise BadRequest(f"invalid filter 'exited={value}'") from None
    limit = qint(request, "limit", -1)
    show_all = qbool(request, "all") or "status" in filters or "exited" in filters or limit > 0
    rows = services.visible_containers(request.user).select_related("image")
    if not show_all:
        rows = rows.filter(state__in=shapes.RUNNING_STATES)
    rows = rows.prefetch_related("image__tags")
    ancestors = set()
    for ref in filters.get("ancestor", []):
        try:
            ancestors.add(images.resolve(request.user, ref).id)
        except (NotFound, InvalidParameter):
            pass
    before = [_resolve(request, ref).created for ref in filters.get("before", [])]
    since = [_resolve(request, ref).created for ref in filters.get("since", [])]
    selected = []
    for c in rows:
        if filters.get("id") and not any(c.id.startswith(v) or _regex_match(v, c.id)
                                         for v in filters["id"]):
            continue
        if filters.get("name") and not any(_regex_match(v, f"/{c.name}") for v in filters["name"]):
            continue
        if filters.get("status") and c.state not in filters["status"]:
            continue
        if exited and not (c.state == Container.State.EXITED and (c.exit_code or 0) in exited):
            continue
        if filters.get("label") and not _labels_match(shapes.merged_labels(c), filters["label"]):
            continue
        if "ancestor" in filters and c.image_id not in ancestors and \
                c.image_ref not in filters["ancestor"]:
            continue
        if before and not all(c.created < moment for moment in before):
            continue
        if since and not all(c.created > moment for moment in since):
            continue
        selected.append(c)
        if 0 < limit <= len(selected):
            break
    size = qbool(request, "size")
    return JsonResponse([shapes.container_summary(c, size=size) for c in selected], safe=False)


def _inspect(request, ref):
    container = _resolve(request, ref)
    return JsonResponse(shapes.container_inspect(container, size=qbool(request, "size")))


# ---------------------------------------------------------------------------- create

def _create(request):
    body = json_body(request)
    host_config = body.pop("HostConfig", None) or {}
    networking_config = body.pop("NetworkingConfig", None) or {}
    if not isinstance(host_config, dict) or not isinstance(networking_config, dict):
        raise BadRequest("HostConfig and NetworkingConfig must be JSON objects")
    name = request.GET.get("name") or None
    container = services.create(acting_user=request.user, config=body, host_config=host_config,
                                name=name, source="api", networking_config=networking_config)
    return JsonResponse({"Id": container.id, "Warnings": []}, status=201)


# ---------------------------------------------------------------------------- lifecycle

async def _start(request, ref):
    container = await _aresolve(request, ref)
    job = await sync_to_async(services.start)(acting_user=request.user, container=container)
    await _finish(job, failed=_start_failed)
    return HttpResponse(status=204)


async def _stop(request, ref):
    container = await _aresolve(request, ref)
    timeout = qint(request, "t")
    job = await sync_to_async(services.stop)(acting_user=request.user, container=container,
                                             timeout=timeout)
    await _finish(job, timeout=JOB_TIMEOUT + (timeout or 0))
    return HttpResponse(status=204)


async def _kill(request, ref):
    container = await _aresolve(request, ref)
    signal = request.GET.get("signal") or "SIGKILL"
    job = await sync_to_async(services.kill)(acting_user=request.user, container=container,
                                             signal=signal)
    await _finish(job)
    if job.payload.get("signal") == 9:
        # Docker returns from SIGKILL once the container is gone; other signals return at once.
        await _watch(container.id, lambda row: True if row is None or
                     row["state"] not in shapes.RUNNING_STATES else None, KILL_SETTLE_TIMEOUT)
    return HttpResponse(status=204)


async def _remove(request, ref):
    container = await _aresolve(request, ref)
    if qbool(request, "link"):
        raise BadRequest("links are not supported")
    job = await sync_to_async(services.remove)(acting_user=request.user, container=container,
                                               force=qbool(request, "force"),
                                               volumes=qbool(request, "v"))
    await _finish(job)
    return HttpResponse(status=204)


# ---------------------------------------------------------------------------- wait

async def _wait(request, ref):
    condition = request.GET.get("condition") or "not-running"
    if condition not in WAIT_CONDITIONS:
        raise BadRequest(f"invalid condition: {condition!r}")
    container = await _aresolve(request, ref)
    # Snapshot before answering: the CLI starts the container once the headers arrive, and
    # an exit that happens after this point must count as the "next" one.
    initial = await _row(container.id)
    if initial is None:
        raise NotFound(f"No such container: {ref}")
    last = {"code": initial["exit_code"] or 0}

    def remember(message):
        # Exit, removal and deletion can all pass before the row is read again.
        if message.get("exit_code") is not None:
            last["code"] = message["exit_code"]

    def done(row):
        if row is None:
            return last["code"]
        if row["exit_code"] is not None and row["state"] in (
            Container.State.EXITED, Container.State.DEAD, Container.State.REMOVING
        ):
            last["code"] = row["exit_code"]
        if condition == "removed":
            return None
        if condition == "not-running":
            return None if row["state"] in shapes.RUNNING_STATES else (row["exit_code"] or 0)
        exited = row["state"] in (Container.State.EXITED, Container.State.DEAD)
        if exited and (row["finished_at"] != initial["finished_at"]
                       or row["started_at"] != initial["started_at"]):
            return row["exit_code"] or 0
        return None

    async def body():
        # Headers go out at once (the docker CLI waits for them before it starts the
        # container); the body follows when the condition is met.
        code = await _watch(container.id, done, None, on_message=remember)
        yield json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"

    return StreamingHttpResponse(body(), content_type="application/json")


# ---------------------------------------------------------------------------- logs

def _log_options(request, container) -> logs.LogOptions:
    stdout, stderr = qbool(request, "stdout"), qbool(request, "stderr")
    if not stdout and not stderr:
        raise BadRequest("Bad parameters: you must choose at least one stream")
    tail_raw = request.GET.get("tail", "all").strip() or "all"
    if tail_raw == "all":
        tail = None
    else:
        try:
            tail = int(tail_raw)
        except ValueError:
            raise BadRequest(f"invalid value for tail: {tail_raw!r}") from None
        tail = None if tail < 0 else tail
    try:
        since = logs.parse_unix_ns(request.GET.get("since", "0") or "0")
        until = logs.parse_unix_ns(request.GET.get("until", "0") or "0")
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return logs.LogOptions(stdout=stdout, stderr=stderr, timestamps=qbool(request, "timestamps"),
                           since_ns=since, until_ns=until, tail=tail,
                           follow=qbool(request, "follow"), tty=shapes.is_tty(container))


async def _logs(request, ref):
    container = await _aresolve(request, ref)
    options = _log_options(request, container)
    content_type = "application/vnd.docker.raw-stream"
    if not options.follow:
        # Small enough to read at once; answer with a Content-Length.
        chunks = [chunk async for chunk in logs.stream_logs(container.id, options)]
        return HttpResponse(b"".join(chunks), content_type=content_type)
    return StreamingHttpResponse(logs.stream_logs(container.id, options),
                                 content_type=content_type)


# ---------------------------------------------------------------------------- resize

async def _resize(request, ref):
    """POST /containers/{id}/resize?h=&w=: the TTY's size (the CLI sends it at start and on
    SIGWINCH). 409 when the container does not run, as in Docker."""
    container = await _aresolve(request, ref)
    if request.GET.get("h", "").strip() == "" or request.GET.get("w", "").strip() == "":
        raise BadRequest("both h and w are required")
    rows, cols = await sync_to_async(console.check_resize)(
        acting_user=request.user, container=container, rows=qint(request, "h"),
        cols=qint(request, "w"))
    await console.resize(container.id, rows, cols)
    return HttpResponse(status=200)


# ---------------------------------------------------------------------------- endpoints

container_list = endpoint(GET=_list)
container_create = endpoint(POST=_create)
container_inspect = endpoint(GET=_inspect)
container_start = endpoint(POST=_start)
container_stop = endpoint(POST=_stop)
container_kill = endpoint(POST=_kill)
container_delete = endpoint(DELETE=_remove)
container_wait = endpoint(POST=_wait)
container_logs = endpoint(GET=_logs)
container_resize = endpoint(POST=_resize)
