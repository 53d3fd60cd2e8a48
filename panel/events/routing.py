from django.urls import path

from . import audit_consumer, consumers, exec_terminal, terminal

websocket_urlpatterns = [
    path("ws/team/", consumers.TeamConsumer.as_asgi()),
    path("ws/containers/<str:container_id>/", consumers.ContainerConsumer.as_asgi()),
    path("ws/terminal/<str:kind>/<str:target_id>/", terminal.TerminalConsumer.as_asgi()),
    path("ws/exec/<str:exec_id>/", exec_terminal.ExecTerminalConsumer.as_asgi()),
    path("ws/jobs/<uuid:job_id>/", consumers.JobConsumer.as_asgi()),
    path("ws/audit/", audit_consumer.AuditConsumer.as_asgi()),
]
