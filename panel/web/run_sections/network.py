"""The run form's Network section: `--network`, `--ip`, `--network-alias`, `-p`, `-P`,
`--hostname`, `--dns`, `--add-host` and `--link`.

Each value is read as the docker CLI reads it and put where the CLI puts it in Docker's create
request (HostConfig.NetworkMode, PortBindings, PublishAllPorts, Dns, ExtraHosts, Links,
Config.Hostname, ExposedPorts, NetworkingConfig.EndpointsConfig). The services decide what is
allowed (--ip on the default bridge, host ports in use...); their errors land on the field
they are about through ``error_fields``."""

import ipaddress
import re

from django import forms

from panel.containers import services as containers
from panel.networks import services as networks

from . import RunSection

PROTOCOLS = ("tcp", "udp", "sctp")
BUILTIN_MODES = ("bridge", "host", "none")
# RFC 1123 labels, as dockerd accepts a hostname
_HOSTNAME = re.compile(r"^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                       r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")


def _port_range(text: str) -> tuple[int, int]:
    """``80`` or ``8000-8010`` (nat.ParsePortRange); ValueError when it is not one."""
    start, sep, end = text.partition("-")
    low, high = int(start), int(end) if sep else int(start)
    if not (0 <= low <= high <= 65535):
        raise ValueError(text)
    return low, high


def parse_publish(text: str) -> list[tuple[str, dict]]:
    """One ``-p [ip:][host_port:]container_port[/proto]`` value as (``"80/tcp"``, binding)
    pairs, read as the docker CLI's nat.ParsePortSpec reads it (with its words on errors)."""
    parts = text.split(":")
    container = parts[-1]
    host_ip = ":".join(parts[:-2])
    host_port = parts[-2] if len(parts) > 1 else ""
    container, _, proto = container.partition("/")
    proto = proto or "tcp"
    if host_ip.startswith("["):  # [::1]:8080:80
        host_ip = host_ip.strip("[]")
    if host_ip:
        try:
            ipaddress.ip_address(host_ip)
        except ValueError:
            raise forms.ValidationError(f"Invalid ip address: {host_ip}") from None
    if not container:
        raise forms.ValidationError(f"No port specified: {text}<empty>")
    try:
        start, end = _port_range(container)
    except ValueError:
        raise forms.ValidationError(f"Invalid containerPort: {container}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = _port_range(host_port)
        except ValueError:
            raise forms.ValidationError(f"Invalid hostPort: {host_port}") from None
        # a host range for one container port is where a free port is picked from
        if end - start != host_end - host_start and end != start:
            raise forms.ValidationError("Invalid ranges specified for container and host "
                                        f"Ports: {container} and {host_port}")
    if proto.lower() not in PROTOCOLS:
        raise forms.ValidationError(f"Invalid proto: {proto}")
    found = []
    for offset in range(end - start + 1):
        port = str(host_start + offset) if host_port else ""
        if start == end and host_start != host_end:
            port = f"{host_start}-{host_end}"
        found.append((f"{start + offset}/{proto.lower()}", {"HostIp": host_ip, "HostPort": port}))
    return found


def _words(text: str) -> list[str]:
    """Values separated by commas or white space."""
    return [word for word in re.split(r"[,\s]+", text) if word]


def _lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines that are neither empty nor # comments."""
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#")]


def _textarea(placeholder: str, rows: int = 2):
    return forms.Textarea(attrs={"rows": rows, "placeholder": placeholder, "spellcheck": "false",
                                 "autocomplete": "off"})


def _text(placeholder: str):
    return forms.TextInput(attrs={"placeholder": placeholder, "autocomplete": "off",
                                  "spellcheck": "false"})


class NetworkSection(RunSection):
    section_id = "network-settings"
    section_title = "Network"
    section_summary = "network, address, published ports, hostname, DNS, hosts and links"
    # Words of the services' errors (lowercased), the field they belong to; the first match wins.
    # ("supported" holds "port": the words of ports come after the others.)
    error_fields = (("user specified ip", "ip"), ("ip address", "ip"), ("alias", "aliases"),
                    ("hostname", "hostname"), ("dns", "dns"), ("extra host", "add_host"),
                    ("add-host", "add_host"), ("host-to-ip", "add_host"),
                    ("could not get container", "links"), ("port publishing", "publish"),
                    ("link", "links"), ("port is already allocated", "publish"),
                    ("invalid port", "publish"), ("ports", "publish"), ("port range", "publish"),
                    ("network", "network"))

    network = forms.ChoiceField(
        label="Network (--network)", required=False, initial="bridge",
        help_text="bridge: Docker's default network; host: the node's own network stack; none: "
                  "only a loopback; a user network; or another running container's network.",
    )
    ip = forms.CharField(
        label="IPv4 address (--ip)", required=False, max_length=64, widget=_text("10.0.42.200"),
        help_text="A fixed address in the user network's subnet. Empty: the next free one.",
    )
    aliases = forms.CharField(
        label="Network aliases (--network-alias)", required=False, max_length=2000,
        widget=_text("web, www"),
        help_text="More names other containers on the user network can reach it by, "
                  "separated by commas.",
    )
    publish = forms.CharField(
        label="Published ports (-p)", required=False, strip=False,
        widget=_textarea("8080:80\n127.0.0.1:8053:53/udp\n80", rows=3),
        help_text="One per line: [host address:][host port:]container port[/tcp|/udp]. "
                  "Without a host port a free one is picked; 8000-8001:80-81 publishes ranges.",
    )
    publish_all = forms.BooleanField(
        label="Publish every exposed port on a free host port (-P)", required=False,
        help_text="The image's EXPOSE ports and those above.",
    )
    hostname = forms.CharField(
        label="Hostname (--hostname)", required=False, max_length=253,
        widget=_text("the container's short id"),
        help_text="Written to /etc/hostname and, with its address, /etc/hosts.",
    )
    dns = forms.CharField(
        label="DNS servers (--dns)", required=False, max_length=2000, widget=_text("8.8.8.8"),
        help_text="Nameserver addresses for /etc/resolv.conf, separated by commas.",
    )
    add_host = forms.CharField(
        label="Extra hosts (--add-host)", required=False, strip=False,
        widget=_textarea("db.internal:10.0.42.10"),
        help_text="One host:address per line, added to /etc/hosts.",
    )
    links = forms.CharField(
        label="Links (--link)", required=False, max_length=2000, widget=_text("web:web"),
        help_text="name:alias of containers on the default bridge this one can reach by the "
                  "alias, separated by commas.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # a callable: asked when the form is shown or checked, after RunForm has set self.user
        self.fields["network"].choices = self._network_choices

    def _network_choices(self) -> list:
        user_networks = [(net.name, net.name) for net in networks.visible_networks(self.user)
                         .exclude(name__in=BUILTIN_MODES).order_by("name")]
        running = [(f"container:{name}", name) for name in containers.visible_containers(self.user)
                   .filter(state="running").order_by("name").values_list("name", flat=True)]
        choices = [("Default networks", [(mode, mode) for mode in BUILTIN_MODES])]
        if user_networks:
            choices.append(("User networks", user_networks))
        if running:
            choices.append(("Share a running container's network", running))
        return choices

    def clean_ip(self):
        text = self.cleaned_data["ip"].strip()
        if text:
            try:
                ipaddress.IPv4Address(text)
            except ValueError:
                raise forms.ValidationError(f"invalid IPv4 address: {text}") from None
        return text

    def clean_aliases(self):
        return _words(self.cleaned_data["aliases"])

    def clean_publish(self):
        bindings, errors = {}, []
        for number, line in _lines(self.cleaned_data["publish"]):
            try:
                found = parse_publish(line)
            except forms.ValidationError as exc:
                errors.append(f"Line {number} ({line}): {exc.messages[0]}")
                continue
            for port, binding in found:
                bindings.setdefault(port, []).append(binding)
        if errors:
            raise forms.ValidationError(errors)
        return bindings

    def clean_hostname(self):
        text = self.cleaned_data["hostname"].strip()
        if text and not _HOSTNAME.match(text):
            raise forms.ValidationError(f"invalid hostname format: {text}")
        return text

    def clean_dns(self):
        found = _words(self.cleaned_data["dns"])
        for address in found:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise forms.ValidationError(
                    f"{address} is not an ip address") from None
        return found

    def clean_add_host(self):
        found, errors = [], []
        for number, line in _lines(self.cleaned_data["add_host"]):
            host, sep, address = line.partition(":")  # an IPv6 address keeps its colons
            try:
                if not (host and sep):
                    raise ValueError
                if address != "host-gateway":
                    ipaddress.ip_address(address)
            except ValueError:
                errors.append(f"Line {number}: bad format for add-host: {line!r} "
                              "(use host:address)")
                continue
            found.append(line)
        if errors:
            raise forms.ValidationError(errors)
        return found

    def clean_links(self):
        return _words(self.cleaned_data["links"])

    def apply(self, data: dict, config: dict, host_config: dict) -> None:
        mode = data.get("network") or ""
        if mode:
            host_config["NetworkMode"] = mode
        endpoint = {}
        if data.get("ip"):
            endpoint["IPAMConfig"] = {"IPv4Address": data["ip"]}
        if data.get("aliases"):
            endpoint["Aliases"] = data["aliases"]
        if endpoint:
            config["NetworkingConfig"] = {"EndpointsConfig": {mode or "bridge": endpoint}}
        if data.get("publish"):
            host_config["PortBindings"] = data["publish"]
            config["ExposedPorts"] = {port: {} for port in data["publish"]}
        if data.get("publish_all"):
            host_config["PublishAllPorts"] = True
        if data.get("hostname"):
            config["Hostname"] = data["hostname"]
        for key, field in (("Dns", "dns"), ("ExtraHosts", "add_host"), ("Links", "links")):
            if data.get(field):
                host_config[key] = data[field]
