from django.urls import path

from . import consumers

websocket_urlpatterns = [
    path("ws/team/", consumers.TeamConsumer.as_asgi()),
    path("ws/containers/<str:container_id>/", consumers.ContainerConsumer.as_asgi()),
]
