"""A job that reaches a terminal state gets a `job.finished` row from jobs.services.mark."""

import pytest

from panel.audit.models import AuditEvent
from panel.jobs import services as jobs
from panel.jobs.models import Job
from panel.nodes.services import local_node


@pytest.fixture
def job(owner, team):
    return Job.objects.create(kind="container.start", target_type="container",
                              target_id="c0ffee", target_repr="web", actor=owner, team=team,
                              node=local_node())


@pytest.mark.parametrize("state, error, result, outcome", [
    (Job.State.SUCCEEDED, "", {"pid": 42}, "success"),
    (Job.State.FAILED, "no such image", {"status": 404}, "failed"),
    (Job.State.FAILED, "pull access denied", {"status": 403}, "denied"),
    (Job.State.FAILED, "internal error: boom", None, "failed"),
])
def test_terminal_state_is_audited(job, owner, team, state, error, result, outcome):
    jobs.mark(job, Job.State.RUNNING)
    assert not AuditEvent.objects.exists()
    jobs.mark(job, state, error=error, result=result)
    row = AuditEvent.objects.get()
    assert (row.action, row.outcome, row.source, row.job) == ("job.finished", outcome,
                                                               "system", job.id)
    assert (row.object_type, row.object_id, row.object_repr) == ("container", "c0ffee", "web")
    assert (row.actor, row.actor_name, row.team) == (owner, "owner", team)
    assert row.params == {"kind": "container.start"}
    assert row.result == {"state": state, "error": error, **(result or {})}
