from django.apps import AppConfig


class ImagesConfig(AppConfig):
    name = "panel.images"
    label = "images"
