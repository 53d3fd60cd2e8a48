"""TOTP two-factor authentication (django-otp's TOTPDevice): enable, confirm, verify, disable.

A user enables it on the account page: `start` makes an unconfirmed device whose secret the
page shows (as a QR code and as text); `confirm` with a code from the app turns it on. From
then on sign-in asks for a code after the password (panel.web.account_views). `disable` turns
it off (after a code or the password).
"""

import base64

import qrcode
import qrcode.image.svg
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice

from panel.audit import services as audit

DEVICE_NAME = "Authenticator app"


def enabled(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def start(user) -> TOTPDevice:
    """The device being set up (a new secret unless one is already waiting to be confirmed)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def pending(user) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).first()


def confirm(user, code: str) -> TOTPDevice | None:
    """Turn two-factor on if `code` matches the device being set up; returns the device."""
    device = pending(user)
    if device is None or not device.verify_token(_digits(code)):
        return None
    with transaction.atomic():
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        _audit("auth.2fa_enable", user)
    return device


def verify(user, code: str) -> TOTPDevice | None:
    """The confirmed device `code` is valid for (each code counts once), or None."""
    code = _digits(code)
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        if device.verify_token(code):
            return device
    return None


def disable(user) -> None:
    """Turn two-factor off (the user itself; a site admin's reset is
    panel.teams.actions.do_reset_2fa)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        _audit("auth.2fa_disable", user)


def secret(device: TOTPDevice) -> str:
    """The base32 secret an authenticator app takes when typed in."""
    return base64.b32encode(device.bin_key).decode().rstrip("=")


def qr_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline SVG QR code."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage,
                        box_size=8, border=2)
    return image.to_string(encoding="unicode")


def _digits(code: str) -> str:
    return "".join((code or "").split())


def _audit(action, user):
    audit.record(action, actor=user, team=None, obj_type="user", obj_id=str(user.pk),
                 obj_repr=user.get_username())
