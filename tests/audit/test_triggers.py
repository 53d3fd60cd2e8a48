"""The database refuses UPDATE and DELETE of audit rows and prune records (SQLite triggers)."""

import pytest
from django.db import IntegrityError, connection, transaction

from panel.audit.models import AuditEvent, AuditPrune

REFUSALS = [
    lambda row: AuditEvent.objects.filter(pk=row.pk).update(object_repr="forged"),
    lambda row: AuditEvent.objects.filter(pk=row.pk).delete(),
    lambda row: row.delete(),
    lambda row: _save_changed(row),
    lambda row: _sql("UPDATE audit_auditevent SET action = 'x' WHERE id = %s", [row.pk]),
    lambda row: _sql("DELETE FROM audit_auditevent WHERE id = %s", [row.pk]),
    lambda row: _sql("DELETE FROM audit_auditevent"),
]


def _save_changed(row):
    row.object_repr = "forged"
    row.save()


def _sql(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.parametrize("change", REFUSALS, ids=[
    "orm-update", "orm-delete", "instance-delete", "instance-save", "sql-update", "sql-delete",
    "sql-delete-all"])
def test_audit_rows_cannot_change(rows, change):
    original = rows[2].object_repr
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        change(rows[2])
    assert AuditEvent.objects.count() == 5
    assert AuditEvent.objects.get(pk=rows[2].pk).object_repr == original


def test_prune_records_cannot_change(rows):
    prune = AuditPrune.objects.create(upto_seq=1, last_digest=rows[0].digest, count=1,
                                      archive="a.jsonl.gz", archive_sha256="0" * 64)
    for change in (lambda: AuditPrune.objects.filter(pk=prune.pk).update(upto_seq=5),
                   prune.delete,
                   lambda: _sql("DELETE FROM audit_auditprune")):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            change()
    assert AuditPrune.objects.get().upto_seq == 1


def test_only_pruned_rows_may_be_deleted(rows):
    AuditPrune.objects.create(upto_seq=2, last_digest=rows[1].digest, count=2,
                              archive="a.jsonl.gz", archive_sha256="0" * 64)
    AuditEvent.objects.filter(seq__lte=2).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        AuditEvent.objects.filter(seq=3).delete()
    assert sorted(AuditEvent.objects.values_list("seq", flat=True)) == [3, 4, 5]


def test_team_and_user_deletion_leave_the_rows(rows, owner, team, verify):
    team_id = team.pk
    team.delete()
    owner.delete()
    row = AuditEvent.objects.select_related("team", "actor").get(seq=1)
    assert (row.team_id, row.team, row.actor, row.actor_name) == (team_id, None, None, "owner")
    assert verify() == (0, "audit log intact: 5 entries")
