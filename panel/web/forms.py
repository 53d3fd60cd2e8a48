import re
import shlex

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import transaction

from panel.containers import services as containers
from panel.errors import Conflict, DockyardError, NotFound

_ENV_KEY = re.compile(r"^[^=\s]+$")


class RunForm(forms.Form):
    """`docker run` in a form: validated here into Docker's request shape, run by the services."""

    image = forms.CharField(
        max_length=255,
        widget=forms.TextInput(attrs={"list": "image-tags", "autocomplete": "off",
                                      "placeholder": "busybox:latest", "autofocus": True}),
        help_text="A tag from the list, or any image reference or id.",
    )
    name = forms.CharField(
        max_length=128, required=False,
        widget=forms.TextInput(attrs={"placeholder": "generated when empty", "autocomplete": "off"}),
    )
    command = forms.CharField(
        max_length=4000, required=False,
        widget=forms.TextInput(attrs={"placeholder": "the image's default command",
                                      "autocomplete": "off", "spellcheck": "false"}),
        help_text='Split like a shell does: sh -c "echo hello; sleep 2"',
    )
    env = forms.CharField(
        label="Environment", required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "KEY=value", "spellcheck": "false"}),
        help_text="One KEY=VALUE per line.",
    )
    team = forms.ChoiceField(required=False)
    detach = forms.BooleanField(
        required=False, label="Run in the background (detach)",
        help_text="Unchecked, the container page follows its output.",
    )

    def __init__(self, *args, user, teams, default_team=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.teams = {str(team.pk): team for team in teams}
        if len(self.teams) < 2:
            del self.fields["team"]  # the user's only team, chosen by the services
        else:
            self.fields["team"].choices = [(pk, team.name) for pk, team in self.teams.items()]
            self.fields["team"].required = True
            if default_team is not None:
                self.fields["team"].initial = str(default_team.pk)

    def clean_image(self):
        return self.cleaned_data["image"].strip()

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean_command(self):
        text = self.cleaned_data["command"].strip()
        if not text:
            return None
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Cannot split this command: {exc}.") from None

    def clean_env(self):
        env = []
        for number, raw in enumerate(self.cleaned_data["env"].splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, _ = line.partition("=")
            if not sep or not _ENV_KEY.match(key):
                raise forms.ValidationError(f"Line {number} is not KEY=VALUE: {line!r}")
            env.append(line)
        return env

    def run(self):
        """Create and start the container; on any error nothing is kept and the form shows it."""
        data = self.cleaned_data
        config = {"Image": data["image"], "Env": data["env"]}
        if data["command"] is not None:
            config["Cmd"] = data["command"]
        team = self.teams.get(data.get("team") or "")
        try:
            with transaction.atomic():
                container = containers.create(acting_user=self.user, config=config, host_config={},
                                              name=data["name"] or None, team=team, source="panel")
                containers.start(acting_user=self.user, container=container, source="panel")
        except (DockyardError, PermissionDenied) as exc:
            message = getattr(exc, "message", None) or str(exc)
            field = _field_of(exc, message)
            if field == "image":
                message += f". Pull it first (docker pull {data['image']}) or pick one from the list."
            self.add_error(field, message)
            return None
        return container


def _field_of(exc, message: str) -> str | None:
    """Which field an error from the services belongs to (None: the whole form)."""
    if isinstance(exc, NotFound) and "image" in message.lower():
        return "image"
    if isinstance(exc, Conflict) or message.startswith("Invalid container name"):
        return "name"
    return None
