"""Who may do what. The full role matrix comes with the Teams issue; the shape is here."""

from django.core.exceptions import PermissionDenied

from .models import Membership, Team

DEFAULT_TEAM_NAME = "default"

# What each role may do; site admins (superusers) may do everything.
ROLE_PERMISSIONS = {
    Membership.Role.OWNER: {"view", "operate", "manage"},
    Membership.Role.ADMIN: {"view", "operate", "manage"},
    Membership.Role.OPERATOR: {"view", "operate"},
    Membership.Role.VIEWER: {"view"},
    Membership.Role.AUDITOR: {"audit"},
}


def default_team() -> Team:
    team, _ = Team.objects.get_or_create(name=DEFAULT_TEAM_NAME)
    return team


def teams_of(user):
    """The teams whose objects the user may see."""
    if user.is_superuser:
        return Team.objects.all()
    return Team.objects.filter(memberships__user=user)


def primary_team(user) -> Team:
    """The team new objects of this user belong to when none is named."""
    membership = Membership.objects.filter(user=user).select_related("team").order_by("id").first()
    if membership:
        return membership.team
    if user.is_superuser:
        return default_team()
    raise PermissionDenied("You are not a member of any team.")


def has_permission(user, team, permission: str) -> bool:
    if user is None:  # the system itself (restart policies, reconciliation)
        return True
    if user.is_superuser:
        return True
    roles = Membership.objects.filter(user=user, team=team).values_list("role", flat=True)
    return any(permission in ROLE_PERMISSIONS.get(role, ()) for role in roles)


def check_permission(user, team, permission: str) -> None:
    if not has_permission(user, team, permission):
        raise PermissionDenied(f"You may not {permission} in team {team.name}.")
