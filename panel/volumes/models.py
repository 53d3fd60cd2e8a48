from django.db import models


class Volume(models.Model):
    """A volume of a node's store (``<state root>/volumes/<name>/_data``; see
    panel/volumes/services.py). ``anonymous``: made for one container (``-v /path``, the
    image's VOLUME), named with 64 hex characters and removed by ``docker rm -v``."""

    name = models.CharField(max_length=255, unique=True)
    team = models.ForeignKey("teams.Team", on_delete=models.PROTECT, related_name="volumes")
    node = models.ForeignKey("nodes.Node", on_delete=models.PROTECT, related_name="volumes")
    driver = models.CharField(max_length=64, default="local")
    labels = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    anonymous = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name
