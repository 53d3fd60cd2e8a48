import secrets

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, call_command
from django.db import transaction

from panel.audit import services as audit
from panel.nodes.services import local_node
from panel.teams.models import Membership
from panel.teams.services import default_team


class Command(BaseCommand):
    help = "Register this node, the default team and the admin login (printed once), build base images."

    def add_arguments(self, parser):
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password", help="default: a random one, printed once")
        parser.add_argument("--skip-images", action="store_true")

    def handle(self, *args, admin_username, admin_password, skip_images, **options):
        User = get_user_model()
        with audit.command_context("bootstrap"), transaction.atomic():
            node = local_node()
            team = default_team()
            user = User.objects.filter(username=admin_username).first()
            if user is None:
                password = admin_password or secrets.token_urlsafe(12)
                user = User.objects.create_superuser(admin_username, "", password)
                audit.record("user.create", actor=None, team=team, obj_type="user",
                             obj_id=str(user.pk), obj_repr=admin_username,
                             after={"site_admin": True, "role": Membership.Role.OWNER})
                self.stdout.write(f"Created the admin login: {admin_username} / {password}")
            elif admin_password:
                user.set_password(admin_password)
                user.save(update_fields=["password"])
                audit.record("user.set_password", actor=None, team=None, obj_type="user",
                             obj_id=str(user.pk), obj_repr=admin_username)
            else:
                self.stdout.write(f"The admin login {admin_username} exists (password unchanged).")
            Membership.objects.get_or_create(user=user, team=team, defaults={"role": Membership.Role.OWNER})
        self.stdout.write(f"Node {node.name}, state root {node.state_root}, team {team.name}.")
        if not skip_images:
            call_command("build_base_images", stdout=self.stdout)
