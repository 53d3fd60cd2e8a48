import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created = models.DateTimeField(auto_now_add=True)
    # Bytes of image layers the team's images may hold (panel/images/quota.py); null = no limit.
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
    def issue(cls, user, name: str, expires=None) -> tuple["ApiToken", str]:
        """Create a token; the plain key is returned once and never stored."""
        key = cls.PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, key_hash=cls.hash_key(key), expires=expires)
        return token, key

    @classmethod
    def authenticate(cls, key: str):
        """The user a valid key belongs to, or None."""
        try:
            token = cls.objects.select_related("user").get(key_hash=cls.hash_key(key), revoked=False)
        except cls.DoesNotExist:
            return None
        now = timezone.now()
        if token.expires and token.expires <= now:
            return None
        if not token.user.is_active:
            return None
        cls.objects.filter(pk=token.pk).update(last_used=now)
        return token.user
