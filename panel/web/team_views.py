"""The teams pages: the user's teams, and a team's members, invitations, policy and quotas.

Thin views over panel.teams.actions. A team is visible to its viewers, operators, admins and
owners (and site admins); to anyone else, auditors included, its page is a 404. A refusal of
the actions' permission checks is a 403 (PermissionDenied, audited); the page only offers what
the user's role allows."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from panel.containers import quotas
from panel.containers.resources import human_bytes
from panel.errors import DockyardError, message_of
from panel.teams import actions
from panel.teams.models import Membership, Team
from panel.teams.services import check_permission, has_permission, hidden, teams_of

from .team_forms import (
    ROLE_HELP,
    InviteForm,
    PolicyForm,
    TeamForm,
    cpus_text,
    role_choices,
)

INVITE_SESSION_KEY = "team_invite_link"  # shown once, on the page the invitation led to
# (words in an action's error, the policy form's field it belongs to)
_POLICY_ERROR_FIELDS = (("bind prefix", "bind_prefixes"), ("max_containers", "max_containers"),
                        ("max_memory", "max_memory"), ("max_nano_cpus", "max_cpus"),
                        ("storage_quota", "storage_quota"))


def password_link(request, user) -> dict:
    """What the page shows once of a user's one-time set-password link."""
    return {"username": user.get_username(),
            "url": request.build_absolute_uri(actions.set_password_path(user)),
            "days": settings.PASSWORD_RESET_TIMEOUT // 86400}


def _get_team(user, team_id: int) -> Team:
    team = teams_of(user, "view").filter(pk=team_id).first()
    if team is None:
        refusal = hidden(user, f"No such team: {team_id}", obj_type="team", ref=team_id,
                         elsewhere=Team.objects.filter(pk=team_id), team_field="pk")
        raise Http404(refusal.message)
    return team


def _get_membership(team: Team, membership_id: int) -> Membership:
    membership = team.memberships.select_related("user", "team").filter(pk=membership_id).first()
    if membership is None:
        raise Http404("No such member")
    return membership


@login_required
def team_list(request):
    """GET: the user's teams (a site admin's: all); POST: a site admin creates one."""
    site_admin = actions.is_site_admin(request.user)
    form = TeamForm(request.POST or None) if site_admin else None
    if request.method == "POST":
        if form is None:
            actions.require_site_admin(request.user, "create teams")  # audited 403
        if form.is_valid():
            team = _create_team(request, form)
            if team is not None:
                messages.success(request, f"Team {team.name} created.")
                return redirect("web:team-detail", team_id=team.pk)
    teams = Team.objects.all()
    if not site_admin:  # by pk: a filter on memberships would narrow the count below
        teams = teams.filter(pk__in=Membership.objects.filter(user=request.user)
                             .values("team_id"))
    teams = teams.annotate(member_count=Count("memberships", distinct=True)).order_by("name")
    roles = dict(Membership.objects.filter(user=request.user).values_list("team_id", "role"))
    viewable = set(teams_of(request.user, "view").values_list("pk", flat=True))
    rows = [{"team": team, "role": roles.get(team.pk), "may_view": team.pk in viewable,
             "role_help": ROLE_HELP.get(roles.get(team.pk))} for team in teams]
    return render(request, "web/team_list.html", {"rows": rows, "form": form},
                  status=400 if form is not None and form.errors else 200)


def _create_team(request, form):
    owner = None
    if form.cleaned_data["owner"].strip():
        owner = get_user_model().objects.filter(
            username=form.cleaned_data["owner"].strip()).first()
        if owner is None:
            form.add_error("owner", "No user has this username.")
            return None
    try:
        return actions.do_create_team(form.cleaned_data["name"], acting_user=request.user,
                                      owner=owner)
    except DockyardError as exc:
        form.add_error("name", message_of(exc))
        return None


def _quota_rows(team: Team, form: PolicyForm) -> list[dict]:
    """Each quota's form field and what the team uses of it, as text."""
    counted = quotas.usage(team)
    used = {"max_containers": str(counted["containers"]),
            "max_memory": human_bytes(counted["memory"]),
            "max_cpus": cpus_text(counted["nano_cpus"]),
            "storage_quota": human_bytes(counted["storage"])}
    return [{"field": field, "used": used[field.name]}
            for field in form.quota_fields()]


def _render_detail(request, team: Team, *, invite_form=None, policy_form=None, status=200):
    user = request.user
    may_manage = has_permission(user, team, "manage")
    may_own = has_permission(user, team, "own")
    policy_form = policy_form or PolicyForm.for_team(team)
    if not may_manage:  # the same form, read-only
        for field in policy_form.fields.values():
            field.disabled = True
        policy_form.fields["bind_prefixes"].widget.attrs["placeholder"] = "none"
    members = []
    for membership in team.memberships.select_related("user").order_by("user__username"):
        is_owner = membership.role == Membership.Role.OWNER
        members.append({"m": membership,
                        "may_change": may_manage and (may_own or not is_owner)})
    context = {
        "team": team,
        "my_role": team.memberships.filter(user=user).values_list("role", flat=True).first(),
        "may_manage": may_manage,
        "may_own": may_own,
        "members": members,
        "role_choices": role_choices(may_own),
        "role_help": ROLE_HELP,
        "invite_form": invite_form or (InviteForm(may_own=may_own) if may_manage else None),
        "policy_form": policy_form,
        "quota_rows": _quota_rows(team, policy_form),
        "held": actions.held_objects(team) if may_own else {},
        "invite_link": request.session.pop(INVITE_SESSION_KEY, None),
    }
    return render(request, "web/team_detail.html", context, status=status)


@login_required
def team_detail(request, team_id):
    return _render_detail(request, _get_team(request.user, team_id))


@login_required
@require_POST
def team_invite(request, team_id):
    team = _get_team(request.user, team_id)
    check_permission(request.user, team, "manage")  # before the form: a 403, not its errors
    form = InviteForm(request.POST, may_own=has_permission(request.user, team, "own"))
    if form.is_valid():
        try:
            membership, created = actions.do_invite_member(
                team, form.cleaned_data["user"], form.cleaned_data["role"],
                acting_user=request.user)
        except DockyardError as exc:
            message = message_of(exc)
            form.add_error("role" if "invalid role" in message else "user", message)
        else:
            invited = membership.user
            # The link claims the account: a team admin gets it only for the user it made (an
            # earlier invitee without a password may be in other teams); site admins also
            # for those.
            if created or (actions.is_site_admin(request.user)
                           and not invited.has_usable_password()):
                request.session[INVITE_SESSION_KEY] = password_link(request, invited)
            verb = "created and added" if created else "added"
            messages.success(request, f"{invited.get_username()} {verb} to team {team.name} "
                                      f"as {membership.role}.")
            return redirect("web:team-detail", team_id=team.pk)
    return _render_detail(request, team, invite_form=form, status=400)


@login_required
@require_POST
def team_member_role(request, team_id, membership_id):
    team = _get_team(request.user, team_id)
    membership = _get_membership(team, membership_id)
    try:
        actions.do_change_role(membership, request.POST.get("role", ""),
                               acting_user=request.user)
    except DockyardError as exc:
        messages.error(request, message_of(exc))
    else:
        membership.refresh_from_db()
        messages.success(request, f"{membership.user.get_username()} is now {membership.role} "
                                  f"of team {team.name}.")
    return redirect("web:team-detail", team_id=team.pk)


@login_required
@require_POST
def team_member_remove(request, team_id, membership_id):
    team = _get_team(request.user, team_id)
    membership = _get_membership(team, membership_id)
    try:
        actions.do_remove_member(membership, acting_user=request.user)
    except DockyardError as exc:
        messages.error(request, message_of(exc))
        return redirect("web:team-detail", team_id=team.pk)
    messages.success(request, f"{membership.user.get_username()} removed from team {team.name}.")
    if not has_permission(request.user, team, "view"):  # removed oneself
        return redirect("web:team-list")
    return redirect("web:team-detail", team_id=team.pk)


@login_required
@require_POST
def team_policy(request, team_id):
    team = _get_team(request.user, team_id)
    check_permission(request.user, team, "manage")  # before the form: a 403, not its errors
    form = PolicyForm.for_team(team, request.POST)
    if form.is_valid():
        try:
            changed = actions.do_update_policy(team, acting_user=request.user, **form.changes())
        except DockyardError as exc:
            message = message_of(exc)
            field = next((f for words, f in _POLICY_ERROR_FIELDS if words in message), None)
            form.add_error(field, message)
        else:
            if changed:
                messages.success(request, f"Policy of team {team.name} saved.")
            else:
                messages.info(request, "Nothing changed.")
            return redirect(reverse("web:team-detail", args=[team.pk]) + "#policy")
    return _render_detail(request, team, policy_form=form, status=400)


@login_required
@require_POST
def team_delete(request, team_id):
    team = _get_team(request.user, team_id)
    try:
        actions.do_delete_team(team, acting_user=request.user)
    except DockyardError as exc:
        messages.error(request, message_of(exc))
        return redirect("web:team-detail", team_id=team.pk)
    messages.success(request, f"Team {team.name} deleted.")
    return redirect("web:team-list")
