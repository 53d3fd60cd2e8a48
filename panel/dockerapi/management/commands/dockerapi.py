"""`manage.py dockerapi`: serve the Docker Engine API on the unix socket and TCP."""

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management import BaseCommand, CommandError

from panel.dockerapi import server
from panel.dockerapi.asgi import get_api_application


class Command(BaseCommand):
    help = "Serve the Docker Engine API (v1.41) on DOCKYARD_API_SOCKET and DOCKYARD_API_TCP."

    def add_arguments(self, parser):
        parser.add_argument("--socket", default=None,
                            help=f"unix socket path (default {settings.API_SOCKET}; '' disables)")
        parser.add_argument("--tcp", default=None,
                            help=f"host:port (default {settings.API_TCP or 'disabled'}; "
                                 "'' disables)")

    def handle(self, *args, socket=None, tcp=None, **options):
        unix_path = settings.API_SOCKET if socket is None else socket
        tcp_address = settings.API_TCP if tcp is None else tcp
        logging.getLogger("dockyard.dockerapi").setLevel(logging.INFO)
        app = get_api_application()
        try:
            asyncio.run(self._serve(app, unix_path, tcp_address))
        except (RuntimeError, OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc

    async def _serve(self, app, unix_path, tcp_address):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await server.serve(app, unix_path=unix_path, tcp=tcp_address, stop=stop)
