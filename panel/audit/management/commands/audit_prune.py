"""Archive and delete old audit rows now (the worker does it daily when
DOCKYARD_AUDIT_RETENTION_DAYS > 0); the prune is recorded in the chain."""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.management import BaseCommand, CommandError
from django.utils import timezone

from panel.audit import retention, services


class Command(BaseCommand):
    help = "Archive the audit rows older than a date (or N days) and delete them."

    def add_arguments(self, parser):
        when = parser.add_mutually_exclusive_group()
        when.add_argument("--before", metavar="DATE",
                          help="prune rows older than this ISO date or date-time (UTC)")
        when.add_argument("--days", type=int, metavar="N",
                          help="prune rows older than N days (default: "
                               "DOCKYARD_AUDIT_RETENTION_DAYS)")

    def handle(self, *args, before, days, **options):
        cutoff = _cutoff(before, days)
        with services.command_context("audit_prune"):
            prunes = retention.prune(cutoff)
        if not prunes:
            self.stdout.write(f"nothing older than {cutoff.isoformat()} to prune")
        for made in prunes:
            self.stdout.write(f"archived {made.count} entries up to {made.upto_seq} in "
                              f"{retention.archive_dir() / made.archive} "
                              f"(sha256 {made.archive_sha256})")


def _cutoff(before: str | None, days: int | None) -> datetime:
    if before:
        try:
            parsed = datetime.fromisoformat(before)
        except ValueError:
            raise CommandError(f"--before must be an ISO date like 2026-01-31, not {before!r}") \
                from None
        return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)
    days = settings.AUDIT_RETENTION_DAYS if days is None else days
    if days <= 0:
        raise CommandError("give --before DATE or --days N (DOCKYARD_AUDIT_RETENTION_DAYS "
                           "is 0: keep everything)")
    return timezone.now() - timedelta(days=days)
