"""POST /build: the classic builder's endpoint (`DOCKER_BUILDKIT=0 docker build`, the CLI
without buildx, docker-py's `images.build`), and POST /build/prune.

The context tar (maybe compressed) is spooled for the node's `image.build` job
(panel.images.builds). As the pull stream in images.py does, the job's id is picked and its
Channels group joined before the job exists, and each `job.progress` event goes out as one
line of Docker's build JSON ({"stream": ...}, {"aux": {"ID": ...}}). A build that fails
before its first line answers with the job's status; after it, with Docker's
{"errorDetail": {"code": <RUN's exit code>, "message": m}, "error": m} line, from which the
CLI takes its exit status. `q=1` sends only the final id (all output, then the error, on
failure, as dockerd does). A client that goes away cancels the build: the ASGI handler
cancels the view or the stream, and the `finally` blocks ask the service to stop the job.

Options that only tune dockerd's build containers (memory, cpu*, shmsize, ulimits,
extrahosts, cachefrom, squash, rm, forcerm: Dockyard always removes its RUN containers)
are accepted and ignored.
"""

import asyncio
import contextlib
import json
import re

from asgiref.sync import sync_to_async
from django.http import JsonResponse, StreamingHttpResponse

from panel.images import builds, spool
from panel.jobs.models import Job

from .common import BadRequest, endpoint, error, qbool
from .images import JobFollower, job_error, job_status, json_header, spool_request_body

_GIT_URL_PATH = re.compile(r"\.git(?:#.+)?$")


def _line(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\r\n"


def _error_line(job: Job) -> bytes:
    message = job_error(job)
    detail = {"message": message}
    code = (job.result or {}).get("code")
    if isinstance(code, int) and code:
        detail = {"code": code, "message": message}
    return _line({"errorDetail": detail, "error": message})


def _json_query(request, name: str):
    """A query parameter holding JSON (buildargs, labels: objects the service checks)."""
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"invalid {name}: {exc}") from None


def is_git_url(url: str) -> bool:
    """Docker's urlutil.IsGitURL: git://, git@, github.com/, or an http(s) URL of a .git path."""
    if url.startswith(("http://", "https://")):
        return bool(_GIT_URL_PATH.search(url))
    return url.startswith(("git://", "git@", "github.com/"))


def _options(request) -> dict:
    if request.GET.get("version", "1") == "2":
        raise BadRequest("BuildKit is not supported by this daemon: use the classic builder "
                         "(DOCKER_BUILDKIT=0)")
    network = request.GET.get("networkmode", "")
    if network not in ("", "default", "bridge"):
        raise BadRequest(f"network mode {network!r} is not supported for builds: RUN steps "
                         "use the default bridge")
    remote = request.GET.get("remote", "").strip()
    if remote and not is_git_url(remote):
        raise BadRequest(f"unsupported remote context {remote!r}: only git repositories "
                         "(git://, git@, github.com/, https://....git#ref:dir)")
    return {
        "remote": remote,
        "tags": request.GET.getlist("t"),
        "dockerfile": request.GET.get("dockerfile") or "Dockerfile",
        "build_args": _json_query(request, "buildargs"),
        "target": request.GET.get("target", ""),
        "no_cache": qbool(request, "nocache"),
        "pull": qbool(request, "pull"),
        "labels": _json_query(request, "labels"),
        # X-Registry-Config: {registry: auth config} for the FROM pulls
        "registry_auth": json_header(request, "X-Registry-Config") or None,
    }


async def _cancel(user, job_id) -> None:
    """Stop a build whose client went away (shielded: it runs while the request is being
    cancelled); a build that already ended is left as it is."""
    with contextlib.suppress(Exception):
        await asyncio.shield(sync_to_async(builds.cancel)(user, job_id, source="api"))


def _start(user, job_id, options: dict, context_path: str) -> None:
    """Enqueue the build (sync: run through sync_to_async)."""
    try:
        builds.build(user, context_path=context_path, source="api", job_id=job_id, **options)
    except BaseException:
        if context_path:
            spool.discard(context_path)
        raise


async def _build(request):
    user, quiet = request.user, qbool(request, "q")
    options = _options(request)
    context_path = "" if options["remote"] else await sync_to_async(spool_request_body)(
        request, ".tar")
    follower = JobFollower()
    await follower.join()
    held: list[dict] = []  # quiet: the output, sent only if the build fails
    event, started = None, False
    try:
        await sync_to_async(_start)(user, follower.job_id, options, context_path)
        event = await follower.next_event()
        while quiet and event is not None:
            held.append(event)
            event = await follower.next_event()
        started = True
    finally:
        if not started:  # an error, or the client went away
            # sync_to_async calls of a request share one thread, in order: a cancel made
            # while builds.build still runs waits for it, and then finds the job.
            await _cancel(user, follower.job_id)
            await follower.leave()
    job = follower.job
    if event is None and job.state == Job.State.FAILED and not held:
        await follower.leave()
        return error(job_status(job), job_error(job))

    async def body():
        nonlocal event
        finished = event is None
        try:
            while event is not None:
                yield _line(event)
                event = await follower.next_event()
            finished = True
            if follower.job.state == Job.State.FAILED:
                for message in held:
                    yield _line(message)
                yield _error_line(follower.job)
            elif quiet:
                image_id = (follower.job.result or {}).get("id", "")
                yield _line({"aux": {"ID": image_id}})
                yield _line({"stream": f"{image_id}\n"})
        finally:
            if not finished:
                await _cancel(user, follower.job_id)
            await follower.leave()

    return StreamingHttpResponse(body(), content_type="application/json")


def _prune(request):
    """The classic builder keeps no cache apart from its images (pruned with them)."""
    return JsonResponse({"CachesDeleted": [], "SpaceReclaimed": 0})


build = endpoint(POST=_build)
build_prune = endpoint(POST=_prune)
