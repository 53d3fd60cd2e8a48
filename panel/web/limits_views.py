"""The container page's Limits card: POST new limits (`docker update` through the services)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from panel.containers import services as containers
from panel.errors import DockyardError, message_of

from .run_sections.resources import ResourcesSection
from .views import _get_container


@login_required
@require_POST
def container_update(request, container_id):
    container = _get_container(request.user, container_id)
    form = ResourcesSection(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else field
            messages.error(request, f"{label}: {' '.join(errors)}")
        return redirect("web:container-detail", container_id=container.id)
    body: dict = {}
    form.apply(form.cleaned_data, {}, body)
    if not body:
        messages.error(request, "Nothing to change: enter at least one new limit.")
        return redirect("web:container-detail", container_id=container.id)
    try:
        containers.update(acting_user=request.user, container=container, resources=body,
                          source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
    else:
        messages.success(request, f"Update of the limits of {container.name} requested.")
    return redirect(reverse("web:container-detail", args=[container.id]) + "#limits")
