"""ws/audit/?<filters>&after=<id>: the audit page's live tail.

Joins `audit.all` (site admins) or `audit.team.<id>` for each team the user may audit, where
panel.events.publish.audit_event announces each new row. Every announced row is read again
and sent only if the user may still see it and it matches the page's filters (the same
AuditFilter as the page), as its fields plus the table row's HTML. On connecting, the rows
after `after` (the newest the page shows) come first, so a row recorded between the page's
render and the subscription, or while reconnecting, is not lost.
"""

from channels.db import database_sync_to_async
from django.http import QueryDict

from .auditing import AuditedConnect
from .consumers import CLOSE_NOT_FOUND, CLOSE_UNAUTHENTICATED, _StateForwarder

CLOSE_INVALID = 4400  # filters the page would not accept either
CATCH_UP_LIMIT = 100  # the page's length


@database_sync_to_async
def _subscription(user, query: QueryDict):
    """(groups, filter) for the user, or None when it may not audit anywhere (a refusal)."""
    from panel.audit import queries
    from panel.teams.services import is_site_admin

    if not queries.may_audit(user):
        queries.note_refused_reader(user)
        return None
    if is_site_admin(user):
        groups = ["audit.all"]
    else:
        groups = [f"audit.team.{team_id}"
                  for team_id in queries.auditable_teams(user).values_list("id", flat=True)]
    return groups, queries.AuditFilter(query, user=user)


def _message(event) -> dict:
    from panel.audit.queries import as_record
    from panel.web.audit_views import render_row

    return {"type": "audit.row", **as_record(event), "html": render_row(event)}


@database_sync_to_async
def _rows(filters, *, event_id: int | None = None, after: int = 0) -> list[dict]:
    """The one announced row, or the rows after `after` (oldest first), that the user may
    see and the filters select."""
    events = filters.events().select_related("team")
    if event_id is not None:
        events = events.filter(pk=event_id)
    else:
        events = events.filter(pk__gt=after).order_by("-id")[:CATCH_UP_LIMIT]
    return [_message(event) for event in reversed(list(events))]


class AuditConsumer(AuditedConnect, _StateForwarder):
    audit_route = "/ws/audit/"

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        query = QueryDict(self.scope.get("query_string", b"").decode())
        subscription = await _subscription(user, query)
        if subscription is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        groups, self.filters = subscription
        if not await database_sync_to_async(self.filters.is_valid)():
            await self.close(code=CLOSE_INVALID)
            return
        # Join first, then catch up: a row in between is sent twice (the page skips it),
        # never lost.
        await self.join(groups)
        await self.accept()
        after = query.get("after", "")
        for row in await _rows(self.filters, after=int(after) if after.isdigit() else 0):
            await self.send_json(row)

    async def audit_event(self, message):
        for row in await _rows(self.filters, event_id=message["id"]):
            await self.send_json(row)
