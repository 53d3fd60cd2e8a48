"""In the browser: set up two-factor sign-in on the account page, sign in again with the
password and a code, then create an API token and see its key and config.json once."""

import base64
import json
import secrets

import pytest
from django_otp.oath import totp

from .conftest import ARTIFACTS

pytestmark = pytest.mark.browser

USER = """
from django.contrib.auth import get_user_model
from panel.teams.models import Membership, Team
user = get_user_model().objects.create_user({name!r}, password={password!r})
Membership.objects.create(user=user, team=Team.objects.get_or_create(name={team!r})[0],
                          role="operator")
"""


def code(secret: str, drift: int = 0) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, 30, 0, 6, drift):06d}"


def sign_in(page, url, name, password):
    page.goto(f"{url}/login/")
    page.fill("#id_username", name)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_two_factor_sign_in_and_a_token(browser, live_stack):
    name, password = f"tfa-{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    team = f"{name}-team"
    live_stack.manage("shell", "-c", USER.format(name=name, password=password, team=team))
    url = live_stack.panel_url
    context = browser.new_context(viewport={"width": 1360, "height": 1000})
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        sign_in(page, url, name, password)
        page.wait_for_url(f"{url}/")
        page.click(f"header a.who:has-text('{name}')")
        page.click("text=Set up two-factor")
        secret = page.inner_text("#totp-secret")
        assert page.locator("#totp-qr svg").is_visible()
        page.screenshot(path=str(ARTIFACTS / "account-2fa-setup.png"), full_page=True)
        page.fill("#id_code", code(secret))
        page.click("text=Confirm and turn on")
        assert "Two-factor sign-in is on" in page.inner_text(".messages")

        page.click("text=Sign out")
        sign_in(page, url, name, password)
        page.wait_for_url(f"{url}/login/code/")
        page.fill("#id_code", "000000")
        page.click("button[type=submit]")
        assert "Wrong or expired code." in page.inner_text(".login-card")
        page.fill("#id_code", code(secret, drift=1))
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")

        page.goto(f"{url}/account/")
        page.fill("#id_name", "laptop")
        page.fill("#id_expires_days", "30")
        page.click("text=Create token")
        key = page.inner_text("#token-key").strip()
        assert key.startswith("dy_")
        assert json.loads(page.inner_text("#token-config")) == {
            "HttpHeaders": {"Authorization": f"Bearer {key}"}}
        assert f"DOCKER_HOST={live_stack.tcp_host}" in page.inner_text("#token-docker-host")
        row = page.locator("tr[data-token=laptop]")
        assert team in row.inner_text() and "active" in row.inner_text()
        page.screenshot(path=str(ARTIFACTS / "account-token.png"), full_page=True)

        page.goto(f"{url}/account/")
        assert key not in page.content()
        page.once("dialog", lambda dialog: dialog.accept())
        row.locator("text=Revoke").click()
        assert "revoked" in page.locator("tr[data-token=laptop]").inner_text()
    finally:
        context.close()
    assert not errors, errors
