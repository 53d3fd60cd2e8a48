"""One row of the access matrix, for every principal: the answer the role allows, nothing
changed by a refusal, and an audit row for it."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import URLResolver, get_resolver

from panel.audit.models import AuditEvent
from panel.containers.models import Container, ExecInstance
from panel.images.models import Image, ImageTag, RegistryCredential
from panel.jobs.models import Job
from panel.networks.models import Endpoint, Network
from panel.teams.models import ApiToken, Membership, Team
from panel.volumes.models import Volume

from .conftest import PRINCIPALS
from .matrix import expected

REFUSED = (401, 403, 404)
_MODELS = (Job, Container, ExecInstance, Image, ImageTag, Volume, Network, Endpoint,
           RegistryCredential, Team, Membership, ApiToken)


def routes(urlconf: str, skip_prefixes=("admin/",)):
    """Every URL pattern of a URLconf, as its route text (includes flattened)."""

    def walk(resolver, prefix):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if not route.startswith(skip_prefixes):
                    yield from walk(pattern, route)
            else:
                yield route, pattern.callback

    return list(walk(get_resolver(urlconf), ""))


def snapshot() -> dict:
    state = {model.__name__: list(model.objects.order_by("pk").values()) for model in _MODELS}
    state["users"] = list(get_user_model().objects.order_by("pk").values(
        "pk", "username", "is_active", "is_superuser", "password"))
    return state


def check_row(world, rule, ask) -> list[str]:
    """Run ``ask(user) -> status`` for every principal, each in a savepoint rolled back after;
    returns what went wrong."""
    problems = []
    for principal in PRINCIPALS:
        user = world.users[principal]
        want = expected(rule, principal)
        savepoint = transaction.savepoint()
        try:
            before = snapshot() if want != "ok" else None
            last_event = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first()
            status = ask(user)
            denied = AuditEvent.objects.filter(outcome="denied", actor=user,
                                               pk__gt=last_event or 0)
            if want == "ok":
                if status in REFUSED:
                    problems.append(f"{principal}: refused with {status}")
                elif denied.exists() and not rule.form:
                    problems.append(f"{principal}: allowed, but a refusal was audited: "
                                    f"{list(denied.values_list('action', 'object_id'))}")
                continue
            answer_ok = status == want or (rule.form and status == 200)
            if not answer_ok:
                problems.append(f"{principal}: expected {want}, got {status}")
            if not denied.exists():
                problems.append(f"{principal}: refused ({status}) without an audited refusal")
            if snapshot() != before:
                problems.append(f"{principal}: the refusal changed something")
        finally:
            transaction.savepoint_rollback(savepoint)
    return problems
