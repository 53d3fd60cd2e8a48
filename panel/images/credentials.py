"""Registry credentials per team, encrypted at rest; sealing of secrets that ride in a Job.

Secrets are Fernet tokens under a key derived from SECRET_KEY with HKDF, so neither the
database nor a Job payload ever holds a password in clear; the audit rows name the registry
and the user only.
"""

import base64
import functools
import json

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction

from panel.audit import services as audit
from panel.errors import NotFound
from panel.teams.services import check_permission

from .models import RegistryCredential

DOCKER_HUB = "docker.io"
_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "docker.io")


@functools.cache
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"dockyard registry credentials").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(data: dict) -> str:
    return _fernet(settings.SECRET_KEY).encrypt(json.dumps(data).encode()).decode()


def unseal(token: str) -> dict:
    try:
        return json.loads(_fernet(settings.SECRET_KEY).decrypt(token.encode()))
    except InvalidToken:
        # SECRET_KEY changed since: the stored secret is lost, the user logs in again.
        raise ValueError("stored registry credentials cannot be decrypted; log in again") \
            from None


def normalize_registry(address: str) -> str:
    """Docker's server address as a registry name: ``https://index.docker.io/v1/`` and
    friends are Docker Hub; a scheme and a path are dropped (``http://localhost:5000/v2/``)."""
    host = address.strip().split("://", 1)[-1].split("/", 1)[0].lower()
    return DOCKER_HUB if not host or host in _HUB_ALIASES else host


def store(team, registry: str, username: str, password: str, *, acting_user,
          source: str) -> RegistryCredential:
    """Keep (or replace) the team's login to a registry."""
    check_permission(acting_user, team, "manage")
    registry = normalize_registry(registry)
    with transaction.atomic():
        credential, created = RegistryCredential.objects.update_or_create(
            team=team, registry=registry,
            defaults={"username": username, "secret": seal({"password": password})})
        audit.record("registry.login", actor=acting_user, team=team, obj_type="registry",
                     obj_id=registry[:64], obj_repr=registry,
                     after={"username": username, "replaced": not created}, source=source)
    return credential


def remove(team, registry: str, *, acting_user, source: str) -> None:
    check_permission(acting_user, team, "manage")
    registry = normalize_registry(registry)
    with transaction.atomic():
        credential = RegistryCredential.objects.filter(team=team, registry=registry).first()
        if credential is None:
            raise NotFound(f"no stored login for {registry}")
        audit.record("registry.logout", actor=acting_user, team=team, obj_type="registry",
                     obj_id=registry[:64], obj_repr=registry,
                     before={"username": credential.username}, source=source)
        credential.delete()


def for_registry(team, registry: str) -> tuple[str, str] | None:
    """The team's (username, password) for a registry, or None."""
    credential = RegistryCredential.objects.filter(
        team=team, registry=normalize_registry(registry)).first()
    if credential is None:
        return None
    return credential.username, unseal(credential.secret)["password"]
