"""Every row takes the next seq, computed (with its time and digest) before its INSERT."""

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction

from panel.audit import services as audit
from panel.audit.models import AuditEvent


def test_rows_are_complete_at_insert(rows):
    stored = list(AuditEvent.objects.order_by("seq"))
    assert [row.seq for row in stored] == [1, 2, 3, 4, 5]
    assert [row.prev_digest for row in stored] == [""] + [row.digest for row in stored[:-1]]
    for made, row in zip(rows, stored, strict=True):
        assert (made.time, made.digest) == (row.time, row.digest)


def test_writers_are_serialized():
    # SQLite: every transaction takes the write lock at BEGIN, so two writers cannot read
    # the same last seq (PostgreSQL: record() locks the table in EXCLUSIVE mode).
    assert settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_a_taken_seq_is_refused(rows, owner, team, monkeypatch):
    # Were the lock ever bypassed, the second writer of a seq fails instead of forking the chain.
    monkeypatch.setattr(audit, "_chain_end", lambda: (4, rows[3].digest))
    with pytest.raises(IntegrityError), transaction.atomic():
        audit.record("thing.do", actor=owner, team=team, obj_type="thing", obj_id="dup")
    assert AuditEvent.objects.count() == 5


def test_interleaved_transactions_continue_the_chain(rows, owner, team, verify):
    with transaction.atomic():
        audit.record("a.b", actor=owner, team=team, obj_type="t", obj_id="6")
        with pytest.raises(ValueError), transaction.atomic():
            audit.record("a.c", actor=owner, team=team, obj_type="t", obj_id="rolled back")
            raise ValueError
        audit.record("a.d", actor=owner, team=team, obj_type="t", obj_id="7")
    assert list(AuditEvent.objects.order_by("seq").values_list("seq", "object_id"))[5:] == [
        (6, "6"), (7, "7")]
    assert verify() == (0, "audit log intact: 7 entries")
