"""Reading the audit log: which rows a user may see, the audit page's filters, and a row's
fields as the exports and the live tail carry them.

The page, its CSV and JSON-lines exports and the live tail (panel/events/audit_consumer.py)
all filter through `AuditFilter`, so a live row, an exported row and a listed row agree.
"""

from datetime import timedelta

from django import forms
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q
from django.utils import timezone

from panel.teams.models import Team
from panel.teams.services import hidden, is_site_admin, team_ids_with, teams_of

from . import chain
from .context import INTERFACES
from .models import AuditEvent

INTERFACE_LABELS = {"panel": "Panel", "api": "Docker API", "command": "Command",
                    "system": "System"}
DATETIME_INPUT = "%Y-%m-%dT%H:%M"  # what <input type=datetime-local> sends


def auditable_teams(user):
    """The teams whose audit log the user may read (every team for a site admin)."""
    return teams_of(user, "audit")


def may_audit(user) -> bool:
    """Whether the user may read any audit row at all (the page and the nav link)."""
    return user.is_authenticated and (user.is_superuser or bool(team_ids_with(user, "audit")))


def note_refused_reader(user) -> None:
    """Audit a request for the log (page, export, live tail) by a user who may not audit."""
    from . import services

    services.note_refusal("You may not read the audit log.", actor=user, team=None,
                          action="permission.denied", obj_type="audit")


def visible_events(user):
    """Every row for a site admin; otherwise the rows of the teams it may audit (rows
    without a team, such as failed logins, are site admins' only)."""
    if is_site_admin(user):
        return AuditEvent.objects.all()
    return AuditEvent.objects.filter(team__in=auditable_teams(user))


class _DateTimeLocal(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self):
        super().__init__(format=DATETIME_INPUT)


class AuditFilter(forms.Form):
    """The filters of a GET query (?actor=...&outcome=denied&...); invalid filters select
    nothing rather than more than was asked for."""

    actor = forms.CharField(required=False, max_length=150,
                            widget=forms.TextInput(attrs={"placeholder": "username"}))
    team = forms.ModelChoiceField(queryset=None, required=False, empty_label="All teams")
    action = forms.CharField(
        required=False, max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "container.start or container."}))
    target = forms.CharField(required=False, max_length=200,
                             widget=forms.TextInput(attrs={"placeholder": "id or name"}))
    outcome = forms.ChoiceField(required=False,
                                choices=[("", "Any outcome"), *AuditEvent.Outcome.choices])
    interface = forms.ChoiceField(
        required=False,
        choices=[("", "Any interface"), *((i, INTERFACE_LABELS[i]) for i in INTERFACES)])
    # ISO 8601 as <input type=datetime-local> sends it, with or without seconds.
    since = forms.DateTimeField(label="From", required=False, widget=_DateTimeLocal())
    until = forms.DateTimeField(label="To", required=False, widget=_DateTimeLocal())
    q = forms.CharField(label="Search", required=False, max_length=200,
                        widget=forms.TextInput(attrs={"type": "search",
                                                      "placeholder": "actor, action, target, "
                                                                     "parameters"}))

    def __init__(self, data, *, user):
        super().__init__(data)
        self.user = user
        self.fields["team"].queryset = auditable_teams(user).order_by("name")

    def clean(self):
        data = super().clean()
        asked = str(self.data.get("team", ""))
        if "team" in self.errors and asked.isdigit():  # another team's log: audited, if so
            hidden(self.user, "No such team", obj_type="team", ref=asked,
                   elsewhere=Team.objects.filter(pk=asked), team_field="pk")
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "To is before From.")
        return data

    def given(self) -> dict[str, str]:
        """The filters as asked for (non-empty), e.g. for the export's audit row."""
        return {name: self.data[name] for name in self.fields if self.data.get(name)}

    def covered_team(self):
        """The one team whose rows the selection can hold, or None when it spans several."""
        if self.is_valid() and self.cleaned_data["team"]:
            return self.cleaned_data["team"]
        if is_site_admin(self.user):
            return None
        teams = list(auditable_teams(self.user)[:2])
        return teams[0] if len(teams) == 1 else None

    def events(self):
        """The rows the user may see that match the filters (none when a filter is invalid)."""
        events = visible_events(self.user)
        if not self.is_valid():
            return events.none()
        data = self.cleaned_data
        if data["actor"]:
            events = events.filter(actor_name__iexact=data["actor"].strip())
        if data["team"]:
            events = events.filter(team=data["team"])
        action = data["action"].strip()
        if action.endswith("."):
            events = events.filter(action__startswith=action)
        elif action:
            events = events.filter(action=action)
        if target := data["target"].strip():
            events = events.filter(Q(object_id__icontains=target)
                                   | Q(object_repr__icontains=target)
                                   | Q(object_type__iexact=target))
        if data["outcome"]:
            events = events.filter(outcome=data["outcome"])
        if data["interface"]:
            events = events.filter(source=data["interface"])
        if data["since"]:
            events = events.filter(time__gte=data["since"])
        if until := data["until"]:
            if until.second == 0 and until.microsecond == 0:  # a minute: all of it
                events = events.filter(time__lt=until + timedelta(minutes=1))
            else:
                events = events.filter(time__lte=until)
        if text := data["q"].strip():
            events = events.filter(Q(actor_name__icontains=text) | Q(action__icontains=text)
                                   | Q(object_repr__icontains=text)
                                   | Q(object_id__icontains=text)
                                   | Q(params__icontains=text))
        return events


def _team_name(event: AuditEvent) -> str | None:
    # A deleted team leaves its id on the rows (they never change): no name then.
    try:
        return event.team.name if event.team else None
    except ObjectDoesNotExist:
        return None


def as_record(event: AuditEvent) -> dict:
    """Every field of a row as exports and the live tail carry it: the chain's canonical form
    (RFC 3339 times; `chain.verify` checks an unfiltered JSON-lines export) and the team's
    name."""
    return {**chain.canonical(event), "team_name": _team_name(event)}


def record_fields() -> list[str]:
    """The names of `as_record`'s fields (a CSV export's header, also of an empty one)."""
    return list(as_record(AuditEvent(time=timezone.now())))
