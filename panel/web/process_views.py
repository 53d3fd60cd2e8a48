"""The container page's rename form and its Processes section (docker rename / docker top)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from panel.containers import processes
from panel.containers import services as containers
from panel.errors import DockyardError, message_of

from .views import _get_container

PS_PRESETS = (("", "docker top (-ef)"), ("aux", "aux"), ("-o pid,user,stat,etime,args",
                                                         "pid,user,stat,etime,args"))


@login_required
@require_POST
def container_rename(request, container_id):
    container = _get_container(request.user, container_id)
    old = container.name
    new = request.POST.get("name", "").strip()
    try:
        renamed = containers.rename(acting_user=request.user, container=container, new_name=new,
                                    source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
    else:
        messages.success(request, f"Renamed {old} to {renamed.name}.")
    return redirect("web:container-detail", container_id=container.id)


@login_required
def container_top(request, container_id):
    """The Processes table alone (fetched by the container page and its Refresh button)."""
    container = _get_container(request.user, container_id)
    ps_args = request.GET.get("ps_args", "")
    context = {"c": container, "ps_args": ps_args, "presets": PS_PRESETS, "top": None,
               "error": ""}
    if container.is_running:
        try:
            context["top"] = processes.processes(container, ps_args)
        except DockyardError as exc:
            context["error"] = exc.message
    return render(request, "web/_container_top.html", context)
