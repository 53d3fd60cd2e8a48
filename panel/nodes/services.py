import socket

from django.conf import settings

from .models import Node


def local_node() -> Node:
    """The node this process runs on (DOCKYARD_NODE), registered on first use."""
    node, _ = Node.objects.get_or_create(
        name=settings.NODE_NAME,
        defaults={"hostname": socket.gethostname(), "state_root": str(settings.STATE_ROOT)},
    )
    return node
