"""note_refusal/flush: denied rows that outlive the transaction the refusal rolled back."""

import pytest
from django.db import transaction

from panel.audit import context
from panel.audit import services as audit
from panel.audit.models import AuditEvent


class Refused(Exception):
    pass


def test_refusal_survives_a_rolled_back_transaction(owner, team):
    with context.bound("api", address="10.1.2.3", user_agent="docker/27",
                       route="POST /containers/{ref}/start"):
        with pytest.raises(Refused), transaction.atomic():
            audit.note_refusal("permission denied", actor=owner, team=team,
                               action="permission.denied", obj_type="container",
                               obj_id="abc", params={"permission": "operate"})
            raise Refused
        assert not AuditEvent.objects.exists()  # pending on the context
        audit.flush()
        audit.flush()  # written once
    row = AuditEvent.objects.get()
    assert (row.action, row.outcome, row.source, row.address, row.user_agent) == (
        "permission.denied", "denied", "api", "10.1.2.3", "docker/27")
    assert row.params == {"route": "POST /containers/{ref}/start", "permission": "operate"}
    assert row.result == {"message": "permission denied"}


def test_refusal_without_context_is_written_in_the_transaction(owner, team):
    audit.note_refusal("quota exceeded", actor=owner, team=team, action="quota.exceeded")
    row = AuditEvent.objects.get()
    assert (row.outcome, row.source, row.params) == ("denied", "", {})


@pytest.mark.django_db(transaction=True)
def test_refusal_outside_a_transaction_is_written_at_once(owner, team):
    with context.bound("panel", route="web:team-detail"):
        audit.note_refusal("not found", actor=owner, team=team, action="object.hidden")
        assert AuditEvent.objects.filter(action="object.hidden", outcome="denied").exists()
        assert not context.current().refusals
