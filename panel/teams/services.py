"""Who may do what: the role matrix, the teams a user acts in, and the permission check.

Permissions (what a role grants in its team):
- view: see the team's objects, their logs and stats (viewer, operator, admin, owner)
- operate: run, stop, exec, attach, build, pull... (operator, admin, owner)
- manage: members, policy, quotas, registry credentials (admin, owner)
- audit: read the team's audit log (auditor, owner)
- own: delete the team (owner)
Site admins (superusers) may do everything everywhere. A user acting through an API token
scoped to a team (``user.token_team_id``, set by the Docker API's authentication) acts in
that team only.

Refusals are audited: `check_permission` (and `deny` for the checks that are not a role's)
note a `permission.denied` row; `hidden` makes the 404 for another team's object and notes
an `object.hidden` row, so the user cannot tell it from a missing one but the team can.
"""

from django.core.exceptions import PermissionDenied

from panel.errors import NotFound

from .models import Membership, Team

DEFAULT_TEAM_NAME = "default"

ROLE_PERMISSIONS = {
    Membership.Role.OWNER: {"view", "operate", "manage", "audit", "own"},
    Membership.Role.ADMIN: {"view", "operate", "manage"},
    Membership.Role.OPERATOR: {"view", "operate"},
    Membership.Role.VIEWER: {"view"},
    Membership.Role.AUDITOR: {"audit"},
}


def roles_with(permission: str) -> list[str]:
    return [role for role, granted in ROLE_PERMISSIONS.items() if permission in granted]


def default_team() -> Team:
    team, _ = Team.objects.get_or_create(name=DEFAULT_TEAM_NAME)
    return team


def _token_team_id(user):
    return getattr(user, "token_team_id", None)


def is_site_admin(user) -> bool:
    """A superuser acting with its full rights (not through a team-scoped API token)."""
    return bool(user is not None and user.is_superuser and _token_team_id(user) is None)


def teams_of(user, permission: str = "view"):
    """The teams in which the user has ``permission`` (whose objects it may see by default)."""
    teams = Team.objects.all()
    scope = _token_team_id(user)
    if scope is not None:
        teams = teams.filter(pk=scope)
    if user.is_superuser:
        return teams
    return teams.filter(memberships__user=user,
                        memberships__role__in=roles_with(permission)).distinct()


def roles_by_team(user) -> dict[int, set[str]]:
    """The user's roles per team id, read once per user object (a request's user): for
    what every page asks, such as which nav links to show."""
    cached = getattr(user, "_dockyard_roles", None)
    if cached is None:
        cached = {}
        for team_id, role in Membership.objects.filter(user=user).values_list("team_id", "role"):
            cached.setdefault(team_id, set()).add(role)
        user._dockyard_roles = cached
    return cached


def team_ids_with(user, permission: str) -> list[int]:
    """The ids of the teams where a member has ``permission`` (not for site admins)."""
    return [team_id for team_id, roles in roles_by_team(user).items()
            if any(permission in ROLE_PERMISSIONS.get(role, ()) for role in roles)]


def primary_team(user) -> Team:
    """The team new objects of this user belong to when none is named: the token's team, or
    the first team in which the user may operate (else its first team, where the permission
    check will then say no)."""
    scope = _token_team_id(user)
    if scope is not None:
        return Team.objects.get(pk=scope)
    memberships = Membership.objects.filter(user=user).select_related("team").order_by("id")
    membership = (memberships.filter(role__in=roles_with("operate")).first()
                  or memberships.first())
    if membership:
        return membership.team
    if user.is_superuser:
        return default_team()
    raise PermissionDenied("You are not a member of any team.")


def has_permission(user, team, permission: str) -> bool:
    if user is None:  # the system itself (restart policies, reconciliation)
        return True
    scope = _token_team_id(user)
    if scope is not None and getattr(team, "pk", None) != scope:
        return False
    if user.is_superuser:
        return True
    roles = Membership.objects.filter(user=user, team=team).values_list("role", flat=True)
    return any(permission in ROLE_PERMISSIONS.get(role, ()) for role in roles)


def deny(user, team, permission: str, message: str = "") -> PermissionDenied:
    """Note a `permission.denied` refusal; returns the PermissionDenied (403) to raise."""
    from panel.audit import services as audit

    message = message or f"You may not {permission} in team {team.name}."
    audit.note_refusal(message, actor=user, team=team, action="permission.denied",
                       params={"permission": permission})
    return PermissionDenied(message)


def check_permission(user, team, permission: str) -> None:
    if not has_permission(user, team, permission):
        raise deny(user, team, permission)


def hidden(user, message: str, *, obj_type: str, ref: str, elsewhere,
           team_field: str = "team") -> NotFound:
    """The NotFound for a lookup that found nothing the user may see. When ``elsewhere`` (the
    same lookup over every team's objects, a queryset) finds one, it is another team's
    object: an `object.hidden` refusal is noted for that team (``team_field`` of the row).
    The answer is the same either way."""
    from panel.audit import services as audit

    if user is not None:
        found = elsewhere.values_list(team_field, flat=True)[:1]
        if found:
            audit.note_refusal(message, actor=user, team=Team.objects.filter(pk=found[0]).first(),
                               action="object.hidden", obj_type=obj_type, obj_id=str(ref)[:64],
                               obj_repr=str(ref)[:200])
    return NotFound(message)
