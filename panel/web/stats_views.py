"""The container page's Stats card: the numbers its charts draw (static/stats.js polls them)."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse

from panel.containers.stats import stats_json, summary

from .views import _get_container


@login_required
def container_stats(request, container_id):
    """``docker stats``'s counters of a container the user may see (its page's permission);
    the browser turns two of them into CPU % and rates."""
    container = _get_container(request.user, container_id)
    return JsonResponse(summary(stats_json(container)))
