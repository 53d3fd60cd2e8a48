"""The Docker Engine API's URLs (after the front server stripped /v1.NN).

Used only as `request.urlconf` by panel.dockerapi.asgi.DockerApiHandler; the panel's URLconf
does not include it, so the API is reachable only through the authenticating front server.
"""

from django.urls import path, re_path

from . import (
    auth,
    build,
    commit,
    containers,
    events,
    images,
    networks,
    pause,
    system,
    top,
    update,
    volumes,
)
from . import exec as exec_views
from . import stats as stats_views
from .common import not_found

urlpatterns = [
    path("_ping", system.ping),
    path("version", system.version),
    path("info", system.info),
    path("events", events.system_events),
    path("system/df", system.disk_usage),
    path("auth", auth.login),
    path("commit", commit.commit),
    path("build", build.build),
    path("build/prune", build.build_prune),
    path("containers/json", containers.container_list),
    path("containers/create", containers.container_create),
    path("containers/<str:ref>/json", containers.container_inspect),
    path("containers/<str:ref>/start", containers.container_start),
    path("containers/<str:ref>/stop", containers.container_stop),
    path("containers/<str:ref>/restart", pause.container_restart),
    path("containers/<str:ref>/pause", pause.container_pause),
    path("containers/<str:ref>/unpause", pause.container_unpause),
    path("containers/<str:ref>/kill", containers.container_kill),
    path("containers/<str:ref>/wait", containers.container_wait),
    path("containers/<str:ref>/logs", containers.container_logs),
    path("containers/<str:ref>/top", top.container_top),
    path("containers/<str:ref>/rename", top.container_rename),
    path("containers/<str:ref>/resize", containers.container_resize),
    path("containers/<str:ref>/stats", stats_views.container_stats),
    path("containers/<str:ref>/update", update.container_update),
    path("containers/<str:ref>/export", commit.container_export),
    path("containers/<str:ref>/exec", exec_views.container_exec),
    path("exec/<str:exec_id>/json", exec_views.exec_inspect),
    path("exec/<str:exec_id>/resize", exec_views.exec_resize),
    path("containers/<str:ref>", containers.container_delete),
    path("images/json", images.image_list),
    path("images/create", images.image_create),
    path("images/prune", images.image_prune),
    path("images/load", images.image_load),
    path("images/get", images.image_save),
    re_path(r"^images/(?P<name>.+)/json$", images.image_inspect),
    re_path(r"^images/(?P<name>.+)/history$", images.image_history),
    re_path(r"^images/(?P<name>.+)/push$", images.image_push),
    re_path(r"^images/(?P<name>.+)/tag$", images.image_tag),
    re_path(r"^images/(?P<name>.+)/get$", images.image_save),
    re_path(r"^images/(?P<name>.+)$", images.image_delete),
    path("volumes", volumes.volume_list),
    path("volumes/create", volumes.volume_create),
    path("volumes/prune", volumes.volume_prune),
    path("volumes/<str:name>", volumes.volume_detail),
    path("networks", networks.network_list),
    path("networks/create", networks.network_create),
    path("networks/prune", networks.network_prune),
    path("networks/<str:ref>/connect", networks.network_connect),
    path("networks/<str:ref>/disconnect", networks.network_disconnect),
    path("networks/<str:ref>", networks.network_detail),
    re_path(r"^(?P<path>.*)$", not_found),
]
