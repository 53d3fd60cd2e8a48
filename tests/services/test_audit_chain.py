from panel.audit import services as audit
from panel.audit.models import AuditEvent


def test_chain_verifies_and_detects_tampering(owner, team):
    for n in range(3):
        audit.record("thing.do", actor=owner, team=team, obj_type="thing", obj_id=str(n))
    assert audit.verify_chain() is None
    second = AuditEvent.objects.order_by("id")[1]
    AuditEvent.objects.filter(pk=second.pk).update(object_id="forged")
    assert audit.verify_chain() == second.pk


def test_deleted_row_breaks_the_chain(owner, team):
    for n in range(3):
        audit.record("thing.do", actor=owner, team=team, obj_type="thing", obj_id=str(n))
    rows = list(AuditEvent.objects.order_by("id"))
    rows[1].delete()
    assert audit.verify_chain() == rows[2].pk
