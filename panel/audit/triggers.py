"""Database triggers that make the audit tables append-only, for SQLite and PostgreSQL.

They refuse every UPDATE of audit_auditevent and audit_auditprune, every DELETE of
audit_auditprune, and a DELETE of audit_auditevent unless the row is at or below the highest
`upto_seq` of audit_auditprune (retention archived it first: panel/audit/retention.py).
PostgreSQL also refuses TRUNCATE. Errors surface as django.db.IntegrityError.

Installed by migration audit/0004; `manage.py flush` (Django's "erase everything", used by
transactional tests) lifts them for its own run only (panel/audit/management/commands/flush.py).
A future migration that makes SQLite rebuild audit_auditevent drops its triggers with the
old table: it must call `create()` again.
"""

REFUSED = "the audit log is append-only"

_SQLITE_CREATE = [
    f"""CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_auditevent
    BEGIN SELECT RAISE(ABORT, '{REFUSED}: UPDATE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_auditevent
    WHEN OLD.seq IS NULL
      OR OLD.seq > (SELECT COALESCE(MAX(upto_seq), 0) FROM audit_auditprune)
    BEGIN SELECT RAISE(ABORT, '{REFUSED}: DELETE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_prune_no_update BEFORE UPDATE ON audit_auditprune
    BEGIN SELECT RAISE(ABORT, '{REFUSED}: UPDATE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS audit_prune_no_delete BEFORE DELETE ON audit_auditprune
    BEGIN SELECT RAISE(ABORT, '{REFUSED}: DELETE refused'); END""",
]
_SQLITE_DROP = [f"DROP TRIGGER IF EXISTS {name}" for name in (
    "audit_event_no_update", "audit_event_no_delete", "audit_prune_no_update",
    "audit_prune_no_delete")]

_POSTGRES_CREATE = [
    f"""CREATE OR REPLACE FUNCTION dockyard_audit_refuse() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSED}: % refused on %', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    f"""CREATE OR REPLACE FUNCTION dockyard_audit_event_delete() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.seq IS NOT NULL AND OLD.seq <= (
                SELECT COALESCE(MAX(upto_seq), 0) FROM audit_auditprune) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION '{REFUSED}: DELETE refused on audit_auditevent'
            USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION dockyard_audit_refuse()""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION dockyard_audit_event_delete()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION dockyard_audit_refuse()""",
    """CREATE TRIGGER audit_prune_no_change BEFORE UPDATE OR DELETE ON audit_auditprune
    FOR EACH ROW EXECUTE FUNCTION dockyard_audit_refuse()""",
    """CREATE TRIGGER audit_prune_no_truncate BEFORE TRUNCATE ON audit_auditprune
    FOR EACH STATEMENT EXECUTE FUNCTION dockyard_audit_refuse()""",
]
_POSTGRES_DROP = [
    "DROP TRIGGER IF EXISTS audit_event_no_update ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_event_no_delete ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_prune_no_change ON audit_auditprune",
    "DROP TRIGGER IF EXISTS audit_prune_no_truncate ON audit_auditprune",
]

_STATEMENTS = {
    "sqlite": (_SQLITE_CREATE, _SQLITE_DROP),
    "postgresql": (_POSTGRES_CREATE, _POSTGRES_DROP),
}


def _run(connection, create: bool) -> None:
    statements = _STATEMENTS.get(connection.vendor)
    if statements is None:  # no triggers there: the application alone keeps the log intact
        return
    with connection.cursor() as cursor:
        for sql in statements[0 if create else 1]:
            cursor.execute(sql)


def create(connection) -> None:
    if connection.vendor == "postgresql":
        _run(connection, create=False)  # PostgreSQL has no CREATE TRIGGER IF NOT EXISTS
    _run(connection, create=True)


def drop(connection) -> None:
    _run(connection, create=False)
