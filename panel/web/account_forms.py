"""The forms of sign-in and of the account page."""

from datetime import timedelta

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from panel.teams import login
from panel.teams.models import Team

MAX_TOKEN_DAYS = 3650


class SignInForm(AuthenticationForm):
    """Django's sign-in form, refusing a throttled account or address before the password
    is checked (panel.teams.login)."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Wrong username or password. Both are case-sensitive.",
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        if username:
            refusal = login.throttle(self.request, username)
            if refusal:
                raise ValidationError(refusal, code="throttled")
        return super().clean()


class CodeForm(forms.Form):
    code = forms.CharField(label="Code", max_length=12, widget=forms.TextInput(attrs={
        "autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True,
        "pattern": r"[0-9 ]*", "placeholder": "123456"}))


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={
        "placeholder": "laptop", "autocomplete": "off"}))
    team = forms.ModelChoiceField(queryset=Team.objects.none(), help_text=(
        "The token acts in this team only, with your role there."))
    expires_days = forms.IntegerField(
        label="Expires after (days)", required=False, min_value=1, max_value=MAX_TOKEN_DAYS,
        help_text="Empty: never.", widget=forms.TextInput(attrs={"inputmode": "numeric",
                                                                  "placeholder": "90"}))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        team = self.fields["team"]
        if user.is_superuser:
            team.queryset = Team.objects.order_by("name")
            team.required = False
            team.empty_label = "Every team (site admin)"
            team.help_text = "Empty: the token acts everywhere, as you do."
        else:
            team.queryset = Team.objects.filter(memberships__user=user).distinct().order_by(
                "name")
            team.empty_label = None

    def expires(self):
        days = self.cleaned_data.get("expires_days")
        return timezone.now() + timedelta(days=days) if days else None


class DisableTwoFactorForm(forms.Form):
    """Turning two-factor off takes a current code or the account's password."""

    code = forms.CharField(label="Code from your app", max_length=12, required=False,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                         "inputmode": "numeric"}))
    password = forms.CharField(label="or your password", required=False, strip=False,
                               widget=forms.PasswordInput(attrs={
                                   "autocomplete": "current-password"}))

    def clean(self):
        data = super().clean()
        if not data.get("code") and not data.get("password"):
            raise ValidationError("Enter a code from your app or your password.")
        return data
