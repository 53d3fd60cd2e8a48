from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "panel.teams"
    label = "teams"
