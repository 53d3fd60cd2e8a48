"""API tokens for the Docker API over TCP: issue, authenticate, revoke; who a request acts as.

A client sends `Authorization: Bearer <key>` (the docker CLI from `HttpHeaders` in its
config.json). A token belongs to a user and is scoped to one team where that user is a member
(only a site admin's token may be unscoped): requests with it act in that team only, with
the user's role there (panel.teams.services honours `user.token_team_id`). Only the key's
hash is stored; the key is shown once, when the token is issued.
"""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from panel.audit import context
from panel.audit import services as audit
from panel.errors import InvalidParameter

from .models import ApiToken, Membership

# `last_used` is written at most this often per token (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    """Who a Docker API request acts as: a user, and the team its token is scoped to (None:
    everywhere the user may act, i.e. a site admin's unscoped token or the unix socket)."""

    user_id: int
    team_id: int | None = None

    def load_user(self):
        """The active user, confined to the token's team; DoesNotExist if gone or inactive."""
        user = get_user_model().objects.get(pk=self.user_id, is_active=True)
        user.token_team_id = self.team_id
        return user


def _token_audit_row(action: str, token: ApiToken, actor) -> None:
    audit.record(action, actor=actor, team=token.team, obj_type="token", obj_id=str(token.pk),
                 obj_repr=token.name,
                 after={"user": token.user.get_username(),
                        "team": token.team.name if token.team else None,
                        "expires": token.expires.isoformat() if token.expires else None})


def issue(user, name: str, *, team=None, expires=None, actor=None) -> tuple[ApiToken, str]:
    """A new token of `user` acting in `team` until `expires` (None: no expiry); returns the
    token and its key, which is never stored. `actor` (default: the user) is audited."""
    name = (name or "").strip()
    if not name:
        raise InvalidParameter("a token needs a name")
    if team is None and not user.is_superuser:
        raise InvalidParameter("a token must be scoped to one of your teams")
    if (team is not None and not user.is_superuser
            and not Membership.objects.filter(user=user, team=team).exists()):
        raise PermissionDenied(f"{user.get_username()} is not a member of team {team.name}")
    if expires is not None and expires <= timezone.now():
        raise InvalidParameter("a token's expiry must be in the future")
    key = ApiToken.PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(user=user, team=team, name=name,
                                        key_hash=ApiToken.hash_key(key), expires=expires)
        _token_audit_row("token.create", token, actor or user)
    return token, key


def revoke(actor, token: ApiToken) -> None:
    """Revoke a token: its owner may, and so may a site admin."""
    if token.user_id != actor.pk and not actor.is_superuser:
        raise PermissionDenied("You may revoke only your own tokens.")
    if token.revoked:
        return
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).update(revoked=True)
        token.revoked = True
        _token_audit_row("token.revoke", token, actor)


def authenticate(key: str, *, address: str | None = None,
                 user_agent: str = "") -> tuple[Caller | None, str]:
    """The caller a key stands for, or None and why not (for the 401's message). A refused
    key is a failed sign-in: audited (`auth.token_refused`) with the client's address."""
    token = (ApiToken.objects.select_related("user", "team")
             .filter(key_hash=ApiToken.hash_key(key)).first())
    now = timezone.now()
    if token is None:
        problem = "invalid API token"
    elif token.revoked:
        problem = f"API token {token.name!r} has been revoked"
    elif token.expires and token.expires <= now:
        problem = f"API token {token.name!r} expired on {token.expires:%Y-%m-%d %H:%M} UTC"
    elif not token.user.is_active:
        problem = f"the account of API token {token.name!r} is disabled"
    else:
        if token.last_used is None or now - token.last_used >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        return Caller(token.user_id, token.team_id), ""
    with context.bound("api", address=address, user_agent=user_agent, route="authenticate"):
        audit.record("auth.token_refused", actor=token.user if token else None,
                     team=token.team if token else None, obj_type="token",
                     obj_id=str(token.pk) if token else "", obj_repr=token.name if token else "",
                     outcome="failed", params={"reason": problem})
    return None, problem


def site_admin_caller() -> Caller | None:
    """The unix socket's caller: it is root-only, so root acts as the first active site admin."""
    user_id = (get_user_model().objects.filter(is_superuser=True, is_active=True)
               .order_by("pk").values_list("pk", flat=True).first())
    return Caller(user_id) if user_id is not None else None


def status(token: ApiToken, now) -> str:
    if token.revoked:
        return "revoked"
    if token.expires and token.expires <= now:
        return "expired"
    return "active"


def tokens_of(user):
    return ApiToken.objects.filter(user=user).select_related("team").order_by("-created")
