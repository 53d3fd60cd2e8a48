from django.apps import AppConfig


class DockerApiConfig(AppConfig):
    name = "panel.dockerapi"
    label = "dockerapi"
