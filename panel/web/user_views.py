"""The users page (site admins only; a 404 for anyone else): every user with its teams and
2FA, create a user (who gets a one-time set-password link), deactivate or reactivate, make or
unmake site admin, reset 2FA; and the set-password page the links lead to."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from panel.errors import DockyardError, message_of
from panel.teams import actions

from .team_forms import UserForm
from .team_views import password_link

LINK_SESSION_KEY = "user_password_link"  # shown once, on the users page


def _require_site_admin(request) -> None:
    """Others get a plain 404 (the refusal is audited)."""
    try:
        actions.require_site_admin(request.user, "manage users")
    except PermissionDenied:
        raise Http404("No such page") from None


def _get_user(user_id: int):
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise Http404("No such user")
    return user


def _remember_link(request, user) -> None:
    request.session[LINK_SESSION_KEY] = password_link(request, user)


@login_required
def user_list(request):
    """GET: the users; POST: create one."""
    _require_site_admin(request)
    form = UserForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = actions.do_create_user(form.cleaned_data["username"], acting_user=request.user,
                                          email=form.cleaned_data["email"],
                                          is_site_admin=form.cleaned_data["site_admin"])
        except DockyardError as exc:
            form.add_error("username", message_of(exc))
        else:
            _remember_link(request, user)
            messages.success(request, f"User {user.get_username()} created.")
            return redirect("web:user-list")
    users = get_user_model().objects.prefetch_related("memberships__team").order_by("username")
    rows = []
    for user in users:
        devices = actions.otp_devices(user)
        rows.append({"u": user, "devices": len(devices),
                     "two_factor": any(device.confirmed for device in devices),
                     "memberships": sorted(user.memberships.all(), key=lambda m: m.team.name)})
    return render(request, "web/user_list.html", {
        "rows": rows, "form": form, "link": request.session.pop(LINK_SESSION_KEY, None),
    }, status=400 if form.errors else 200)


def _user_action(request, user_id, change, done: str):
    _require_site_admin(request)
    user = _get_user(user_id)
    try:
        change(user)
    except DockyardError as exc:
        messages.error(request, message_of(exc))
    else:
        messages.success(request, done.format(name=user.get_username()))
    return redirect("web:user-list")


@login_required
@require_POST
def user_active(request, user_id):
    active = request.POST.get("active") == "1"
    return _user_action(
        request, user_id, lambda user: actions.do_set_active(user, active,
                                                             acting_user=request.user),
        "{name} reactivated." if active else "{name} deactivated: no login, no API token.")


@login_required
@require_POST
def user_site_admin(request, user_id):
    site_admin = request.POST.get("site_admin") == "1"
    return _user_action(
        request, user_id, lambda user: actions.do_set_site_admin(user, site_admin,
                                                                 acting_user=request.user),
        "{name} is now a site admin." if site_admin else "{name} is no longer a site admin.")


@login_required
@require_POST
def user_reset_2fa(request, user_id):
    return _user_action(
        request, user_id, lambda user: actions.do_reset_2fa(user, acting_user=request.user),
        "Two-factor authentication of {name} reset: it signs in with its password alone.")


@login_required
@require_POST
def user_password_link(request, user_id):
    """A new one-time link for a user who has not set a password yet."""
    _require_site_admin(request)
    user = _get_user(user_id)
    if user.has_usable_password():
        messages.error(request, f"{user.get_username()} has set a password already.")
    else:
        _remember_link(request, user)
    return redirect("web:user-list")


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """The page a one-time set-password link opens (an invited user's first password)."""

    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, f"Password set. Sign in as {form.user.get_username()}.")
        return response
