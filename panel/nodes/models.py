from django.db import models


class Node(models.Model):
    """A host with a privileged worker; jobs for its resources go to queue node.<name>."""

    name = models.CharField(max_length=63, unique=True)
    hostname = models.CharField(max_length=255, blank=True)
    state_root = models.CharField(max_length=255)
    last_seen = models.DateTimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    @property
    def queue(self) -> str:
        return f"node.{self.name}"
