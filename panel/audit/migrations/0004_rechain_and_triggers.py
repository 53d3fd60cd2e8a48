"""Recompute the chain of the existing rows with the HMAC scheme (seq 1, 2, ... in id order),
then make the audit tables append-only with triggers (panel/audit/triggers.py). The rows are
rewritten BEFORE the triggers exist; afterwards nothing may rewrite them."""

from django.db import migrations

from panel.audit import chain, triggers


def rechain(apps, schema_editor):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    prev_digest = ""
    for seq, event in enumerate(AuditEvent.objects.order_by("id").iterator(), start=1):
        event.seq, event.prev_digest = seq, prev_digest
        event.digest = chain.digest(chain.canonical(event))
        event.save(update_fields=["seq", "prev_digest", "digest"])
        prev_digest = event.digest


def create_triggers(apps, schema_editor):
    triggers.create(schema_editor.connection)


def drop_triggers(apps, schema_editor):
    triggers.drop(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0003_append_only_prune"),
    ]

    operations = [
        migrations.RunPython(rechain, migrations.RunPython.noop),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
