"""Sign-in (password, then a TOTP code for users who turned two-factor on) and the account
page: API tokens for the Docker API, two-factor sign-in, the password."""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from panel.audit import services as audit
from panel.errors import DockyardError, message_of
from panel.teams import login, tokens, two_factor
from panel.teams.models import ApiToken

from .account_forms import CodeForm, DisableTwoFactorForm, SignInForm, TokenForm
from .templatetags.container_network import request_host

# The session key of a sign-in whose password was right and whose code is still to come.
PENDING = "dockyard_pending_sign_in"
PENDING_SECONDS = 300


# ----------------------------------------------------------------------------- sign-in

class SignInView(auth_views.LoginView):
    """Step one: the password (throttled). A user with two-factor on is not signed in yet:
    the session remembers who it is, and step two asks for the code."""

    form_class = SignInForm

    def form_valid(self, form):
        user = form.get_user()
        if not two_factor.enabled(user):
            return super().form_valid(form)
        self.request.session[PENDING] = {"user": user.pk, "backend": user.backend,
                                         "next": self.get_success_url(), "at": time.time()}
        return redirect("login-code")


def _pending_user(request):
    pending = request.session.get(PENDING)
    if not pending or time.time() - pending["at"] > PENDING_SECONDS:
        return None, None
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    return user, pending


def sign_in_code(request):
    """Step two: the code from the user's authenticator app. A wrong one is a failed sign-in."""
    user, pending = _pending_user(request)
    if user is None:
        if request.session.pop(PENDING, None):
            messages.error(request, "Sign in again: the code was not entered in time.")
        return redirect("login")
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        refusal = login.throttle(request, user.get_username())
        device = None if refusal else two_factor.verify(user, form.cleaned_data["code"])
        if device is not None:
            del request.session[PENDING]
            user.otp_device = device  # django-otp marks the session verified on login
            auth_login(request, user, backend=pending["backend"])
            return redirect(pending["next"])
        if refusal:
            form.add_error(None, refusal)
        else:
            user_login_failed.send(sender=__name__, request=request, credentials={
                "username": user.get_username(), "step": "code"})
            form.add_error("code", "Wrong or expired code.")
    return render(request, "registration/login_code.html", {"form": form, "who": user})


# ----------------------------------------------------------------------------- the account

def docker_host(request) -> str:
    """DOCKER_HOST for the Docker API's TCP listener, as this browser reaches the node."""
    if not settings.API_TCP:
        return ""
    host, _, port = settings.API_TCP.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = request_host(request)
    return f"tcp://{host}:{port}"


def _account_page(request, *, token_form=None, new_key=None, disable_form=None, status=200):
    pending = two_factor.pending(request.user)
    now = timezone.now()
    return render(request, "web/account.html", {
        "tokens": [{"token": token, "status": tokens.status(token, now)}
                   for token in tokens.tokens_of(request.user)],
        "token_form": token_form or TokenForm(user=request.user),
        "new_key": new_key,
        "docker_host": docker_host(request),
        "two_factor_on": two_factor.enabled(request.user),
        "setup": pending and {"qr": two_factor.qr_svg(pending),
                              "secret": two_factor.secret(pending)},
        "code_form": CodeForm(),
        "disable_form": disable_form or DisableTwoFactorForm(),
    }, status=status)


@login_required
def account(request):
    return _account_page(request)


@login_required
@require_POST
def token_create(request):
    """Issue a token; its key is on this response and nowhere else, ever."""
    form = TokenForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            token, key = tokens.issue(request.user, form.cleaned_data["name"],
                                      team=form.cleaned_data["team"], expires=form.expires())
        except (DockyardError, PermissionDenied) as exc:
            form.add_error(None, message_of(exc))
        else:
            return _account_page(request, new_key={"token": token, "key": key})
    return _account_page(request, token_form=form, status=400)


@login_required
@require_POST
def token_revoke(request, token_id):
    token = ApiToken.objects.filter(pk=token_id, user=request.user).select_related(
        "team", "user").first()
    if token is None:
        raise Http404("No such token")
    tokens.revoke(request.user, token)
    messages.success(request, f"Token {token.name} is revoked: the Docker API refuses it now.")
    return redirect("web:account")


@login_required
@require_POST
def two_factor_enable(request):
    two_factor.start(request.user)
    return redirect(reverse_lazy("web:account") + "#two-factor")


@login_required
@require_POST
def two_factor_confirm(request):
    form = CodeForm(request.POST)
    device = form.is_valid() and two_factor.confirm(request.user, form.cleaned_data["code"])
    if device:
        otp_login(request, device)  # this session is verified by the device now
        messages.success(request, "Two-factor sign-in is on: sign-ins ask for a code now.")
    else:
        messages.error(request, "That code does not match: check the app's clock and try the "
                                "current code.")
    return redirect(reverse_lazy("web:account") + "#two-factor")


@login_required
@require_POST
def two_factor_disable(request):
    """Turn two-factor off, after a current code or the password (throttled and counted
    like a sign-in, so this form is no way round the sign-in's limits)."""
    user = request.user
    form = DisableTwoFactorForm(request.POST)
    if form.is_valid():
        refusal = login.throttle(request, user.get_username())
        data = form.cleaned_data
        if refusal:
            form.add_error(None, refusal)
        elif ((data["code"] and two_factor.verify(user, data["code"]))
              or (data["password"] and user.check_password(data["password"]))):
            two_factor.disable(user)
            messages.success(request, "Two-factor sign-in is off.")
            return redirect(reverse_lazy("web:account") + "#two-factor")
        else:
            user_login_failed.send(sender=__name__, request=request, credentials={
                "username": user.get_username(), "step": "disable-2fa"})
            form.add_error(None, "Wrong code or password.")
    return _account_page(request, disable_form=form, status=400)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change (the password validators apply), audited."""

    template_name = "web/account_password.html"
    success_url = reverse_lazy("web:account")

    def form_valid(self, form):
        response = super().form_valid(form)
        user = self.request.user
        audit.record("auth.password_change", actor=user, team=None, obj_type="user",
                     obj_id=str(user.pk), obj_repr=user.get_username())
        messages.success(self.request, "Your password is changed.")
        return response
