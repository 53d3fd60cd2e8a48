from django.apps import AppConfig


class ContainersConfig(AppConfig):
    name = "panel.containers"
    label = "containers"
