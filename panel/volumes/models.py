from django.db import models


class Volume(models.Model):
    """A named volume (storage is built in the Storage issue; this is the record)."""

    name = models.CharField(max_length=255, unique=True)
    team = models.ForeignKey("teams.Team", on_delete=models.PROTECT, related_name="volumes")
    node = models.ForeignKey("nodes.Node", on_delete=models.PROTECT, related_name="volumes")
    driver = models.CharField(max_length=64, default="local")
    labels = models.JSONField(default=dict, blank=True)
    options = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name
