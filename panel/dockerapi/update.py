"""POST /containers/{id}/update (`docker update`): a thin view over services.update, which
waits for the node's job so that a following `docker inspect` shows the new values."""

from asgiref.sync import sync_to_async
from django.http import JsonResponse

from panel.containers import services
from panel.errors import DockyardError

from .common import endpoint, json_body
from .pause import _run


async def _update(request, ref):
    body = json_body(request)
    container = await sync_to_async(services.resolve)(request.user, ref)
    job = await sync_to_async(services.update)(acting_user=request.user, container=container,
                                               resources=body, source="api")
    await _run(job, failed=DockyardError)
    return JsonResponse({"Warnings": []})


container_update = endpoint(POST=_update)
