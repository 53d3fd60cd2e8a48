from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management import BaseCommand, CommandError
from django.utils import timezone

from panel.audit import context
from panel.errors import DockyardError
from panel.teams import tokens
from panel.teams.models import Team


class Command(BaseCommand):
    help = ("Issue a Docker API token for a user, scoped to one of its teams; the key is "
            "printed once.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--team", help="the team the token acts in (default: the user's "
                            "only team; none for a site admin: every team)")
        parser.add_argument("--expires", type=int, metavar="DAYS",
                            help="days until the token expires (default: never)")
        parser.add_argument("--quiet", action="store_true", help="print only the key")

    def handle(self, *args, username, name, team, expires, quiet, **options):
        User = get_user_model()
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
        scope = _team(user, team)
        if expires is not None and expires <= 0:
            raise CommandError("--expires must be a positive number of days")
        until = timezone.now() + timedelta(days=expires) if expires else None
        try:
            with context.bound("command"):
                _, key = tokens.issue(user, name, team=scope, expires=until)
        except (DockyardError, PermissionDenied) as exc:
            raise CommandError(str(exc)) from None
        if quiet:
            self.stdout.write(key)
            return
        where = f"team {scope.name}" if scope else "every team"
        self.stdout.write(f"Token {name!r} for {username} in {where}: {key}")
        self.stdout.write(
            'Put it in ~/.docker/config.json: {"HttpHeaders": {"Authorization": "Bearer '
            + key + '"}}'
        )


def _team(user, name):
    """The named team, else the user's only team (a site admin's token may be unscoped)."""
    if name:
        try:
            return Team.objects.get(name=name)
        except Team.DoesNotExist:
            raise CommandError(f"no team {name!r}") from None
    if user.is_superuser:
        return None
    teams = list(Team.objects.filter(memberships__user=user).distinct()[:2])
    if not teams:
        raise CommandError(f"{user.get_username()} is in no team: add it to one first")
    if len(teams) > 1:
        raise CommandError(f"{user.get_username()} is in several teams: name one with --team")
    return teams[0]
