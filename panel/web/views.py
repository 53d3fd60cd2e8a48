"""The browser panel: thin views over the services; every object outside the user's teams is 404."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from panel.containers import console
from panel.containers import history as container_history
from panel.containers import security as container_security
from panel.containers import services as containers
from panel.containers.models import Container
from panel.containers.status import command_of, status_text
from panel.errors import DockyardError, NotFound, message_of
from panel.images.models import ImageTag
from panel.images.services import visible_images
from panel.jobs.services import resolve as resolve_job
from panel.jobs.services import visible_jobs
from panel.teams.models import Membership
from panel.teams.services import has_permission, hidden, team_ids_with, teams_of

from . import logs
from . import rows as container_rows
from .forms import RunForm
from .templatetags.container_network import request_host

JOBS_PER_PAGE = 100
def _get_container(user, container_id: str) -> Container:
    found = containers.visible_containers(user).select_related("team", "image", "node")
    try:
        return found.get(pk=container_id)
    except Container.DoesNotExist:
        raise _hidden_container(user, container_id) from None


def _hidden_container(user, container_id: str) -> Http404:
    """The 404 for a container the user may not see (audited when it is another team's)."""
    refusal = hidden(user, f"No such container: {container_id}", obj_type="container",
                     ref=container_id, elsewhere=Container.objects.filter(pk=container_id))
    return Http404(refusal.message)


def _live_context(request) -> dict:
    """A Team column only for those who see more than one team."""
    user = request.user
    if user.is_superuser:
        return {"show_team": teams_of(user).count() > 1}
    return {"show_team": len(team_ids_with(user, "view")) > 1}


@login_required
def container_list(request):
    rows, configs = container_rows.load(containers.visible_containers(request.user))
    live = _live_context(request)
    return render(request, "web/container_list.html", {
        "count": len(rows),
        "running": sum(1 for row in rows if row.is_running),
        "rows_html": mark_safe(container_rows.render(rows, configs, show_team=live["show_team"],
                                                     host=request_host(request))),
        **live,
    })


@login_required
def container_row(request, container_id):
    """One row of the list, fetched by the live view when a container changes."""
    found = containers.visible_containers(request.user).filter(pk=container_id)
    rows, configs = container_rows.load(found)
    if not rows:
        raise _hidden_container(request.user, container_id)
    show_team = _live_context(request)["show_team"]
    return HttpResponse(container_rows.render(rows, configs, show_team=show_team,
                                              host=request_host(request)))


def _image_choices(user) -> list[str]:
    tags = ImageTag.objects.filter(image__in=visible_images(user)).order_by("repository", "tag")
    return [str(tag) for tag in tags]


@login_required
def container_new(request):
    teams = list(teams_of(request.user).order_by("name"))
    default = Membership.objects.filter(user=request.user).order_by("id").first()
    form = RunForm(request.POST or None, user=request.user, teams=teams,
                   default_team=default.team if default else None)
    if request.method == "POST" and form.is_valid():
        container = form.run()
        if container is not None:
            url = reverse("web:container-detail", args=[container.id])
            if form.cleaned_data["detach"]:
                messages.success(request, f"Container {container.name} is starting in the background.")
                return redirect(url)
            if form.cleaned_data.get("tty") and form.cleaned_data.get("open_stdin"):
                return redirect(f"{url}#terminal")
            return redirect(f"{url}?follow=1#log")
    return render(request, "web/container_new.html",
                  {"form": form, "image_choices": _image_choices(request.user)})


def _detail_context(request, container: Container) -> dict:
    image_config = container.image.run_config
    return {
        "c": container,
        "command_text": command_of(container, image_config),
        "status_text": status_text(container),
        "can_operate": has_permission(request.user, container.team, "operate"),
        "history": container_history.for_container(container.id),
        "security": container_security.describe(container),
    }


@login_required
def container_detail(request, container_id):
    container = _get_container(request.user, container_id)
    chunks, offset, truncated = logs.read_tail(container.id)
    return render(request, "web/container_detail.html", {
        **_detail_context(request, container),
        "log_chunks": chunks,
        "log_offset": offset,
        "log_truncated": truncated,
        "follow": request.GET.get("follow") == "1",
        **_terminal_context(request, container),
    })


def _terminal_context(request, container: Container) -> dict:
    """A browser terminal instead of the log for containers made with a TTY and open stdin."""
    tty, open_stdin = console.tty_and_stdin(container)
    if not (tty and open_stdin):
        return {}
    return {"terminal_path": f"/ws/terminal/container/{container.id}/",
            "terminal_readonly": not console.may_write(request.user, container)}


@login_required
def container_details(request, container_id):
    """The details panel alone, re-fetched by the page when the container's state changes."""
    container = _get_container(request.user, container_id)
    return render(request, "web/_container_details.html", _detail_context(request, container))


_ACTIONS = {
    "start": (containers.start, "Start requested for {name}."),
    "stop": (containers.stop, "Stop requested for {name}."),
    "kill": (containers.kill, "Kill requested for {name}."),
    "remove": (containers.remove, "Removing {name}."),
    "pause": (containers.pause, "Pause requested for {name}."),
    "unpause": (containers.unpause, "Unpause requested for {name}."),
    "restart": (containers.restart, "Restart requested for {name}."),
}


@login_required
@require_POST
def container_action(request, container_id, action):
    if action not in _ACTIONS:
        raise Http404("No such action")
    container = _get_container(request.user, container_id)
    service, done = _ACTIONS[action]
    kwargs = {"force": True} if action == "remove" and request.POST.get("force") else {}
    try:
        service(acting_user=request.user, container=container, source="panel", **kwargs)
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        return redirect("web:container-detail", container_id=container.id)
    messages.success(request, done.format(name=container.name))
    if action == "remove":
        return redirect("web:container-list")
    return redirect("web:container-detail", container_id=container.id)


def _jobs(user):
    return visible_jobs(user).select_related("actor", "team")


def _link_targets(jobs) -> None:
    """Mark the jobs whose container still exists (one query), so only those are links."""
    ids = {job.target_id for job in jobs if job.target_type == "container"}
    existing = set(Container.objects.filter(id__in=ids).values_list("id", flat=True))
    for job in jobs:
        job.target_exists = job.target_id in existing


@login_required
def job_list(request):
    page = Paginator(_jobs(request.user), JOBS_PER_PAGE).get_page(request.GET.get("page"))
    jobs = list(page.object_list)
    _link_targets(jobs)
    return render(request, "web/job_list.html", {"page": page, "jobs": jobs,
                                                 "now": timezone.now(), **_live_context(request)})


@login_required
def job_row(request, job_id):
    try:
        job = resolve_job(request.user, job_id)
    except NotFound as exc:
        raise Http404(exc.message) from None
    _link_targets([job])
    return render(request, "web/_job_row.html", {"job": job, "now": timezone.now(),
                                                 **_live_context(request)})
