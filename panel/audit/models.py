from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """One action someone (or the system) took, with before/after data.

    Append-only (database triggers, panel/audit/triggers.py) and hash-chained (panel/audit/
    chain.py): each row's digest covers its content, its seq and the previous row's digest.
    `time` is set by `services.record` before the digest is computed. A deleted user or team
    leaves its id on the rows (no SET NULL: the rows cannot change, the digest covers the team
    id), so `event.team` / `event.actor` of such a row raise DoesNotExist: read them with
    select_related (which gives None) or use `team_id` and `actor_name`.
    """

    time = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
        db_constraint=False, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.DO_NOTHING,
                             db_constraint=False, related_name="+")
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


class AuditPrune(models.Model):
    """A retention prune: the rows up to `upto_seq` went to an archive and were deleted (the
    triggers allow DELETE only of those). Append-only like the log; `last_digest` is the
    pruned chain's last digest, where verification of the remaining rows starts."""

    upto_seq = models.PositiveBigIntegerField(unique=True)
    last_digest = models.CharField(max_length=64)
    count = models.PositiveBigIntegerField()
    archive = models.CharField(max_length=255)  # file name under <STATE_ROOT>/audit-archive/
    archive_sha256 = models.CharField(max_length=64)
    time = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-upto_seq"]

    def __str__(self):
        return f"audit prune up to {self.upto_seq} ({self.archive})"
