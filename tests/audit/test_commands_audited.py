"""What the management commands change is audited under the "command" interface."""

from django.core.management import call_command

from panel.audit.models import AuditEvent


def test_bootstrap_and_createtoken_write_command_rows(db):
    call_command("bootstrap", "--skip-images", "--admin-username", "boss",
                 "--admin-password", "first-pw-123")
    call_command("bootstrap", "--skip-images", "--admin-username", "boss",
                 "--admin-password", "second-pw-456")
    call_command("createtoken", "--quiet", "boss")
    rows = list(AuditEvent.objects.order_by("seq"))
    assert [(r.action, r.source, r.object_repr) for r in rows] == [
        ("user.create", "command", "boss"),
        ("user.set_password", "command", "boss"),
        ("token.create", "command", "cli"),
    ]
    assert rows[0].user_agent.startswith("manage.py bootstrap")
    text = repr(list(AuditEvent.objects.values()))
    assert "first-pw-123" not in text and "second-pw-456" not in text
