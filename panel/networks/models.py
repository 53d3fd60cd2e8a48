from django.db import models


class Network(models.Model):
    """A container network (plumbing is built in the Networking issue; this is the record)."""

    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=255, unique=True)
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="networks")
    node = models.ForeignKey("nodes.Node", on_delete=models.PROTECT, related_name="networks")
    driver = models.CharField(max_length=32, default="bridge")
    scope = models.CharField(max_length=16, default="local")
    labels = models.JSONField(default=dict, blank=True)
    internal = models.BooleanField(default=False)
    attachable = models.BooleanField(default=False)
    ipam = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name
