"""The audit context of a websocket: who connects from where, bound around its connect.

The refusals a consumer's checks note while connecting (another team's object: `object.hidden`;
a role without the permission: `permission.denied`) carry the browser's address, its user
agent and the route, and are written when the connect is over.
"""

from asgiref.sync import sync_to_async

from panel.audit import context
from panel.audit import services as audit


class AuditedConnect:
    """Mixin for a Channels consumer: ``audit_route`` names it in the audit rows."""

    audit_route = ""

    async def websocket_connect(self, message):
        client = self.scope.get("client")
        headers = dict(self.scope.get("headers") or [])
        with context.bound("panel", address=client[0] if client else None,
                           user_agent=headers.get(b"user-agent", b"").decode("latin-1"),
                           route=f"WS {self.audit_route or self.scope.get('path', '')}"):
            try:
                await super().websocket_connect(message)
            finally:
                await sync_to_async(audit.flush)()

    async def close(self, *args, **kwargs):
        await sync_to_async(audit.flush)()  # a refusal is audited before the client hears of it
        await super().close(*args, **kwargs)
