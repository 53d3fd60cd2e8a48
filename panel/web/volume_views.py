"""The volumes page: list, create, remove and prune named volumes (`docker volume ...`).

Thin views over panel.volumes.services; a volume outside the user's teams is 404."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from panel.containers.status import human_size
from panel.errors import DockyardError, NotFound, message_of
from panel.teams.models import Membership
from panel.teams.services import has_permission, teams_of
from panel.volumes import services as volumes
from workers.runtime.volumes import VolumeError, validate_name, validate_options

from .team_choice import offer_teams

# (words in a services' error, the form field it belongs to); the first match wins
_ERROR_FIELDS = (("host path", "options"), ("option", "options"), ("device", "options"),
                 ("name", "name"))


def key_value_lines(text: str, what: str, need_value: bool) -> dict[str, str]:
    """``key=value`` lines (blank lines and # comments skipped) as a dict.

    Without ``need_value`` a bare ``key`` is allowed, as ``--label key`` is."""
    found = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not key.strip() or (need_value and not sep):
            raise forms.ValidationError(f"Line {number} is not a {what} key=value: {line!r}")
        found[key.strip()] = value.strip()
    return found


class VolumeForm(forms.Form):
    """`docker volume create [--name NAME] [--driver local] [--label k=v] [--opt k=v]`."""

    name = forms.CharField(
        max_length=255, required=False,
        widget=forms.TextInput(attrs={"placeholder": "generated when empty", "autocomplete": "off",
                                      "spellcheck": "false"}),
        help_text="Letters, digits, _ . and -, like cass-shared. Empty: a random 64-hex name.",
    )
    driver = forms.ChoiceField(choices=[("local", "local")], initial="local",
                               help_text="The local driver keeps the data on this node.")
    labels = forms.CharField(
        required=False, strip=False,  # the line numbers of errors are those the user sees
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "example=cassandra",
                                     "spellcheck": "false"}),
        help_text="One key=value (or key) per line (--label).",
    )
    options = forms.CharField(
        label="Driver options", required=False, strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "type=tmpfs\ndevice=tmpfs\no=size=64m",
                                     "spellcheck": "false"}),
        help_text="One key=value per line (--opt). Empty: a directory on this node's disk. "
                  "type=tmpfs, device=tmpfs, o=size=64m: in memory. "
                  "type=none, o=bind, device=/srv/data: a host directory (team policy).",
    )
    team = forms.ChoiceField(required=False)

    def __init__(self, *args, teams, default_team=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.teams = offer_teams(self, teams, default_team)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if name:
            _check(validate_name, name)
        return name or None

    def clean_labels(self):
        return key_value_lines(self.cleaned_data["labels"], "label", need_value=False)

    def clean_options(self):
        options = key_value_lines(self.cleaned_data["options"], "driver option", need_value=True)
        _check(validate_options, options)
        return options

    def create(self, user):
        """The new volume, or None with the services' error on the form."""
        data = self.cleaned_data
        try:
            return volumes.create(acting_user=user, name=data["name"], driver=data["driver"],
                                  labels=data["labels"], options=data["options"],
                                  team=self.teams.get(data.get("team") or ""), source="panel")
        except (DockyardError, PermissionDenied) as exc:
            message = message_of(exc)
            field = next((f for words, f in _ERROR_FIELDS if words in message.lower()), None)
            self.add_error(field, message)
            return None


def _check(validate, value) -> None:
    """The node's own rules (workers.runtime.volumes), checked before asking the services."""
    try:
        validate(value)
    except VolumeError as exc:
        raise forms.ValidationError(str(exc)) from None


def _get_volume(user, name: str):
    try:
        return volumes.resolve(user, name)
    except NotFound:
        raise Http404("No such volume") from None


def _row(user, volume) -> dict:
    """What the list and the detail page show of one volume."""
    return {
        "volume": volume,
        "mountpoint": volumes.mountpoint(volume),
        "size": volumes.size_of(volume),
        "users": volumes.users_of(volume),
        "can_remove": has_permission(user, volume.team, "operate"),
    }


@login_required
def volume_list(request):
    """GET: the volumes; POST: create one (the form) or prune the unused ones (``prune``)."""
    if request.method == "POST" and "prune" in request.POST:
        return _prune(request)
    teams = list(teams_of(request.user).order_by("name"))
    default = Membership.objects.filter(user=request.user).order_by("id").first()
    form = VolumeForm(request.POST or None, teams=teams,
                      default_team=default.team if default else None)
    if request.method == "POST" and form.is_valid():
        volume = form.create(request.user)
        if volume is not None:
            if volume.job is None:  # Docker's answer to a name that exists: that volume
                messages.info(request, f"Volume {volume.name} already exists; nothing changed.")
            else:
                messages.success(request, f"Volume {volume.name} created.")
            return redirect("web:volume-list")
    found = volumes.visible_volumes(request.user).select_related("team").order_by("name")
    return render(request, "web/volume_list.html", {
        "rows": [_row(request.user, volume) for volume in found],
        "form": form,
        "show_team": len(teams) > 1,
    })


def _prune(request):
    try:
        # all=true: named volumes too, as `docker volume prune --all` (the page says so)
        removed, reclaimed = volumes.prune(acting_user=request.user, filters={"all": ["true"]},
                                           source="panel")
    except (DockyardError, PermissionDenied) as exc:
        messages.error(request, message_of(exc))
        return redirect("web:volume-list")
    if removed:
        plural = "" if len(removed) == 1 else "s"
        messages.success(request, f"Removed {len(removed)} unused volume{plural}: "
                                  f"{', '.join(removed)}. Reclaimed {human_size(reclaimed)}.")
    else:
        messages.info(request, "No unused volumes to remove.")
    return redirect("web:volume-list")


@login_required
def volume_detail(request, name):
    volume = _get_volume(request.user, name)
    return render(request, "web/volume_detail.html", _row(request.user, volume))


@login_required
@require_POST
def volume_remove(request, name):
    volume = _get_volume(request.user, name)
    try:
        volumes.remove(acting_user=request.user, volume=volume, source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        if request.POST.get("back") == "detail":  # the button on the volume's own page
            return redirect("web:volume-detail", name=volume.name)
        return redirect("web:volume-list")
    messages.success(request, f"Volume {volume.name} removed.")
    return redirect("web:volume-list")
