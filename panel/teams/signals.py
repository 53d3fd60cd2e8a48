"""Audit rows for sign-ins and sign-outs (Django's auth signals), never with a password.

- `auth.login` (success): a user signed in (after the second factor, if it has one);
- `auth.logout` (success);
- `auth.login_failed` (failed): a wrong username or password, or a wrong second-factor code
  (`step: "code"`); the username tried is in params, which panel.teams.login counts.
"""

import contextlib

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from panel.audit import context
from panel.audit import services as audit

from .login import named_user


@contextlib.contextmanager
def _request_context(request):
    """The request's audit context: the bound one, else one made from the request."""
    if context.current() is not None or request is None:
        yield
        return
    with context.bound("panel", address=request.META.get("REMOTE_ADDR"),
                       user_agent=request.META.get("HTTP_USER_AGENT", "")):
        yield


def _record(action, request, user, username, outcome="success", **params):
    with _request_context(request):
        audit.record(action, actor=user, team=None, obj_type="user",
                     obj_id=str(user.pk) if user else username[:64], obj_repr=username,
                     outcome=outcome, params={"username": username, **params})


@receiver(user_logged_in, dispatch_uid="dockyard-audit-login")
def audit_login(sender, request, user, **kwargs):
    _record("auth.login", request, user, user.get_username(),
            two_factor=getattr(user, "otp_device", None) is not None)


@receiver(user_logged_out, dispatch_uid="dockyard-audit-logout")
def audit_logout(sender, request, user, **kwargs):
    if user is not None:
        _record("auth.logout", request, user, user.get_username())


@receiver(user_login_failed, dispatch_uid="dockyard-audit-login-failed")
def audit_login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))[:150]
    _record("auth.login_failed", request, named_user(username), username, outcome="failed",
            step=credentials.get("step", "password"))
