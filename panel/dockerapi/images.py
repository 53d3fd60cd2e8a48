"""/images/...: list, inspect, pull, push, tag, remove, prune, history, save, load, import.

Long work runs in the node's jobs (panel.images.services). A streaming endpoint picks the
job's id, joins the job's Channels group, then starts the job, and forwards each
`job.progress` event as one line of Docker's JSON progress stream. An error before the
first line is the response's status (404 for a missing repository, 401 for refused
credentials); after it, Docker's `errorDetail` line.
"""

import asyncio
import base64
import binascii
import fnmatch
import json
import shutil
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from panel.errors import DockyardError, InvalidParameter
from panel.images import references, spool
from panel.images import services as images
from panel.images.models import ImageTag
from panel.jobs.models import Job

from . import shapes
from .common import BadRequest, endpoint, error, qbool, query_filters

ROW_CHECK_SECONDS = 1.0  # how often a follower re-reads the job's row (a lost message)
COPY_CHUNK = 1024 * 1024


# ---------------------------------------------------------------------------- following jobs

class JobFollower:
    """Joins `job.<id>` before the job exists, then yields its progress events in order."""

    def __init__(self, job_id=None):
        self.job_id = job_id or uuid.uuid4()
        self.group = f"job.{self.job_id}"
        self.layer = get_channel_layer()
        self.channel = None
        self.job = None

    async def join(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)

    async def leave(self) -> None:
        if self.channel is not None:
            await self.layer.group_discard(self.group, self.channel)
            self.channel = None

    async def next_event(self) -> dict | None:
        """The job's next progress event, or None once it is over (then `self.job` is its row).

        The worker sends progress and the final state through one ordered sender, so the
        terminal `job.state` message comes after the last progress event. The row is checked
        every second in case that message was lost; a terminal row ends the stream after one
        more quiet second, so that late progress still gets out."""
        row_terminal = False
        while True:
            try:
                message = await asyncio.wait_for(self.layer.receive(self.channel),
                                                 timeout=ROW_CHECK_SECONDS)
            except TimeoutError:
                if row_terminal:
                    return None
                self.job = await Job.objects.aget(pk=self.job_id)
                row_terminal = self.job.is_terminal
                continue
            if message.get("type") == "job.progress":
                return message["event"]
            if message.get("type") == "job.state" and message.get("state") in Job.TERMINAL:
                self.job = await Job.objects.aget(pk=self.job_id)
                return None

    async def wait(self) -> Job:
        """Wait for the end of the job, dropping its progress."""
        while await self.next_event() is not None:
            pass
        return self.job


def _line(message: dict) -> bytes:
    return json.dumps(message).encode() + b"\r\n"


def job_status(job: Job) -> int:
    status = (job.result or {}).get("status")
    return status if isinstance(status, int) and 400 <= status < 600 else 500


def job_error(job: Job) -> str:
    return job.error or f"{job.kind} failed"


async def _begin(start, progress: bool) -> tuple[JobFollower, dict | None]:
    """Join a new job's group, run `start(job_id)`, wait for its first event (None: over)."""
    follower = JobFollower()
    await follower.join()
    try:
        await sync_to_async(start)(follower.job_id)
        first = await follower.next_event()
        while first is not None and not progress:
            first = await follower.next_event()
    except BaseException:
        await follower.leave()
        raise
    return follower, first


def _error_line(message: str) -> bytes:
    return _line({"errorDetail": {"message": message}, "error": message})


async def stream_job(*starts, finish=None, progress: bool = True) -> HttpResponse:
    """Run each `start(job_id)` (sync: a service call) in turn and answer with the jobs'
    progress stream; the first failure ends it.

    `finish(job)` gives the lines that follow a job's own on success; `progress=False`
    (quiet) forwards none of the jobs' events."""
    follower, first = await _begin(starts[0], progress)
    if first is None and follower.job.state == Job.State.FAILED:
        await follower.leave()
        return error(job_status(follower.job), job_error(follower.job))

    async def body():
        current, event = follower, first
        try:
            for index, start in enumerate(starts):
                if index:
                    try:
                        current, event = await _begin(start, progress)
                    except DockyardError as exc:
                        yield _error_line(exc.message)
                        return
                while event is not None:  # quiet: _begin drained the job's events
                    yield _line(event)
                    event = await current.next_event()
                await current.leave()
                if current.job.state == Job.State.FAILED:
                    yield _error_line(job_error(current.job))
                    return
                for message in finish(current.job) if finish else ():
                    yield _line(message)
        finally:
            await current.leave()

    return StreamingHttpResponse(body(), content_type="application/json")


async def wait_job(job_id) -> Job:
    """Wait (no time limit: a save or commit takes what it takes) for a job that exists."""
    follower = JobFollower(job_id)
    await follower.join()
    try:
        job = await Job.objects.aget(pk=job_id)  # read after joining: nothing falls between
        return job if job.is_terminal else await follower.wait()
    finally:
        await follower.leave()


def failure(job: Job) -> HttpResponse | None:
    """A failed job as the response Docker gives (its status, {"message": error})."""
    return error(job_status(job), job_error(job)) if job.state == Job.State.FAILED else None


def stream_file(path: str) -> StreamingHttpResponse:
    """Stream a spool file that a job wrote (a tar); it is unlinked at once (the open file
    stays readable), so it goes away however the download ends."""
    path = spool.check_spooled(path)
    f = open(path, "rb")  # noqa: SIM115 - closed by the generator
    spool.discard(path)

    async def body():
        try:
            while chunk := await asyncio.to_thread(f.read, COPY_CHUNK):
                yield chunk
        finally:
            f.close()

    return StreamingHttpResponse(body(), content_type="application/x-tar")


def spool_request_body(request, suffix: str) -> str:
    """Copy the request's body (a tar: load, import) into a spool file for the node's job."""
    path = spool.spool_path(suffix)
    try:
        with open(path, "wb") as out:
            shutil.copyfileobj(request, out, COPY_CHUNK)
    except BaseException:
        spool.discard(path)
        raise
    return path


def json_header(request, name: str) -> dict | None:
    """A header of base64url JSON (X-Registry-Auth, X-Registry-Config), padding optional;
    unreadable means none (Docker: anonymous)."""
    raw = request.headers.get(name, "").strip()
    if not raw:
        return None
    raw = raw.replace("+", "-").replace("/", "_")
    try:
        data = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        return None
    return data if isinstance(data, dict) else None


def registry_auth(request) -> dict | None:
    """X-Registry-Auth: credentials for one registry, or None (anonymous)."""
    data = json_header(request, "X-Registry-Auth")
    if data is None or not any(
            data.get(k) for k in ("username", "password", "identitytoken", "registrytoken")):
        return None
    return data


def _changes(request) -> list[str]:
    return [c for c in request.GET.getlist("changes") if c.strip()]


def join_ref(name: str, tag: str) -> str:
    """`fromImage`/`repo` plus the separate `tag` parameter (a tag or a digest)."""
    if not tag or "@" in name or ":" in name.rsplit("/", 1)[-1]:
        return name
    return f"{name}@{tag}" if tag.startswith("sha256:") else f"{name}:{tag}"


# ---------------------------------------------------------------------------- list, inspect

def _reference_match(patterns: list[str], tag: str) -> bool:
    """Docker's `reference` filter: a glob on "repo:tag", or on the repository alone."""
    return any(fnmatch.fnmatchcase(tag if ":" in p.rsplit("/", 1)[-1] else tag.rsplit(":", 1)[0],
                                   p) for p in patterns)


def _list(request):
    filters = query_filters(request)
    unknown = set(filters) - {"reference", "dangling", "label", "before", "since"}
    if unknown:
        raise BadRequest(f"invalid filter '{sorted(unknown)[0]}'")
    rows = list(images.visible_images(request.user).prefetch_related("tags"))
    parents = {image.parent for image in rows if image.parent}
    show_all = qbool(request, "all")
    out = []
    before = [images.resolve(request.user, ref).created for ref in filters.get("before", [])]
    since = [images.resolve(request.user, ref).created for ref in filters.get("since", [])]
    for image in rows:
        tags = shapes.repo_tags(image)
        # Untagged parents of other images are intermediate layers: only `docker images -a`.
        if not tags and image.id in parents and not show_all:
            continue
        if "dangling" in filters:
            dangling = filters["dangling"][-1].lower() in ("1", "true")
            if dangling != (not tags):
                continue
        if filters.get("reference"):
            # as dockerd: only the matching tags are shown (`docker images REPO`)
            tags = [t for t in tags if _reference_match(filters["reference"], t)]
            if not tags:
                continue
        labels = image.run_config.get("Labels") or {}
        if filters.get("label"):
            matched = True
            for term in filters["label"]:
                key, sep, value = term.partition("=")
                if key not in labels or (sep and labels[key] != value):
                    matched = False
            if not matched:
                continue
        if before and not all(image.created < m for m in before):
            continue
        if since and not all(image.created > m for m in since):
            continue
        summary = shapes.image_summary(image)
        if filters.get("reference"):
            summary["RepoTags"] = tags
        out.append(summary)
    return JsonResponse(out, safe=False)


def _inspect(request, name):
    image = images.resolve(request.user, name)
    return JsonResponse(shapes.image_inspect(image))


def _history(request, name):
    return JsonResponse(images.history(request.user, name), safe=False)


# ---------------------------------------------------------------------------- pull, import

async def _create(request):
    if request.GET.get("fromSrc"):
        return await _import(request)
    source = request.GET.get("fromImage") or ""
    if not source:
        raise BadRequest("fromImage or fromSrc is required")
    ref = join_ref(source, request.GET.get("tag") or "")
    if "@" not in ref and ":" not in ref.rsplit("/", 1)[-1]:
        ref += ":latest"
    auth = registry_auth(request)
    user, platform = request.user, request.GET.get("platform") or ""
    return await stream_job(lambda job_id: images.pull(
        user, ref, auth=auth, platform=platform, source="api", job_id=job_id))


async def _import(request):
    if request.GET["fromSrc"] != "-":
        raise BadRequest("importing from a URL is not supported: send the tarball (fromSrc=-)")
    repository, tag = request.GET.get("repo") or "", request.GET.get("tag") or ""
    if repository:
        parsed = parse_ref(join_ref(repository, tag))
        repository, tag = parsed.repository, parsed.tag
    user, changes = request.user, _changes(request)
    message = request.GET.get("message") or ""
    path = await sync_to_async(spool_request_body)(request, ".tar")

    def start(job_id):
        try:
            images.import_image(user, path, repository=repository, tag=tag, changes=changes,
                                message=message, source="api", job_id=job_id)
        except BaseException:
            spool.discard(path)
            raise

    def finish(job):
        image_id = str(job.result.get("id", "")).removeprefix("sha256:")
        return [{"status": f"sha256:{image_id}"}]

    return await stream_job(start, finish=finish)


def parse_ref(ref: str):
    try:
        return references.parse(ref)
    except InvalidParameter:
        raise BadRequest(f"invalid reference format: {ref}") from None


# ---------------------------------------------------------------------------- push

def _push_finish(job: Job) -> list[dict]:
    """Docker's `aux` line after the registry client's "<tag>: digest: ... size: ..." one."""
    result = job.result or {}
    return [{"progressDetail": {}, "aux": {"Tag": result.get("tag", ""),
                                           "Digest": result.get("digest", ""),
                                           "Size": result.get("size", 0)}}]


def _push_refs(user, name: str, tag: str) -> list[str]:
    """The references a push names: the tag, or every local tag of the repository (no tag:
    `docker push --all-tags`, docker-py's push without a tag)."""
    if tag or "@" in name or ":" in name.rsplit("/", 1)[-1]:
        return [join_ref(name, tag)]
    repository = parse_ref(name).repository
    tags = ImageTag.objects.filter(repository=repository,
                                   image__in=images.visible_images(user)).order_by("tag")
    # none: the service's refusal ("An image does not exist locally with the tag")
    return [str(t) for t in tags] or [f"{repository}:latest"]


async def _push(request, name):
    auth = registry_auth(request)
    user = request.user
    refs = await sync_to_async(_push_refs)(user, name, request.GET.get("tag") or "")
    return await stream_job(*[
        lambda job_id, ref=ref: images.push(user, ref, auth=auth, source="api", job_id=job_id)
        for ref in refs], finish=_push_finish)


# ---------------------------------------------------------------------------- tag, rmi, prune

def _tag(request, name):
    repository = request.GET.get("repo") or ""
    if not repository:
        raise BadRequest("repository name (repo) is required")
    parsed = parse_ref(join_ref(repository, request.GET.get("tag") or ""))
    images.tag(request.user, name, parsed.repository, parsed.tag, source="api")
    return HttpResponse(status=201)


def _remove(request, name):
    return JsonResponse(images.remove(request.user, name, force=qbool(request, "force"),
                                      prune_parents=not qbool(request, "noprune"),
                                      source="api"), safe=False)


def _prune(request):
    filters = query_filters(request, known={"dangling", "until", "label", "label!"})
    dangling = filters.pop("dangling", ["true"])[-1].lower() in ("1", "true")
    return JsonResponse(images.prune(request.user, all_images=not dangling, filters=filters,
                                     source="api"))


# ---------------------------------------------------------------------------- save, load

async def _save(request, name=None):
    refs = [name] if name else request.GET.getlist("names")
    if not refs:
        raise BadRequest("no image names given (names=...)")
    user = request.user
    job = await wait_job((await sync_to_async(images.save)(user, refs, source="api")).id)
    return failure(job) or stream_file(job.result["path"])


async def _load(request):
    quiet = qbool(request, "quiet")
    user = request.user
    path = await sync_to_async(spool_request_body)(request, ".tar")

    def start(job_id):
        try:
            images.load(user, path, source="api", job_id=job_id)
        except BaseException:
            spool.discard(path)
            raise

    def finish(job):
        lines = []
        for image in (job.result or {}).get("images", []):
            tags = image.get("tags") or []
            for tag in tags:
                lines.append({"stream": f"Loaded image: {tag}\n"})
            if not tags:
                image_id = str(image["id"]).removeprefix("sha256:")
                lines.append({"stream": f"Loaded image ID: sha256:{image_id}\n"})
        return lines

    return await stream_job(start, finish=finish, progress=not quiet)


image_list = endpoint(GET=_list)
image_inspect = endpoint(GET=_inspect)
image_history = endpoint(GET=_history)
image_create = endpoint(POST=_create)
image_push = endpoint(POST=_push)
image_tag = endpoint(POST=_tag)
image_delete = endpoint(DELETE=_remove)
image_prune = endpoint(POST=_prune)
image_save = endpoint(GET=_save)
image_load = endpoint(POST=_load)
