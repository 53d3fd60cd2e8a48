from django.apps import AppConfig


class VolumesConfig(AppConfig):
    name = "panel.volumes"
    label = "volumes"
