import hashlib

from django.conf import settings
from django.db import models


class Team(models.Model):
    """A group of users that owns containers, images, volumes, networks, builds and jobs.

    Its policy says what members may ask of the node beyond an ordinary Docker container
    (site admins always may; panel/containers/policy.py enforces it) and its quotas bound
    what its objects may hold (null = no limit)."""

    name = models.CharField(max_length=100, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    # Policy (all off by default: Docker's defaults only).
    allow_privileged = models.BooleanField(default=False, help_text="--privileged")
    allow_host_namespaces = models.BooleanField(
        default=False, help_text="--pid/--ipc/--uts/--network host, --userns host")
    allow_devices = models.BooleanField(default=False, help_text="--device")
    allow_extra_capabilities = models.BooleanField(
        default=False, help_text="--cap-add beyond Docker's default set")
    allow_unconfined_seccomp = models.BooleanField(
        default=False, help_text="--security-opt seccomp=unconfined or a custom profile")
    # Host path prefixes under which members may bind-mount (-v /host:/ctr); [] = none.
    bind_prefixes = models.JSONField(default=list, blank=True)
    allow_low_ports = models.BooleanField(
        default=False, help_text="publish host ports below 1024 (-p 80:80)")

    # Quotas, null = no limit.
    max_containers = models.PositiveIntegerField(null=True, blank=True)
    # Bytes: the sum of the team's containers' memory limits (-m).
    max_memory = models.PositiveBigIntegerField(null=True, blank=True)
    # CPUs: the sum of the team's containers' CPU limits (--cpus), in billionths (NanoCpus).
    max_nano_cpus = models.PositiveBigIntegerField(null=True, blank=True)
    # Bytes of image layers the team's images may hold (panel/images/quota.py).
    storage_quota = models.PositiveBigIntegerField(null=True, blank=True)

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        OPERATOR = "operator"
        VIEWER = "viewer"
        AUDITOR = "auditor"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OPERATOR)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="unique_membership")]

    def __str__(self):
        return f"{self.user} in {self.team} as {self.role}"


class ApiToken(models.Model):
    """A bearer token for the Docker API over TCP. Only its hash is stored."""

    PREFIX = "dy_"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    # The one team the token acts in (its holder's role there applies); null only for a
    # site admin's token, which acts everywhere.
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    def __str__(self):
        return f"{self.name} ({self.user})"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name: str, *, team=None, expires=None) -> tuple["ApiToken", str]:
        """Create a token (panel.teams.tokens.issue: checked and audited); the plain key is
        returned once and never stored."""
        from .tokens import issue

        return issue(user, name, team=team, expires=expires)
