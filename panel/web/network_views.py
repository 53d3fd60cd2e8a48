"""The networks page: list, create, remove, connect and disconnect containers, and the icc
allow-list policy (`docker network ...` and Dockyard's policy).

Thin views over panel.networks.services; a network outside the user's teams is 404."""

import ipaddress
from itertools import zip_longest

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from panel.containers import services as containers
from panel.errors import DockyardError, NotFound, message_of
from panel.jobs.models import Job
from panel.jobs.services import visible_jobs
from panel.networks import services as networks
from panel.teams.models import Membership
from panel.teams.services import has_permission, teams_of

from .team_choice import offer_teams
from .volume_views import key_value_lines

# (words in a services' error, the form field it belongs to); the first match wins
_ERROR_FIELDS = (("need a subnet", "subnet"), ("gateway", "gateway"), ("range", "ip_range"),
                 ("pool", "subnet"), ("subnet", "subnet"), ("name", "name"))
MAX_POLICY_ROWS = 200


def _subnet_field(placeholder: str, help_text: str, label: str | None = None):
    return forms.CharField(
        required=False, max_length=64, help_text=help_text, label=label,
        widget=forms.TextInput(attrs={"placeholder": placeholder, "autocomplete": "off",
                                      "spellcheck": "false"}))


class NetworkForm(forms.Form):
    """`docker network create --driver bridge --label k=v --attachable --scope local
    --subnet --ip-range --gateway --internal -o com.docker.network.bridge.enable_icc NAME`."""

    name = forms.CharField(
        max_length=255,
        widget=forms.TextInput(attrs={"placeholder": "user-network", "autocomplete": "off",
                                      "spellcheck": "false"}),
        help_text="Letters, digits, _ . and -. Containers join it with --network NAME.",
    )
    driver = forms.ChoiceField(choices=[("bridge", "bridge")], initial="bridge",
                               help_text="A Linux bridge on this node with its own subnet.")
    scope = forms.ChoiceField(choices=[("local", "local")], initial="local",
                              help_text="local: the network exists on this node only.")
    subnet = _subnet_field("10.0.42.0/24", "Empty: a free /24 is picked.")
    ip_range = _subnet_field("10.0.42.128/25", "Where containers' addresses come from, inside "
                                               "the subnet. Empty: the whole subnet.", "IP range")
    gateway = _subnet_field("10.0.42.1", "The bridge's own address. Empty: the subnet's first.")
    labels = forms.CharField(
        required=False, strip=False,  # the line numbers of errors are those the user sees
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "project=dockerinaction\nchapter=5",
                                     "spellcheck": "false"}),
        help_text="One key=value (or key) per line (--label).",
    )
    attachable = forms.BooleanField(
        required=False, label="Attachable (--attachable)",
        help_text="Containers may be connected to it and disconnected at any time.")
    internal = forms.BooleanField(
        required=False, label="Internal (--internal)",
        help_text="No way out: no masquerade to the node's networks and no published ports.")
    enable_icc = forms.BooleanField(
        required=False, initial=True, label="Containers may talk to each other (icc)",
        help_text="Unchecked (com.docker.network.bridge.enable_icc=false): only the pairs of "
                  "the network's allow list may, which you edit on its page.")
    team = forms.ChoiceField(required=False)

    def __init__(self, *args, teams, default_team=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.teams = offer_teams(self, teams, default_team)

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def _network(self, field: str, what: str) -> str:
        text = self.cleaned_data[field].strip()
        if text:
            try:
                ipaddress.IPv4Network(text, strict=False)
            except ValueError:
                raise forms.ValidationError(f"invalid {what} {text}: use a CIDR like "
                                            f"{self.fields[field].widget.attrs['placeholder']}"
                                            ) from None
        return text

    def clean_subnet(self):
        return self._network("subnet", "subnet")

    def clean_ip_range(self):
        return self._network("ip_range", "ip-range")

    def clean_gateway(self):
        text = self.cleaned_data["gateway"].strip()
        if text:
            try:
                ipaddress.IPv4Address(text)
            except ValueError:
                raise forms.ValidationError(f"invalid gateway address {text}") from None
        return text

    def clean_labels(self):
        return key_value_lines(self.cleaned_data["labels"], "label", need_value=False)

    def create(self, user):
        """The new network, or None with the services' error on the form."""
        data = self.cleaned_data
        ipam_config = {key: data[field] for key, field in (
            ("Subnet", "subnet"), ("IPRange", "ip_range"), ("Gateway", "gateway"))
            if data[field]}
        try:
            return networks.create(
                acting_user=user, name=data["name"], driver=data["driver"], scope=data["scope"],
                labels=data["labels"], attachable=data["attachable"], internal=data["internal"],
                options={} if data["enable_icc"] else {networks.ICC: "false"},
                ipam={"Driver": "default", "Config": [ipam_config] if ipam_config else []},
                team=self.teams.get(data.get("team") or ""), source="panel")
        except (DockyardError, PermissionDenied) as exc:
            message = message_of(exc)
            field = next((f for words, f in _ERROR_FIELDS if words in message.lower()), None)
            self.add_error(field, message)
            return None


def _get_network(user, name: str):
    try:
        return networks.resolve(user, name)
    except NotFound:
        raise Http404("No such network") from None


def _pool_size(network) -> int | None:
    """How many addresses containers can get: the ip-range (or subnet) without the network,
    broadcast and gateway addresses."""
    if not network.subnet:
        return None
    subnet = ipaddress.IPv4Network(network.subnet)
    pool = ipaddress.IPv4Network(network.ip_range) if network.ip_range else subnet
    reserved = {subnet.network_address, subnet.broadcast_address,
                ipaddress.IPv4Address(network.gateway)}
    return pool.num_addresses - sum(1 for address in reserved if address in pool)


def _row(user, network, in_use: int) -> dict:
    """What the list and the detail page show of one network."""
    return {
        "network": network,
        "in_use": in_use,
        "pool_size": _pool_size(network),
        "icc": network.driver != "bridge" or networks.network_config(network).icc,
        "can_remove": not network.is_default and has_permission(user, network.team, "operate"),
    }


@login_required
def network_list(request):
    """GET: the networks; POST: create one."""
    teams = list(teams_of(request.user).order_by("name"))
    default = Membership.objects.filter(user=request.user).order_by("id").first()
    form = NetworkForm(request.POST or None, teams=teams,
                       default_team=default.team if default else None)
    if request.method == "POST" and form.is_valid():
        network = form.create(request.user)
        if network is not None:
            messages.success(request, f"Network {network.name} created.")
            return redirect("web:network-detail", name=network.name)
    found = (networks.visible_networks(request.user).select_related("team")
             .annotate(in_use=Count("endpoints")).order_by("name"))
    return render(request, "web/network_list.html", {
        "rows": [_row(request.user, network, network.in_use) for network in found],
        "form": form,
        "show_team": len(teams) > 1,
    })


def _operator_check(user):
    """may_operate(container): the "operate" permission in its team, asked once per team."""
    answers = {}

    def may_operate(container) -> bool:
        if container.team_id not in answers:
            answers[container.team_id] = has_permission(user, container.team, "operate")
        return answers[container.team_id]

    return may_operate


def _members(user, network, may_operate) -> list[dict]:
    """The user's containers on the network (the default bridge is shared by every team):
    with their endpoint on a bridge network, or sharing the node's stack (host) or none at
    all (none)."""
    visible = containers.visible_containers(user)
    if network.driver == "bridge":
        mine = set(visible.filter(endpoints__network=network).values_list("id", flat=True))
        found = [(e.container, e) for e in networks.containers_of(network)
                 if e.container_id in mine]
    else:
        found = [(c, None) for c in visible.filter(spec__HostConfig__NetworkMode=network.name)
                 .select_related("team").order_by("name")]
    return [{"container": c, "endpoint": e, "can_disconnect": e is not None and may_operate(c)}
            for c, e in found]


def _connectable(user, network, members, may_operate) -> list:
    """The user's containers that could join this network (bridge networks only)."""
    if network.driver != "bridge":
        return []
    found = (containers.visible_containers(user)
             .exclude(id__in=[m["container"].id for m in members])
             .exclude(spec__HostConfig__NetworkMode__in=("host", "none"))
             .exclude(spec__HostConfig__NetworkMode__startswith="container:")
             .select_related("team").order_by("name"))
    return [c for c in found if may_operate(c)]


def _policy_rows(network) -> list[dict]:
    """The allow list as the editor shows it (with one empty row to add a pair)."""
    rows = [{"src": r.get("src", ""), "dst": r.get("dst", ""), "proto": r.get("proto") or "",
             "port": r.get("port") or ""} for r in network.allow or []]
    return rows + [{"src": "", "dst": "", "proto": "", "port": ""}]


def _policy_names(network, members) -> list[str]:
    """What the editor's selects offer: the containers on the network and whatever the allow
    list names already (an address, or a container that has left)."""
    named = {r.get(key) for r in network.allow or [] for key in ("src", "dst")}
    return sorted({m["container"].name for m in members} | (named - {None, ""}))


def _node_error(user, network) -> str:
    """The error of the network's latest job when the node failed it (its bridge or rules
    are not as the page shows them)."""
    job = (visible_jobs(user).filter(target_type="network", target_id=network.id)
           .order_by("-created").first())
    return job.error if job is not None and job.state == Job.State.FAILED else ""


@login_required
def network_detail(request, name):
    network = _get_network(request.user, name)
    may_operate = _operator_check(request.user)
    members = _members(request.user, network, may_operate)
    return render(request, "web/network_detail.html", {
        **_row(request.user, network, network.endpoints.count()),
        "members": members,
        "connectable": _connectable(request.user, network, members, may_operate),
        "can_manage_policy": network.driver == "bridge" and has_permission(
            request.user, network.team, "manage"),
        "policy_rows": _policy_rows(network),
        "policy_names": _policy_names(network, members),
        "bridge": networks.bridge_name(network) if network.driver == "bridge" else "",
        "prefixlen": network.subnet.partition("/")[2],
        "node_error": _node_error(request.user, network),
    })


def _back(network):
    return redirect("web:network-detail", name=network.name)


@login_required
@require_POST
def network_remove(request, name):
    network = _get_network(request.user, name)
    try:
        networks.remove(acting_user=request.user, network=network, source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        if request.POST.get("back") == "detail":  # the button on the network's own page
            return _back(network)
        return redirect("web:network-list")
    messages.success(request, f"Network {network.name} removed.")
    return redirect("web:network-list")


def _container(request):
    """The container named in the POST, or the page's error message when it is not found."""
    try:
        return containers.resolve(request.user, request.POST.get("container", "").strip())
    except DockyardError as exc:
        messages.error(request, message_of(exc))
        return None


@login_required
@require_POST
def network_connect(request, name):
    """`docker network connect [--ip] [--alias] NETWORK CONTAINER`."""
    network = _get_network(request.user, name)
    container = _container(request)
    if container is None:
        return _back(network)
    aliases = [a for a in request.POST.get("aliases", "").replace(",", " ").split() if a]
    try:
        networks.connect(acting_user=request.user, network=network, container=container,
                         ip=request.POST.get("ip", "").strip(), aliases=aliases, source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        return _back(network)
    messages.success(request, f"Connected {container.name} to {network.name}.")
    return _back(network)


@login_required
@require_POST
def network_disconnect(request, name):
    """`docker network disconnect NETWORK CONTAINER`."""
    network = _get_network(request.user, name)
    container = _container(request)
    if container is None:
        return _back(network)
    try:
        networks.disconnect(acting_user=request.user, network=network, container=container,
                            source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        return _back(network)
    messages.success(request, f"Disconnected {container.name} from {network.name}.")
    return _back(network)


def _posted_pairs(post) -> list[dict]:
    """The editor's rows (src, dst, proto, port lists of one length); empty rows skipped."""
    columns = [post.getlist(key)[:MAX_POLICY_ROWS] for key in ("src", "dst", "proto", "port")]
    return [{"src": src.strip(), "dst": dst.strip(), "proto": proto or None,
             "port": port.strip() or None}
            for src, dst, proto, port in zip_longest(*columns, fillvalue="")
            if src.strip() or dst.strip() or port.strip()]


@login_required
@require_POST
def network_policy(request, name):
    """Dockyard's policy: icc on or off, and with it off the allowed pairs and ports."""
    network = _get_network(request.user, name)
    try:
        networks.set_policy(acting_user=request.user, network=network,
                            icc=request.POST.get("icc") == "on",
                            allow=_posted_pairs(request.POST), source="panel")
    except DockyardError as exc:  # PermissionDenied: a 403 page
        messages.error(request, message_of(exc))
        return _back(network)
    messages.success(request, f"Policy of {network.name} saved.")
    return _back(network)
