from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "panel.events"
    label = "dy_events"
