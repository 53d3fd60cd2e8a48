import re
import shlex

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import transaction

from panel.containers import services as containers
from panel.errors import Conflict, DockyardError, NotFound, message_of

from .run_sections import section_classes
from .run_sections.network import NetworkSection
from .run_sections.resources import ResourcesSection
from .run_sections.security import SecuritySection
from .run_sections.storage import StorageSection
from .team_choice import offer_teams

_ENV_KEY = re.compile(r"^[^=\s]+$")


class RunForm(StorageSection, NetworkSection, ResourcesSection, SecuritySection, forms.Form):
    """`docker run` in a form: validated here into Docker's request shape, run by the services.

    Storage, resource and security settings are ``RunSection``s in ``run_sections/``, added
    to this class's bases."""

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
    # process settings (docker run -u, -w, --entrypoint, --label, --restart, --init,
    # --stop-signal, --stop-timeout); shown under "Process settings"
    user = forms.CharField(
        max_length=64, required=False, label="User",
        widget=forms.TextInput(attrs={"placeholder": "the image's user", "autocomplete": "off",
                                      "spellcheck": "false"}),
        help_text="A name or uid, with an optional group: nobody, 1000:1000, nobody:tty (-u).",
    )
    working_dir = forms.CharField(
        max_length=255, required=False, label="Working directory",
        widget=forms.TextInput(attrs={"placeholder": "the image's working directory",
                                      "autocomplete": "off", "spellcheck": "false"}),
        help_text="An absolute path; created if missing (-w).",
    )
    entrypoint = forms.CharField(
        max_length=4000, required=False, label="Entrypoint",
        widget=forms.TextInput(attrs={"placeholder": "the image's entrypoint",
                                      "autocomplete": "off", "spellcheck": "false"}),
        help_text="Replaces the image's entrypoint; the command becomes its arguments.",
    )
    labels = forms.CharField(
        label="Labels", required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "key=value",
                                     "spellcheck": "false"}),
        help_text="One key=value (or key) per line (--label).",
    )
    restart_policy = forms.ChoiceField(
        label="Restart policy", required=False, initial="no",
        choices=[("no", "no: never restart"), ("on-failure", "on-failure: after a non-zero exit"),
                 ("always", "always"), ("unless-stopped", "unless-stopped")],
        help_text="Restarts back off 1 s, 2 s, 4 s… (--restart).",
    )
    init = forms.BooleanField(
        required=False, label="Run an init process as PID 1 (--init)",
        help_text="tini forwards signals and reaps orphaned processes.",
    )
    stop_signal = forms.CharField(
        max_length=16, required=False, label="Stop signal",
        widget=forms.TextInput(attrs={"placeholder": "SIGTERM", "autocomplete": "off"}),
        help_text="Sent by Stop before the timeout (--stop-signal).",
    )
    stop_timeout = forms.IntegerField(
        required=False, label="Stop timeout (seconds)", min_value=-1, max_value=86400,
        widget=forms.NumberInput(attrs={"placeholder": "10"}),
        help_text="How long Stop waits before SIGKILL; -1 waits forever (--stop-timeout).",
    )
    tty = forms.BooleanField(
        required=False, label="Interactive terminal (-t)",
        help_text="Give the container a pseudo-terminal; with stdin open, its page shows a "
                  "terminal you can type into.",
    )
    open_stdin = forms.BooleanField(
        required=False, label="Keep stdin open (-i)",
        help_text="The container's stdin stays open for the terminal and docker attach.",
    )
    team = forms.ChoiceField(required=False)
    detach = forms.BooleanField(
        required=False, label="Run in the background (detach)",
        help_text="Unchecked, the container page follows its output.",
    )

    def __init__(self, *args, user, teams, default_team=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.teams = offer_teams(self, teams, default_team)

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

    PROCESS_FIELDS = ("user", "working_dir", "entrypoint", "labels", "restart_policy", "init",
                      "stop_signal", "stop_timeout")
    def main_fields(self):
        in_sections = {n for c in section_classes(type(self)) for n in c.own_field_names()}
        return [f for f in self if f.name not in self.PROCESS_FIELDS and f.name not in in_sections]

    def sections(self):
        """[{id, title, summary, fields, has_errors}] of the sections, for the template."""
        out = []
        for cls in section_classes(type(self)):
            names = cls.own_field_names()
            out.append({"id": cls.section_id, "title": cls.section_title,
                        "summary": cls.section_summary, "fields": [self[n] for n in names],
                        "has_errors": any(self.errors.get(n) for n in names)})
        return out

    def process_fields(self):
        return [f for f in self if f.name in self.PROCESS_FIELDS]

    def process_errors(self):
        return any(self.errors.get(name) for name in self.PROCESS_FIELDS)

    def clean_user(self):
        from workers.runtime.spec import SpecError, parse_user

        text = self.cleaned_data["user"].strip()
        try:
            parse_user(text)
        except SpecError as exc:
            raise forms.ValidationError(str(exc)) from None
        return text

    def clean_working_dir(self):
        text = self.cleaned_data["working_dir"].strip()
        if text and not text.startswith("/"):
            raise forms.ValidationError("Use an absolute path, like /srv/app.")
        return text

    def clean_entrypoint(self):
        text = self.cleaned_data["entrypoint"].strip()
        if not text:
            return None
        try:
            return shlex.split(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Cannot split this entrypoint: {exc}.") from None

    def clean_labels(self):
        labels = {}
        for raw in self.cleaned_data["labels"].splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            key, _, value = line.partition("=")
            if not key.strip():
                raise forms.ValidationError(f"A label needs a key: {line!r}")
            labels[key.strip()] = value
        return labels

    def clean_stop_signal(self):
        from panel.containers.specs import parse_signal

        text = self.cleaned_data["stop_signal"].strip()
        if text:
            try:
                parse_signal(text)
            except DockyardError:
                raise forms.ValidationError(f"Unknown signal {text!r}: use a name like "
                                            "SIGTERM or SIGUSR1, or a number.") from None
        return text.upper() if text and not text.isdigit() else text

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
        host_config = {}
        if data.get("tty"):
            config["Tty"] = True
        if data.get("open_stdin"):
            config["OpenStdin"] = True
        for key, field in (("User", "user"), ("WorkingDir", "working_dir"),
                           ("Entrypoint", "entrypoint"), ("StopSignal", "stop_signal")):
            if data.get(field):
                config[key] = data[field]
        if data.get("labels"):
            config["Labels"] = data["labels"]
        if data.get("stop_timeout") is not None:
            config["StopTimeout"] = data["stop_timeout"]
        if data.get("restart_policy") and data["restart_policy"] != "no":
            host_config["RestartPolicy"] = {"Name": data["restart_policy"]}
        if data.get("init"):
            host_config["Init"] = True
        for cls in section_classes(type(self)):
            cls.apply(self, data, config, host_config)
        networking_config = config.pop("NetworkingConfig", None)  # beside Config in Docker's body
        team = self.teams.get(data.get("team") or "")
        try:
            with transaction.atomic():
                container = containers.create(acting_user=self.user, config=config,
                                              host_config=host_config,
                                              name=data["name"] or None, team=team, source="panel",
                                              networking_config=networking_config)
                containers.start(acting_user=self.user, container=container, source="panel")
        except (DockyardError, PermissionDenied) as exc:
            message = message_of(exc)
            field = _field_of(exc, message, type(self))
            if field == "image":
                message += f". Pull it first (docker pull {data['image']}) or pick one from the list."
            self.add_error(field, message)
            return None
        return container


def _field_of(exc, message: str, form_class=RunForm) -> str | None:
    """Which field an error from the services belongs to (None: the whole form)."""
    if isinstance(exc, NotFound) and "image" in message.lower():
        return "image"
    if (isinstance(exc, Conflict) and "container name" in message
            or message.startswith("Invalid container name")):
        return "name"
    lowered = message.lower()
    pairs = [("working directory", "working_dir"), ("restart policy", "restart_policy"),
             ("signal", "stop_signal"), ("--init", "init")]
    pairs += [p for cls in section_classes(form_class) for p in cls.error_fields]
    for words, field in pairs:
        if words in lowered:
            return field
    return None
