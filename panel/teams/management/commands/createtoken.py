from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError

from panel.teams.models import ApiToken


class Command(BaseCommand):
    help = "Issue a Docker API token for a user; the key is printed once."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--quiet", action="store_true", help="print only the key")

    def handle(self, *args, username, name, quiet, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user {username!r}") from None
        _, key = ApiToken.issue(user, name)
        if quiet:
            self.stdout.write(key)
            return
        self.stdout.write(f"Token {name!r} for {username}: {key}")
        self.stdout.write(
            'Put it in ~/.docker/config.json: {"HttpHeaders": {"Authorization": "Bearer ' + key + '"}}'
        )
