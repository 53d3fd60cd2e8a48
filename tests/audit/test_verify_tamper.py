"""audit_verify names the first altered, missing or reordered entry (raw SQL tampering)."""

from panel.audit.models import AuditEvent

from .conftest import columns


def test_intact_log(rows, verify):
    assert verify() == (0, "audit log intact: 5 entries")


def test_edited_row(rows, tamper, verify):
    tamper("UPDATE audit_auditevent SET object_repr = 'forged' WHERE seq = 3")
    assert verify() == (1, "audit log: entry 3 was altered")


def test_edited_json_and_address(rows, tamper, verify):
    tamper("UPDATE audit_auditevent SET address = '10.0.0.9' WHERE seq = 4")
    assert verify() == (1, "audit log: entry 4 was altered")


def test_deleted_middle_row(rows, tamper, verify):
    tamper("DELETE FROM audit_auditevent WHERE seq = 3")
    assert verify() == (1, "audit log: entry 3 is missing (entries 2 and 4 are not linked)")


def test_deleted_rows_renumbered_are_still_found(rows, tamper, verify):
    # Close the gap in seq: the digests still name the removed entry.
    tamper("DELETE FROM audit_auditevent WHERE seq = 3")
    tamper("UPDATE audit_auditevent SET seq = seq - 1 WHERE seq > 3")
    code, out = verify()
    assert code == 1 and out == "audit log: entry 3 was altered"


def test_deleted_first_rows(rows, tamper, verify):
    tamper("DELETE FROM audit_auditevent WHERE seq <= 2")
    assert verify() == (1, "audit log: entries 1 to 2 are missing (the log starts at entry 3)")


def _swap(tamper, first: int, second: int, keep: tuple[str, ...]):
    """Swap two rows' contents (all but `keep` and id)."""
    a, b = (AuditEvent.objects.get(seq=s).pk for s in (first, second))
    moved = [c for c in columns() if c not in keep]
    tamper(f"UPDATE audit_auditevent SET seq = NULL WHERE id IN ({a}, {b})")
    for target, source in ((a, b), (b, a)):
        assignments = ", ".join(f"{c} = (SELECT {c} FROM audit_auditevent_copy WHERE id = "
                                f"{source})" for c in moved)
        tamper(f"UPDATE audit_auditevent SET {assignments} WHERE id = {target}")


def _with_copy(tamper):
    tamper("CREATE TEMP TABLE audit_auditevent_copy AS SELECT * FROM audit_auditevent")


def test_rows_swapped_with_their_digests(rows, tamper, verify):
    _with_copy(tamper)
    _swap(tamper, 2, 3, keep=("seq",))
    tamper("UPDATE audit_auditevent SET seq = (SELECT seq FROM audit_auditevent_copy c "
           "WHERE c.id = audit_auditevent.id) WHERE seq IS NULL")
    assert verify() == (1, "audit log: entries are out of order at 2")


def test_contents_swapped_under_the_digests(rows, tamper, verify):
    _with_copy(tamper)
    _swap(tamper, 2, 4, keep=("seq", "prev_digest", "digest"))
    tamper("UPDATE audit_auditevent SET seq = (SELECT seq FROM audit_auditevent_copy c "
           "WHERE c.id = audit_auditevent.id) WHERE seq IS NULL")
    assert verify() == (1, "audit log: entries are out of order at 2")


def test_whole_rows_swapped(rows, tamper, verify):
    # Everything but the id moves, seq too: the chain reads fine, the insertion order not.
    _with_copy(tamper)
    _swap(tamper, 2, 3, keep=())
    assert verify() == (1, "audit log: entries are out of order at 2")


def test_row_without_seq(rows, tamper, verify):
    tamper("UPDATE audit_auditevent SET seq = NULL WHERE seq = 5")
    code, out = verify()
    assert code == 1 and "has no sequence number" in out


def test_forged_row_appended(rows, tamper, verify):
    # A copy of entry 5, linked after it: without the key its digest cannot be right.
    overrides = {"seq": "6", "prev_digest": "%s"}
    tamper(f"INSERT INTO audit_auditevent ({', '.join(columns())}) SELECT "
           f"{', '.join(overrides.get(c, c) for c in columns())} "
           "FROM audit_auditevent WHERE seq = 5", [rows[4].digest])
    assert verify() == (1, "audit log: entry 6 was altered")
