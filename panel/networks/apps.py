from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "panel.networks"
    label = "networks"
