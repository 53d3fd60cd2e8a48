import hashlib
import json

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One action someone (or the system) took, with before/after data.

    Rows form a hash chain: each row's digest covers its content and the previous
    row's digest, so an edited or deleted row breaks the chain (see verify_chain).
    """

    time = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=64, db_index=True)
    object_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # The interface: panel, api (the Docker API), command (manage.py), system (the worker).
    source = models.CharField(max_length=32, blank=True, db_index=True)
    address = models.GenericIPAddressField(null=True, blank=True)  # the client's
    user_agent = models.CharField(max_length=300, blank=True)

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        DENIED = "denied"  # a permission, policy or quota refusal
        FAILED = "failed"

    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS,
                               db_index=True)
    params = models.JSONField(null=True, blank=True)  # the request's parameters, secrets redacted
    job = models.UUIDField(null=True, blank=True, db_index=True)  # the job it started or reports
    result = models.JSONField(null=True, blank=True)  # a finished job's result / error
    # Position in the chain (1, 2, ...): a gap names a missing row.
    seq = models.PositiveBigIntegerField(unique=True, null=True)
    prev_digest = models.CharField(max_length=64, blank=True)
    digest = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action} {self.object_repr}"

    def compute_digest(self) -> str:
        body = json.dumps(
            [
                self.prev_digest,
                self.time.isoformat() if self.time else "",
                self.actor_name,
                self.team_id,
                self.action,
                self.object_type,
                self.object_id,
                self.object_repr,
                self.before,
                self.after,
                self.source,
            ],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()
