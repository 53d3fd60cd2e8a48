"""Team policy and quotas through the panel's forms: the same refusal (and audit row) as the
Docker API gives, and what the team's policy allows goes through."""

import pytest
from django.contrib.messages import get_messages

from panel.audit.models import AuditEvent
from panel.containers.models import Container


def _run(client, **data):
    return client.post("/containers/new/", {"image": "busybox:1.29", **data})


def _form_errors(response) -> str:
    assert response.status_code == 200
    form = response.context["form"]
    return " ".join(e for errors in form.errors.values() for e in errors)


def test_container_quota_refuses_the_second_run(login, alice, blue, image, enqueued):
    blue.max_containers = 1
    blue.save()
    client = login(alice)
    assert _run(client, name="first").status_code == 302
    errors = _form_errors(_run(client, name="second"))
    assert "quota of team blue exceeded: 1 containers of 1" in errors \
        or "container quota of team blue" in errors, errors
    assert list(Container.objects.values_list("name", flat=True)) == ["first"]
    row = AuditEvent.objects.get(outcome="denied")
    assert (row.action, row.team, row.source) == ("quota.exceeded", blue, "panel")


def test_memory_quota_needs_a_limit(login, alice, blue, image, enqueued):
    blue.max_memory = 64 * 1024**2
    blue.save()
    client = login(alice)
    assert "give the container a memory limit (-m" in _form_errors(_run(client, name="nolimit"))
    assert "memory quota of team blue exceeded" in _form_errors(
        _run(client, name="big", memory="128m"))
    assert _run(client, name="small", memory="32m").status_code == 302
    assert AuditEvent.objects.filter(outcome="denied", action="quota.exceeded").count() == 2


def test_cpu_quota_bounds_the_limits_card(login, alice, blue, image, enqueued):
    blue.max_nano_cpus = 10**9
    blue.save()
    client = login(alice)
    assert _run(client, name="half", cpus="0.5").status_code == 302
    half = Container.objects.get(name="half")
    response = client.post(f"/containers/{half.id}/update/", {"cpus": "2"})
    shown = " ".join(str(m) for m in get_messages(response.wsgi_request))
    assert "CPU quota of team blue exceeded" in shown, shown
    assert Container.objects.get(pk=half.pk).spec["HostConfig"]["NanoCpus"] == 5 * 10**8
    assert AuditEvent.objects.get(outcome="denied").action == "quota.exceeded"


@pytest.mark.parametrize("field, data", [
    ("allow_privileged", {"privileged": "on"}),
    ("allow_low_ports", {"publish": "80:80"}),
])
def test_what_the_policy_allows_goes_through(login, alice, blue, image, enqueued, field, data):
    client = login(alice)
    assert "the policy of team blue does not allow" in _form_errors(_run(client, **data))
    setattr(blue, field, True)
    blue.save()
    assert _run(client, name="allowed", **data).status_code == 302
    assert Container.objects.filter(name="allowed").exists()
