from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "panel.teams"
    label = "teams"

    def ready(self):
        from . import signals  # noqa: F401 - audit rows for sign-ins and sign-outs
