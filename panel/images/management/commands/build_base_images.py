from django.core.management import BaseCommand

from panel.images import services
from panel.nodes.services import local_node

BASE_TAGS = ["busybox:latest", "busybox:1.29"]


class Command(BaseCommand):
    help = "Build busybox:latest and busybox:1.29 from Debian's busybox-static into the node's store."

    def add_arguments(self, parser):
        parser.add_argument("--busybox", default="/bin/busybox")

    def handle(self, *args, busybox, **options):
        image = services.build_busybox(node=local_node(), busybox_path=busybox, tags=BASE_TAGS)
        self.stdout.write(f"Base images {', '.join(BASE_TAGS)}: sha256:{image.id}")
