"""The forms of the team and user pages: create a team, invite a member, a team's policy and
quotas (with the docker CLI's units: 2g, 1.5), create a user."""

from django import forms

from panel.containers.resources import parse_bytes, parse_cpus
from panel.errors import InvalidParameter
from panel.teams.models import Membership, Team

NANO = 1_000_000_000
_SIZE_UNITS = (("t", 1024 ** 4), ("g", 1024 ** 3), ("m", 1024 ** 2), ("k", 1024))

ROLE_HELP = {
    "owner": "everything, and deleting the team",
    "admin": "members, policy, quotas, registry credentials; runs containers",
    "operator": "runs, stops, execs, builds and pulls",
    "viewer": "sees the team's objects, their logs and stats",
    "auditor": "reads the team's audit log, nothing else",
}


def size_text(size: int | None) -> str:
    """Bytes as the shortest text ``parse_bytes`` reads back: 2147483648 -> "2g"."""
    if size is None:
        return ""
    for unit, factor in _SIZE_UNITS:
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def cpus_text(nano_cpus: int | None) -> str:
    return "" if nano_cpus is None else f"{nano_cpus / NANO:g}"


def role_choices(may_own: bool) -> list[tuple[str, str]]:
    """The roles one may hand out: owner only by owners (and site admins)."""
    return [(value, label) for value, label in Membership.Role.choices
            if may_own or value != Membership.Role.OWNER]


class TeamForm(forms.Form):
    name = forms.CharField(max_length=Team._meta.get_field("name").max_length,
                           widget=forms.TextInput(attrs={"placeholder": "e.g. backend",
                                                         "autocomplete": "off"}))
    owner = forms.CharField(
        max_length=150, required=False,
        widget=forms.TextInput(attrs={"placeholder": "you", "autocomplete": "off"}),
        help_text="The username of its first owner; empty: you.",
    )


class InviteForm(forms.Form):
    user = forms.CharField(
        label="Username or e-mail", max_length=150,
        widget=forms.TextInput(attrs={"placeholder": "dana or dana@example.com",
                                      "autocomplete": "off", "spellcheck": "false"}),
        help_text="Someone without an account gets one, and you get a link at which they "
                  "set their password.",
    )
    role = forms.ChoiceField(initial=Membership.Role.OPERATOR)

    def __init__(self, *args, may_own: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = role_choices(may_own)


def _quota_field(label, placeholder, help_text):
    return forms.CharField(
        label=label, max_length=32, required=False,
        widget=forms.TextInput(attrs={"placeholder": placeholder, "autocomplete": "off",
                                      "spellcheck": "false"}),
        help_text=help_text)


class PolicyForm(forms.Form):
    """What the team's members may ask of the node, and how much its objects may hold."""

    allow_privileged = forms.BooleanField(
        required=False, label="Privileged containers (--privileged)",
        help_text="All capabilities, every device, no seccomp or AppArmor: root on the node.")
    allow_host_namespaces = forms.BooleanField(
        required=False, label="The node's namespaces",
        help_text="--pid, --ipc, --uts and --network host, and --userns host.")
    allow_devices = forms.BooleanField(required=False, label="Devices (--device)")
    allow_extra_capabilities = forms.BooleanField(
        required=False, label="Capabilities beyond Docker's default set (--cap-add)")
    allow_unconfined_seccomp = forms.BooleanField(
        required=False, label="Unconfined or custom seccomp (--security-opt seccomp=...)")
    allow_low_ports = forms.BooleanField(
        required=False, label="Host ports below 1024 (-p 80:80)")
    bind_prefixes = forms.CharField(
        label="Host bind mounts", required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "/srv/shared\n/data/blue",
                                     "spellcheck": "false"}),
        help_text="One host path per line under which members may bind-mount "
                  "(-v /srv/shared/app:/app). Empty: none.")
    max_containers = forms.IntegerField(
        label="Containers", required=False, min_value=0,
        widget=forms.TextInput(attrs={"placeholder": "no limit", "inputmode": "numeric"}),
        help_text="How many containers (any state) the team may have.")
    max_memory = _quota_field("Memory", "no limit",
                              "The sum of its containers' memory limits (-m), like 2g or 512m.")
    max_cpus = _quota_field("CPUs", "no limit",
                            "The sum of its containers' CPU limits (--cpus), like 1.5.")
    storage_quota = _quota_field("Image storage", "no limit",
                                 "The image layers its images may hold, like 10g.")

    FLAGS = ("allow_privileged", "allow_host_namespaces", "allow_devices",
             "allow_extra_capabilities", "allow_unconfined_seccomp", "allow_low_ports")
    QUOTAS = ("max_containers", "max_memory", "max_cpus", "storage_quota")

    @classmethod
    def for_team(cls, team: Team, data=None) -> "PolicyForm":
        initial = {name: getattr(team, name) for name in cls.FLAGS}
        initial.update(bind_prefixes="\n".join(team.bind_prefixes or []),
                       max_containers=team.max_containers,
                       max_memory=size_text(team.max_memory),
                       max_cpus=cpus_text(team.max_nano_cpus),
                       storage_quota=size_text(team.storage_quota))
        return cls(data, initial=initial)

    def flag_fields(self):
        return [self[name] for name in self.FLAGS]

    def quota_fields(self):
        return [self[name] for name in self.QUOTAS]

    def _size(self, name):
        text = self.cleaned_data[name].strip()
        if not text:
            return None
        try:
            return parse_bytes(text)
        except InvalidParameter:
            raise forms.ValidationError("Enter a size such as 2g, 512m or 10g.") from None

    def clean_max_memory(self):
        return self._size("max_memory")

    def clean_storage_quota(self):
        return self._size("storage_quota")

    def clean_max_cpus(self):
        text = self.cleaned_data["max_cpus"].strip()
        if not text:
            return None
        try:
            return parse_cpus(text)
        except InvalidParameter:
            raise forms.ValidationError("Enter a number of CPUs such as 1.5 or 4.") from None

    def clean_bind_prefixes(self):
        """One prefix a line; do_update_policy checks them."""
        return [line.strip() for line in self.cleaned_data["bind_prefixes"].splitlines()
                if line.strip()]

    def changes(self) -> dict:
        """The cleaned data as ``do_update_policy``'s keyword arguments."""
        data = dict(self.cleaned_data)
        data["max_nano_cpus"] = data.pop("max_cpus")
        return data


class UserForm(forms.Form):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "off",
                                                      "spellcheck": "false"}),
        help_text="Letters, digits and @ . + - _ only.")
    email = forms.EmailField(label="E-mail", required=False, widget=forms.TextInput(
        attrs={"placeholder": "dana@example.com", "autocomplete": "off", "inputmode": "email"}))
    site_admin = forms.BooleanField(required=False, label="Site admin",
                                    help_text="Sees and does everything, in every team.")
