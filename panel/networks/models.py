from django.db import models


class Network(models.Model):
    """A container network on a node. Drivers: ``bridge`` (a Linux bridge with its subnet),
    ``host`` and ``null`` (the node's namespace, none at all: the default networks "host"
    and "none"). The node's plumbing is built by ``workers.runtime.network``."""

    id = models.CharField(primary_key=True, max_length=64)
    name = models.CharField(max_length=255, unique=True)
    team = models.ForeignKey("teams.Team", null=True, blank=True, on_delete=models.PROTECT, related_name="networks")
    node = models.ForeignKey("nodes.Node", on_delete=models.PROTECT, related_name="networks")
    driver = models.CharField(max_length=32, default="bridge")
    scope = models.CharField(max_length=16, default="local")
    labels = models.JSONField(default=dict, blank=True)
    internal = models.BooleanField(default=False)
    attachable = models.BooleanField(default=False)
    ipam = models.JSONField(default=dict, blank=True)  # Docker's IPAM object as inspect shows it
    subnet = models.CharField(max_length=64, blank=True)  # "10.0.42.0/24"; "" for host/none
    ip_range = models.CharField(max_length=64, blank=True)  # where dynamic addresses come from
    gateway = models.CharField(max_length=64, blank=True)  # the bridge's own address
    options = models.JSONField(default=dict, blank=True)  # driver options (strings), as Docker
    # With icc off (options com.docker.network.bridge.enable_icc=false): the only container
    # pairs allowed to talk, [{"src": ip|container name, "dst": ..., "proto", "port"}].
    allow = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.name

    @property
    def is_default(self) -> bool:
        return self.team_id is None and self.name in ("bridge", "host", "none")


class Endpoint(models.Model):
    """One container on one bridge network: its address there (IPAM: unique per network,
    enforced by the database so that concurrent workers never hand out one address twice)."""

    id = models.CharField(primary_key=True, max_length=64)  # Docker's EndpointID; names the veth
    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="endpoints")
    container = models.ForeignKey("containers.Container", on_delete=models.CASCADE,
                                  related_name="endpoints")
    ip = models.CharField(max_length=64)
    mac = models.CharField(max_length=17)
    ifname = models.CharField(max_length=15)  # eth0, eth1... inside the container
    static = models.BooleanField(default=False)  # --ip
    aliases = models.JSONField(default=list, blank=True)  # --network-alias
    links = models.JSONField(default=list, blank=True)  # --link "name:alias" (default bridge)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "ifname"]
        constraints = [
            models.UniqueConstraint(fields=["network", "ip"], name="endpoint_ip_once"),
            models.UniqueConstraint(fields=["network", "container"], name="endpoint_once"),
        ]

    def __str__(self):
        return f"{self.container_id[:12]} on {self.network_id[:12]} ({self.ip})"


class PublishedPort(models.Model):
    """A host port a running container holds (-p, -P); chosen at start, released when the
    container stops for good. Unique per (host address, protocol, port)."""

    container = models.ForeignKey("containers.Container", on_delete=models.CASCADE,
                                  related_name="published_ports")
    node = models.ForeignKey("nodes.Node", on_delete=models.CASCADE, related_name="+")
    container_port = models.IntegerField()
    proto = models.CharField(max_length=3)  # tcp | udp
    host_ip = models.CharField(max_length=64, blank=True)  # "" = every host address
    host_port = models.IntegerField()

    class Meta:
        ordering = ["container_port", "proto", "host_ip"]
        constraints = [
            models.UniqueConstraint(fields=["node", "host_ip", "proto", "host_port"],
                                    name="host_port_once"),
        ]

    def __str__(self):
        return f"{self.host_ip or '0.0.0.0'}:{self.host_port}->{self.container_port}/{self.proto}"
