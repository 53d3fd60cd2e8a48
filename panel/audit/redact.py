"""Secrets never reach the audit log: `redact(value)` replaces them in params/before/after.

What counts as a secret:
- the value of a key that names one (password, secret, token, auth, key, credential,
  private ...), at any depth of dicts and lists;
- an environment entry `NAME=value` whose NAME names one (`DB_PASSWORD=...`, `API_KEY=...`);
- a registry auth blob: X-Registry-Auth style base64 JSON (or plain JSON) holding credentials;
- an API token: any string that starts with the token prefix `dy_`.
"""

import base64
import binascii
import json
import re

from panel.teams.models import ApiToken

REDACTED = "[redacted]"

# Found anywhere in a key (`db_password`, `identitytoken`, `x-registry-secret`).
_SECRET_SUBSTRINGS = ("password", "passwd", "passphrase", "secret", "token", "credential",
                      "apikey", "privatekey")
# Found as a whole word only, so that `author`, `monkey` or `keyboard` stay readable.
_SECRET_WORDS = {"auth", "authorization", "key", "private", "pass", "pwd", "cookie"}
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_ENV_ENTRY = re.compile(r"^([A-Za-z_][A-Za-z0-9_.\-]*)=(.*)$", re.DOTALL)
_BASE64 = re.compile(r"^[A-Za-z0-9+/_\-]{16,}={0,2}$")


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    if any(part in lowered for part in _SECRET_SUBSTRINGS):
        return True
    words = _WORD_SPLIT.split(_CAMEL_BOUNDARY.sub("_", name).lower())
    return any(word in _SECRET_WORDS for word in words)


def redact(value):
    """A copy of `value` (JSON-like data) with every secret replaced by "[redacted]"."""
    if isinstance(value, dict):
        return {key: REDACTED if is_secret_name(str(key)) and value[key] not in (None, "")
                else redact(value[key]) for key in value}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return _redact_string(value)
    return value


def _redact_string(text: str) -> str:
    if text.startswith(ApiToken.PREFIX):
        return REDACTED
    entry = _ENV_ENTRY.match(text)
    if entry and is_secret_name(entry.group(1)):
        return f"{entry.group(1)}={REDACTED}"
    if _holds_credentials(text):
        return REDACTED
    return text


def _holds_credentials(text: str) -> bool:
    """A JSON object with a secret key, in clear or base64 (Docker's X-Registry-Auth)."""
    candidates = [text] if text.lstrip().startswith("{") else []
    if _BASE64.match(text):
        try:
            candidates.append(base64.urlsafe_b64decode(
                text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)).decode())
        except (binascii.Error, UnicodeDecodeError):
            pass
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict) and any(is_secret_name(str(key)) for key in data):
            return True
    return False
