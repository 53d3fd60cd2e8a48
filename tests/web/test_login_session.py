"""Session and CSRF cookies: HttpOnly, SameSite Lax, a 12-hour session; DOCKYARD_HTTPS=1 makes
them Secure and turns on the proxy's HTTPS header and HSTS."""

import json
import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

REPO = Path(__file__).resolve().parents[2]


def test_cookies_after_sign_in(client, alice):
    client.get("/login/")
    csrf = client.cookies["csrftoken"]
    assert csrf["httponly"] and csrf["samesite"] == "Lax" and not csrf["secure"]
    client.post("/login/", {"username": "alice", "password": "pw-alice"})
    session = client.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"
    assert int(session["max-age"]) == 12 * 3600


def _settings_with(env: dict) -> dict:
    code = ("import django, json; from django.conf import settings; django.setup(); "
            "print(json.dumps({k: getattr(settings, k, None) for k in ("
            "'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_PROXY_SSL_HEADER', "
            "'SECURE_HSTS_SECONDS')}))")
    run_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "panel.settings", **env}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=run_env, check=True,
                         capture_output=True, text=True, timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_https_switch():
    assert _settings_with({"DOCKYARD_HTTPS": "1"}) == {
        "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 365 * 24 * 3600}
    # Off (as in this test process): plain HTTP on a trusted network.
    assert not settings.SESSION_COOKIE_SECURE and not settings.SECURE_HSTS_SECONDS
