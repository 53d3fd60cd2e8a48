"""Changes to teams, members, team policy and users (the panel's team and user pages).

Each ``do_*`` function checks the permission (a team's role, or site admin for what concerns
the whole site), changes the data and writes the audit row with its before and after.
Refusals raise ``PermissionDenied`` (403), ``Conflict`` (409) or ``InvalidParameter`` (400);
a user's password is never set here: a new user gets an unusable one and sets it through the
one-time link of ``set_password_path``.
"""

import posixpath

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp import devices_for_user

from panel.audit import services as audit
from panel.errors import Conflict, InvalidParameter

from .models import Membership, Team
from .services import check_permission, deny, is_site_admin

POLICY_FIELDS = ("allow_privileged", "allow_host_namespaces", "allow_devices",
                 "allow_extra_capabilities", "allow_unconfined_seccomp", "bind_prefixes",
                 "allow_low_ports")
QUOTA_FIELDS = ("max_containers", "max_memory", "max_nano_cpus", "storage_quota")
ROLES = tuple(Membership.Role.values)


# ------------------------------------------------------------------------ shared helpers


def require_site_admin(user, what: str) -> None:
    """Raise (and audit) PermissionDenied unless ``user`` is a site admin (None: the system)."""
    if user is not None and not is_site_admin(user):
        raise deny(user, None, "administer the site", f"Only site admins may {what}.")


def policy_of(team: Team) -> dict:
    """The team's policy and quotas, as the audit rows show them."""
    return {name: getattr(team, name) for name in POLICY_FIELDS + QUOTA_FIELDS}


def _member_summary(membership: Membership) -> dict:
    return {"user": membership.user.get_username(), "role": membership.role}


def _user_summary(user) -> dict:
    return {"username": user.get_username(), "email": user.email, "is_active": user.is_active,
            "is_site_admin": user.is_superuser}


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidParameter(f"invalid role {role!r}: use one of {', '.join(ROLES)}")


def _owners(team: Team):
    return Membership.objects.filter(team=team, role=Membership.Role.OWNER)


def _record(action, *, actor, team, obj, before=None, after=None):
    """The audit row of a change to a team, a membership or a user."""
    if isinstance(obj, Team):
        obj_type, obj_id, obj_repr = "team", str(obj.pk), obj.name
    elif isinstance(obj, Membership):
        obj_type, obj_id = "membership", str(obj.pk)
        obj_repr = f"{obj.user.get_username()} in {obj.team.name}"
    else:
        obj_type, obj_id, obj_repr = "user", str(obj.pk), obj.get_username()
    return audit.record(action, actor=actor, team=team, obj_type=obj_type, obj_id=obj_id,
                        obj_repr=obj_repr, before=before, after=after)


def set_password_path(user) -> str:
    """The one-time link (a path) at which ``user`` sets its password; it stops working once
    the password is set (the token covers the password hash) or after
    PASSWORD_RESET_TIMEOUT."""
    uidb64 = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return reverse("password_reset_confirm", kwargs={"uidb64": uidb64, "token": token})


# ------------------------------------------------------------------------------ teams


def do_create_team(name: str, *, acting_user, owner=None) -> Team:
    """A new team (site admins only) whose first owner is ``owner`` or the creator."""
    require_site_admin(acting_user, "create teams")
    name = (name or "").strip()
    if not name:
        raise InvalidParameter("a team needs a name")
    owner = owner or acting_user
    with transaction.atomic():
        if Team.objects.filter(name__iexact=name).exists():
            raise Conflict(f"team name {name!r} is already in use")
        team = Team.objects.create(name=name)
        Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
        _record("team.create", actor=acting_user, team=team, obj=team,
                after={"name": name, "owner": owner.get_username(), **policy_of(team)})
    return team


def held_objects(team: Team) -> dict[str, int]:
    """What the team still holds that deleting it would orphan: {"containers": 2, ...}."""
    counts = {"containers": team.containers.count(), "images": team.images.count(),
              "volumes": team.volumes.count(), "networks": team.networks.count()}
    return {kind: count for kind, count in counts.items() if count}


def do_delete_team(team: Team, *, acting_user) -> None:
    """Delete the team (its owners only) once it holds no containers, images, volumes or
    networks; its memberships, tokens, jobs and registry credentials go with it."""
    check_permission(acting_user, team, "own")
    with transaction.atomic():
        held = held_objects(team)
        if held:
            what = ", ".join(f"{count} {kind if count > 1 else kind[:-1]}"
                             for kind, count in held.items())
            raise Conflict(f"team {team.name} still holds {what}: remove them (or ask a site "
                           f"admin to move them) before deleting the team")
        members = [_member_summary(m) for m in team.memberships.select_related("user")]
        _record("team.delete", actor=acting_user, team=team, obj=team,
                before={"name": team.name, "members": members, **policy_of(team)})
        team.delete()


def _clean_bind_prefixes(prefixes) -> list[str]:
    cleaned = []
    for raw in prefixes or []:
        prefix = str(raw).strip()
        if not prefix:
            continue
        if not prefix.startswith("/"):
            raise InvalidParameter(f"bind prefix {prefix!r} is not an absolute path")
        if ".." in prefix.split("/"):
            raise InvalidParameter(f"bind prefix {prefix!r} may not contain '..'")
        prefix = posixpath.normpath(prefix)
        if prefix not in cleaned:
            cleaned.append(prefix)
    return cleaned


def do_update_policy(team: Team, *, acting_user, **changes) -> list[str]:
    """Set policy and quota fields (``POLICY_FIELDS``, ``QUOTA_FIELDS``; a quota of None is no
    limit). Returns the names of the fields that changed; the audit row holds their values
    before and after."""
    check_permission(acting_user, team, "manage")
    unknown = set(changes) - set(POLICY_FIELDS + QUOTA_FIELDS)
    if unknown:
        raise InvalidParameter(f"unknown policy field(s): {', '.join(sorted(unknown))}")
    if "bind_prefixes" in changes:
        changes["bind_prefixes"] = _clean_bind_prefixes(changes["bind_prefixes"])
    for name in QUOTA_FIELDS:
        value = changes.get(name)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise InvalidParameter(f"{name} must be a whole number of at least 0 or empty")
    for name in POLICY_FIELDS:
        if name != "bind_prefixes" and name in changes:
            changes[name] = bool(changes[name])
    with transaction.atomic():
        team = Team.objects.select_for_update().get(pk=team.pk)
        changed = [name for name, value in changes.items() if getattr(team, name) != value]
        if not changed:
            return []
        before = {name: getattr(team, name) for name in changed}
        for name in changed:
            setattr(team, name, changes[name])
        team.save(update_fields=changed)
        _record("team.policy", actor=acting_user, team=team, obj=team, before=before,
                after={name: changes[name] for name in changed})
    return changed


# ---------------------------------------------------------------------------- members


def _find_user(identifier: str):
    """The user of this username (or e-mail address, when exactly one user has it)."""
    User = get_user_model()
    user = User.objects.filter(username=identifier).first()
    if user is None and "@" in identifier:
        matches = list(User.objects.filter(email__iexact=identifier)[:2])
        user = matches[0] if len(matches) == 1 else None
    return user


def _new_user(username: str, *, email: str = "", is_site_admin: bool = False):
    """A user with an unusable password (it sets one through ``set_password_path``)."""
    User = get_user_model()
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        raise InvalidParameter(f"invalid username {username!r}: use letters, digits and "
                               "@ . + - _ only") from None
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(f"username {username!r} is already taken")
    user = User(username=username, email=email, is_superuser=is_site_admin,
                is_staff=is_site_admin)
    user.set_unusable_password()
    user.save()
    return user


def do_invite_member(team: Team, identifier: str, role: str = Membership.Role.OPERATOR, *,
                     acting_user) -> tuple[Membership, bool]:
    """Add a user (by username or e-mail) to the team with ``role``; a user nobody knows is
    created first. Returns (membership, created). Only owners may add owners."""
    check_permission(acting_user, team, "manage")
    _check_role(role)
    if role == Membership.Role.OWNER:
        check_permission(acting_user, team, "own")
    identifier = (identifier or "").strip()
    if not identifier:
        raise InvalidParameter("name a user by username or e-mail address")
    with transaction.atomic():
        user = _find_user(identifier)
        created = user is None
        if created:
            user = _new_user(identifier, email=identifier if "@" in identifier else "")
            _record("user.create", actor=acting_user, team=team, obj=user,
                    after=_user_summary(user))
        existing = Membership.objects.filter(team=team, user=user).first()
        if existing is not None:
            raise Conflict(f"{user.get_username()} is already a member of team {team.name} "
                           f"({existing.role})")
        membership = Membership.objects.create(team=team, user=user, role=role)
        _record("team.member.add", actor=acting_user, team=team, obj=membership,
                after=_member_summary(membership))
    return membership, created


def _check_owner_change(membership: Membership, acting_user, leaving_owner: bool) -> None:
    """Owners alone make or unmake owners, and a team always keeps one."""
    check_permission(acting_user, membership.team, "own")
    if leaving_owner and not _owners(membership.team).exclude(pk=membership.pk).exists():
        raise Conflict(f"{membership.user.get_username()} is the last owner of team "
                       f"{membership.team.name}: make another member owner first")


def do_change_role(membership: Membership, role: str, *, acting_user) -> Membership:
    team = membership.team
    check_permission(acting_user, team, "manage")
    _check_role(role)
    if role == membership.role:
        return membership
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related(
            "user", "team").get(pk=membership.pk)
        was_owner = membership.role == Membership.Role.OWNER
        if was_owner or role == Membership.Role.OWNER:
            _check_owner_change(membership, acting_user, leaving_owner=was_owner)
        before = {"role": membership.role}
        membership.role = role
        membership.save(update_fields=["role"])
        _record("team.member.role", actor=acting_user, team=team, obj=membership,
                before={"user": membership.user.get_username(), **before},
                after=_member_summary(membership))
    return membership


def do_remove_member(membership: Membership, *, acting_user) -> None:
    team = membership.team
    check_permission(acting_user, team, "manage")
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related(
            "user", "team").get(pk=membership.pk)
        if membership.role == Membership.Role.OWNER:
            _check_owner_change(membership, acting_user, leaving_owner=True)
        _record("team.member.remove", actor=acting_user, team=team, obj=membership,
                before=_member_summary(membership))
        membership.delete()


# ------------------------------------------------------------------- users (site admins)


def do_create_user(username: str, *, acting_user, email: str = "",
                   is_site_admin: bool = False):
    """A new user with an unusable password: hand it ``set_password_path(user)``."""
    require_site_admin(acting_user, "create users")
    with transaction.atomic():
        user = _new_user((username or "").strip(), email=(email or "").strip(),
                         is_site_admin=is_site_admin)
        _record("user.create", actor=acting_user, team=None, obj=user, after=_user_summary(user))
    return user


def _other_active_site_admins(user):
    return get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(pk=user.pk)


def do_set_active(user, active: bool, *, acting_user):
    """Deactivate (no login, no API token works) or reactivate a user."""
    require_site_admin(acting_user, "deactivate or reactivate users")
    if user.is_active == active:
        return user
    if not active and acting_user is not None and user.pk == acting_user.pk:
        raise Conflict("you cannot deactivate yourself")
    with transaction.atomic():
        before = _user_summary(user)
        user.is_active = active
        user.save(update_fields=["is_active"])
        _record("user.activate" if active else "user.deactivate", actor=acting_user,
                team=None, obj=user, before=before, after=_user_summary(user))
    return user


def do_set_site_admin(user, site_admin: bool, *, acting_user):
    """Make or unmake a site admin (a superuser; staff too, for the Django admin)."""
    require_site_admin(acting_user, "change who is a site admin")
    if user.is_superuser == site_admin:
        return user
    with transaction.atomic():
        if not site_admin and user.is_active and not _other_active_site_admins(user).exists():
            raise Conflict(f"{user.get_username()} is the last active site admin")
        before = _user_summary(user)
        user.is_superuser = user.is_staff = site_admin
        user.save(update_fields=["is_superuser", "is_staff"])
        _record("user.site_admin", actor=acting_user, team=None, obj=user, before=before,
                after=_user_summary(user))
    return user


def otp_devices(user) -> list:
    """The user's django-otp devices (TOTP: panel/teams/two_factor.py), confirmed or not."""
    return list(devices_for_user(user, confirmed=None))


def do_reset_2fa(user, *, acting_user) -> int:
    """Delete the user's second-factor devices (lost phone): it signs in with its password
    alone and may set up 2FA again. Returns how many were deleted."""
    require_site_admin(acting_user, "reset two-factor authentication")
    with transaction.atomic():
        devices = otp_devices(user)
        for device in devices:
            device.delete()
        _record("user.reset_2fa", actor=acting_user, team=None, obj=user,
                before={"devices": [type(d).__name__ for d in devices]}, after={"devices": []})
    return len(devices)
