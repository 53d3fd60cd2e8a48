from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from panel.web import account_views, user_views

urlpatterns = [
    # the admin site signs in through the panel's sign-in (throttled, two-factor)
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("login/", account_views.SignInView.as_view(), name="login"),
    path("login/code/", account_views.sign_in_code, name="login-code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # the one-time set-password link of an invited user (panel.teams.actions.set_password_path)
    path("accounts/reset/<uidb64>/<token>/", user_views.SetPasswordView.as_view(),
         name="password_reset_confirm"),
    path("", include("panel.web.urls")),
]
