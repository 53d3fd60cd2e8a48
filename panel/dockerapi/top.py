"""GET /containers/{id}/top and POST /containers/{id}/rename: thin views over the services
(the processes come from the node's runtime, see panel.containers.processes)."""

from django.http import HttpResponse, JsonResponse

from panel.containers import processes, services

from .common import endpoint

size_rw = processes.size_rw  # used by shapes for `ps -s` / `inspect -s`


def _top(request, ref):
    container = services.resolve(request.user, ref)
    return JsonResponse(processes.processes(container, request.GET.get("ps_args", "")))


def _rename(request, ref):
    container = services.resolve(request.user, ref)
    services.rename(acting_user=request.user, container=container,
                    new_name=request.GET.get("name", ""), source="api")
    return HttpResponse(status=204)


container_top = endpoint(GET=_top)
container_rename = endpoint(POST=_rename)
