"""The Celery app. Run as root on each node: celery -A workers worker -Q node.<name>."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "panel.settings")

app = Celery("dockyard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.imports = ("workers.tasks",)


@signals.worker_ready.connect
def _start_node_services(sender=None, **kwargs):
    # Reconcile what the node holds with the database, then follow the shims' events.
    from workers import node

    node.start_services()


@signals.worker_ready.connect
def _start_audit_retention(sender=None, **kwargs):
    # DOCKYARD_AUDIT_RETENTION_DAYS > 0: archive and prune old audit rows now and daily.
    from panel.audit import retention

    retention.start_schedule()


@signals.worker_shutdown.connect
def _stop_node_services(sender=None, **kwargs):
    from workers import node

    node.stop_services()
