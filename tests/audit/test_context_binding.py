"""Who asked, from where: the panel's middleware, management commands and the worker's jobs
bind the audit context that `record` and `note_refusal` read."""

import pytest
from django.conf import settings
from django.db import transaction
from django.test import RequestFactory
from django.urls import reverse

from panel.audit import services as audit
from panel.audit.middleware import AuditContextMiddleware
from panel.audit.models import AuditEvent
from panel.jobs.models import Job
from panel.nodes.services import local_node


def test_middleware_follows_authentication():
    middleware = settings.MIDDLEWARE
    assert middleware.index("panel.audit.middleware.AuditContextMiddleware") > \
        middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware")


def test_panel_request_context_and_flush_on_exception(owner, team):
    def view(request):
        audit.record("thing.do", actor=owner, team=team, obj_type="thing", obj_id="1")
        with transaction.atomic():
            audit.note_refusal("no", actor=owner, team=team, action="permission.denied")
        raise RuntimeError("the view failed")

    request = RequestFactory().post(reverse("web:container-list"), REMOTE_ADDR="192.0.2.7",
                                    HTTP_USER_AGENT="Firefox/140")
    with pytest.raises(RuntimeError):
        AuditContextMiddleware(view)(request)
    done, refused = AuditEvent.objects.order_by("seq")
    for row in (done, refused):
        assert (row.source, row.address, row.user_agent) == ("panel", "192.0.2.7", "Firefox/140")
    assert refused.outcome == "denied" and refused.params == {"route": "web:container-list"}


def test_command_context(owner, team):
    with audit.command_context("createtoken"):
        with transaction.atomic():
            audit.note_refusal("no", actor=owner, team=team, action="permission.denied")
    row = AuditEvent.objects.get()
    assert (row.source, row.params["route"]) == ("command", "createtoken")
    assert row.user_agent.startswith("manage.py createtoken (uid ")


def test_worker_job_context(owner, team, monkeypatch):
    from workers import tasks

    def handler(job):
        with transaction.atomic():
            audit.note_refusal("quota", actor=owner, team=team, action="quota.exceeded")
        return {}

    monkeypatch.setitem(tasks.HANDLERS, "thing.do", handler)
    job = Job.objects.create(kind="thing.do", target_type="thing", target_id="1",
                             actor=owner, team=team, node=local_node())
    tasks.run_job(str(job.id))
    # The job's refusals are written when its work is over, after its `job.finished` row.
    finished, refused = AuditEvent.objects.order_by("seq")
    assert (refused.action, refused.source, refused.params) == (
        "quota.exceeded", "system", {"route": "workers.tasks.run_job"})
    assert (finished.action, finished.outcome) == ("job.finished", "success")
