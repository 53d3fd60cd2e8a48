"""Failed-login throttling, counted from the audit log.

Every failed sign-in (a wrong password, or a wrong second-factor code) is an `auth.login_failed`
audit row holding the username in its params and the client's address. An account with
LOGIN_MAX_FAILURES of them within LOGIN_WINDOW seconds (since its last successful sign-in),
or an address with LOGIN_ADDRESS_MAX_FAILURES, is refused without its password being checked,
and the refusal is itself audited (`auth.login_throttled`, outcome denied).
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from panel.audit import context
from panel.audit import services as audit
from panel.audit.models import AuditEvent


def request_address(request) -> str | None:
    """The client's address as the audit rows hold it (the bound context's, else the peer)."""
    bound = context.current()
    if bound is not None and bound.address:
        return bound.address
    return request.META.get("REMOTE_ADDR") or None


def _failures(since):
    return AuditEvent.objects.filter(action="auth.login_failed", time__gte=since)


def _retry_in(failures, limit: int, window: timedelta) -> int:
    """Minutes until fewer than `limit` of `failures` lie within the window."""
    times = list(failures.order_by("-time").values_list("time", flat=True)[:limit])
    free_at = times[-1] + window
    return max(1, -(-int((free_at - timezone.now()).total_seconds()) // 60))


def throttle(request, username: str) -> str | None:
    """Why a sign-in as `username` from this request's address is refused now (audited), or
    None when it may go ahead."""
    window = timedelta(seconds=settings.LOGIN_WINDOW)
    since = timezone.now() - window
    last_success = (AuditEvent.objects.filter(action="auth.login", actor_name=username,
                                              outcome="success", time__gte=since)
                    .order_by("-time").values_list("time", flat=True).first())
    account = _failures(max(since, last_success) if last_success else since).filter(
        params__username=username)
    address = request_address(request)
    by_address = _failures(since).filter(address=address) if address else None
    if account.count() >= settings.LOGIN_MAX_FAILURES:
        minutes = _retry_in(account, settings.LOGIN_MAX_FAILURES, window)
        reason, message = "account", (
            f"Too many failed sign-ins for this account. Try again in {minutes} minute"
            f"{'s' if minutes > 1 else ''}.")
    elif by_address is not None and by_address.count() >= settings.LOGIN_ADDRESS_MAX_FAILURES:
        minutes = _retry_in(by_address, settings.LOGIN_ADDRESS_MAX_FAILURES, window)
        reason, message = "address", (
            f"Too many failed sign-ins from your address. Try again in {minutes} minute"
            f"{'s' if minutes > 1 else ''}.")
    else:
        return None
    audit.record("auth.login_throttled", actor=named_user(username), team=None, obj_type="user",
                 obj_id=username[:64], obj_repr=username, outcome="denied",
                 params={"username": username, "throttled": reason})
    return message


def named_user(username: str):
    """The user a sign-in names, if any (the audit row's actor)."""
    return get_user_model().objects.filter(username=username).first()
