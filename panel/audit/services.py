from django.db import transaction

from .models import AuditEvent


def record(
    action: str,
    *,
    actor,
    team,
    obj_type: str,
    obj_id: str,
    obj_repr: str = "",
    before=None,
    after=None,
    source: str = "",
) -> AuditEvent:
    """Append one row to the hash-chained audit log, inside the caller's transaction."""
    with transaction.atomic():
        last = AuditEvent.objects.select_for_update().order_by("-id").only("digest").first()
        event = AuditEvent(
            actor=actor,
            actor_name=actor.get_username() if actor else "system",
            team=team,
            action=action,
            object_type=obj_type,
            object_id=obj_id,
            object_repr=obj_repr[:200],
            before=before,
            after=after,
            source=source,
            prev_digest=last.digest if last else "",
        )
        event.save()
        # The digest covers the saved time, so it is computed after the first save.
        event.digest = event.compute_digest()
        AuditEvent.objects.filter(pk=event.pk).update(digest=event.digest)
    return event


def verify_chain() -> int | None:
    """The id of the first row whose chain is broken, or None when the log is intact."""
    prev = ""
    for event in AuditEvent.objects.order_by("id").iterator():
        if event.prev_digest != prev or event.compute_digest() != event.digest:
            return event.id
        prev = event.digest
    return None
