from django.urls import path

from . import exec_views, limits_views, process_views, stats_views, views, volume_views

app_name = "web"
urlpatterns = [
    path("", views.container_list, name="container-list"),
    path("containers/new/", views.container_new, name="container-new"),
    path("containers/<str:container_id>/", views.container_detail, name="container-detail"),
    path("containers/<str:container_id>/row/", views.container_row, name="container-row"),
    path("containers/<str:container_id>/details/", views.container_details,
         name="container-details"),
    path("containers/<str:container_id>/rename/", process_views.container_rename,
         name="container-rename"),
    path("containers/<str:container_id>/top/", process_views.container_top,
         name="container-top"),
    path("containers/<str:container_id>/exec/", exec_views.container_exec,
         name="container-exec"),
    path("containers/<str:container_id>/stats/", stats_views.container_stats,
         name="container-stats"),
    path("containers/<str:container_id>/update/", limits_views.container_update,
         name="container-update"),
    path("containers/<str:container_id>/<str:action>/", views.container_action,
         name="container-action"),
    path("jobs/", views.job_list, name="job-list"),
    path("jobs/<uuid:job_id>/row/", views.job_row, name="job-row"),
    path("images/", views.image_list, name="image-list"),
    path("volumes/", volume_views.volume_list, name="volume-list"),
    path("volumes/<str:name>/", volume_views.volume_detail, name="volume-detail"),
    path("volumes/<str:name>/remove/", volume_views.volume_remove, name="volume-remove"),
]
