"""/volumes...: thin views over panel.volumes.services, in Docker's JSON shapes."""

from datetime import UTC

from asgiref.sync import sync_to_async
from django.http import HttpResponse, JsonResponse

from panel.errors import NotFound
from panel.volumes import services
from panel.volumes.models import Volume

from .common import BadRequest, endpoint, finish_jobs, json_body, name_matches, qbool, query_filters

ANONYMOUS_LABEL = "com.docker.volume.anonymous"  # Docker 23+ marks anonymous volumes so
LIST_FILTERS = {"dangling", "driver", "label", "label!", "name"}
PRUNE_FILTERS = {"label", "label!", "all"}


def volume_json(volume: Volume) -> dict:
    labels = dict(volume.labels or {})
    if volume.anonymous:
        labels[ANONYMOUS_LABEL] = ""
    return {
        "CreatedAt": volume.created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Driver": volume.driver,
        "Labels": labels or None,
        "Mountpoint": services.mountpoint(volume),
        "Name": volume.name,
        "Options": volume.options or None,
        "Scope": "local",
    }


def _list(request):
    filters = query_filters(request, known=LIST_FILTERS)
    dangling = None
    for value in filters.get("dangling", []):
        if value.lower() not in ("true", "false", "1", "0"):
            raise BadRequest(f"invalid filter 'dangling={value}'")
        dangling = value.lower() in ("true", "1")
    found = []
    for volume in services.visible_volumes(request.user).order_by("name"):
        if filters.get("name") and not any(name_matches(v, volume.name) for v in filters["name"]):
            continue
        if filters.get("driver") and volume.driver not in filters["driver"]:
            continue
        shown = volume_json(volume)
        if not services.matches_labels_of(shown["Labels"] or {}, filters):
            continue
        if dangling is not None and bool(services.users_of(volume)) == dangling:
            continue
        found.append(shown)
    return JsonResponse({"Volumes": found, "Warnings": []})


async def _create(request):
    body = json_body(request, required=False)
    volume = await sync_to_async(services.create)(
        acting_user=request.user, name=body.get("Name") or None,
        driver=body.get("Driver") or "local", labels=body.get("Labels"),
        options=body.get("DriverOpts"), source="api")
    if volume.job is not None:
        await finish_jobs([volume.job.id])
    return JsonResponse(volume_json(volume), status=201)


def _inspect(request, name):
    return JsonResponse(volume_json(services.resolve(request.user, name)))


async def _remove(request, name):
    force = qbool(request, "force")
    try:
        volume = await sync_to_async(services.resolve)(request.user, name)
    except NotFound:
        if force:  # Docker: rm -f of a missing volume is not an error
            return HttpResponse(status=204)
        raise
    job = await sync_to_async(services.remove)(acting_user=request.user, volume=volume,
                                               force=force)
    await finish_jobs([job.id])
    return HttpResponse(status=204)


async def _prune(request):
    filters = query_filters(request, known=PRUNE_FILTERS)
    removed, reclaimed, made = await sync_to_async(services.prune_with_jobs)(
        acting_user=request.user, filters=filters, source="api")
    await finish_jobs([job.id for job in made])
    return JsonResponse({"VolumesDeleted": removed or None, "SpaceReclaimed": reclaimed})


volume_list = endpoint(GET=_list)
volume_create = endpoint(POST=_create)
volume_detail = endpoint(GET=_inspect, DELETE=_remove)
volume_prune = endpoint(POST=_prune)
