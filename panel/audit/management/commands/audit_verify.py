"""Check the audit log's hash chain (and archives of pruned rows): exit 0 when intact, else
name the first altered, missing or misplaced entry and exit 1."""

from django.core.management import BaseCommand

from panel.audit import retention, services


class Command(BaseCommand):
    help = ("Verify the audit log's hash chain; names the first altered, missing or "
            "out-of-order entry.")

    def add_arguments(self, parser):
        parser.add_argument("--archive", action="append", default=[], metavar="FILE",
                            help="also verify an archive written by a prune (repeatable)")

    def handle(self, *args, archive, **options):
        intact = True
        for path in archive:
            intact &= self._report(f"archive {path}", retention.verify_archive(path))
        intact &= self._report("audit log", services.verify_log())
        if not intact:
            raise SystemExit(1)

    def _report(self, what: str, verdict) -> bool:
        if verdict.problem:
            self.stdout.write(f"{what}: {verdict.problem}")
            return False
        self.stdout.write(f"{what} intact: {verdict.count} "
                          f"{'entry' if verdict.count == 1 else 'entries'}")
        return True
