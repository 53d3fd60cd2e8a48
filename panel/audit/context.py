"""Who is asking, from where and through which interface: the audit rows' request context.

Each interface binds one `AuditContext` around the work it does for a request: the panel's
middleware (panel/audit/middleware.py), the Docker API's endpoint wrapper and front server,
the websocket consumers, management commands and the worker's jobs. `record()` reads it.

Refusals (a permission, policy or quota check that says no) usually happen inside a
transaction that the refusal itself rolls back, so `note_refusal` keeps them on the context
and the interface writes them with `flush()` once the request's transactions are over.
Outside any transaction (or without a bound context) the row is written at once.
"""

import contextlib
from contextvars import ContextVar
from dataclasses import dataclass, field

INTERFACES = ("panel", "api", "command", "system")


@dataclass
class AuditContext:
    interface: str
    address: str | None = None
    user_agent: str = ""
    route: str = ""  # what was asked: "POST /containers/{ref}/start", "web:container-action"
    refusals: list[dict] = field(default_factory=list)


_current: ContextVar[AuditContext | None] = ContextVar("dockyard_audit_context", default=None)


def current() -> AuditContext | None:
    return _current.get()


@contextlib.contextmanager
def bound(interface: str, *, address: str | None = None, user_agent: str = "",
          route: str = ""):
    """Bind a context for the duration of a request (sync or async code alike); the caller
    calls `flush()` (sync) before leaving it."""
    context = AuditContext(interface=interface, address=address or None,
                           user_agent=(user_agent or "")[:300], route=route)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
