"""POST /commit (a container's changes as a new image) and GET /containers/{id}/export."""

import json

from asgiref.sync import sync_to_async
from django.http import JsonResponse

from panel.images import services as images

from .common import BadRequest, endpoint, qbool
from .images import failure, join_ref, parse_ref, stream_file, wait_job


def _config(request) -> dict | None:
    raw = request.body
    if not raw.strip():
        return None
    try:
        config = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"malformed JSON in request body: {exc}") from None
    if config is not None and not isinstance(config, dict):
        raise BadRequest("malformed request body: expected a JSON object")
    return config or None


async def _commit(request):
    container = request.GET.get("container") or ""
    if not container:
        raise BadRequest("container is required")
    repository, tag = request.GET.get("repo") or "", request.GET.get("tag") or ""
    if repository:
        parsed = parse_ref(join_ref(repository, tag))
        repository, tag = parsed.repository, parsed.tag
    job = await sync_to_async(images.commit)(
        request.user, container, repository=repository, tag=tag,
        comment=request.GET.get("comment") or "", author=request.GET.get("author") or "",
        changes=[c for c in request.GET.getlist("changes") if c.strip()],
        config=_config(request), pause=qbool(request, "pause", default=True), source="api")
    job = await wait_job(job.id)
    image_id = str(job.result.get("id", "")).removeprefix("sha256:")
    return failure(job) or JsonResponse({"Id": f"sha256:{image_id}"}, status=201)


async def _export(request, ref):
    job = await sync_to_async(images.export_container)(request.user, ref, source="api")
    job = await wait_job(job.id)
    return failure(job) or stream_file(job.result["path"])


commit = endpoint(POST=_commit)
container_export = endpoint(GET=_export)
