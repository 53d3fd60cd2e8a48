"""The container page's Exec form: create an exec instance; the browser then opens its
terminal (ws/exec/<id>/, panel/events/exec_terminal.py), which starts it."""

import shlex

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from panel.containers import execs
from panel.errors import DockyardError

from .views import _get_container


@login_required
@require_POST
def container_exec(request, container_id):
    container = _get_container(request.user, container_id)
    try:
        cmd = shlex.split(request.POST.get("command", ""))
    except ValueError as exc:
        return JsonResponse({"error": f"Command: {exc}"}, status=400)
    tty = request.POST.get("tty") in ("on", "1", "true")
    config = {"Cmd": cmd, "User": request.POST.get("user", "").strip(),
              "WorkingDir": request.POST.get("workdir", "").strip(), "Tty": tty,
              "AttachStdin": True, "AttachStdout": True, "AttachStderr": True}
    try:
        instance = execs.create(acting_user=request.user, container=container, config=config,
                                source="panel")
    except PermissionDenied as exc:
        return JsonResponse({"error": str(exc) or "permission denied"}, status=403)
    except DockyardError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    return JsonResponse({"id": instance.id, "tty": tty,
                         "ws": f"/ws/exec/{instance.id}/",
                         "detail": reverse("web:container-detail", args=[container.id])},
                        status=201)
