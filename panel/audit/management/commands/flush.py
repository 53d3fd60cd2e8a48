"""Django's `flush` (erase every table; transactional tests run it after each test), with the
audit log's append-only triggers lifted for its own run and put back after it."""

from django.core.management.commands import flush
from django.db import connections

from panel.audit import triggers


class Command(flush.Command):
    def handle(self, **options):
        connection = connections[options["database"]]
        triggers.drop(connection)
        try:
            return super().handle(**options)
        finally:
            triggers.create(connection)
