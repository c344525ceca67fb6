"""Staff's second factor in tests: a confirmed TOTP device, the code its authenticator app shows (computed from the
key, as the app does), and force_login with the second factor a real login passes."""

from __future__ import annotations

import base64
import time
from typing import Any

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP, hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

# The longest a code can be waited for: both the current and the next step's code were already used.
CODE_WAIT_SECONDS = 40


def enrol(user: Any) -> TOTPDevice:
    """The user's confirmed authenticator app, as after setting it up on the login page."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def code_after(key: bytes, after_step: int = -1, drift: int = 0) -> tuple[str, int]:
    """The 6-digit code for the current time step (as the server counts it, with the device's drift), or for the
    next one if the current one was used already (two logins within one 30 s step: the server accepts one step
    ahead); and the step it is for. Waits, bounded, when both were used."""
    deadline = time.monotonic() + CODE_WAIT_SECONDS
    totp = TOTP(key, drift=drift)
    while totp.t() + 1 <= after_step:
        if time.monotonic() > deadline:
            raise AssertionError(f"no unused code after step {after_step}")
        time.sleep(0.2)  # the condition is the clock: the next step starts at most 30 s from now
    step = max(totp.t(), after_step + 1)
    return f"{hotp(key, step):06d}", step


def code_for(device: TOTPDevice) -> str:
    """A code of `device` that the server has not seen yet."""
    device.refresh_from_db()
    return code_after(device.bin_key, device.last_t, device.drift)[0]


def code_for_username(username: str) -> str:
    return code_for(TOTPDevice.objects.get(user__username=username, confirmed=True))


def key_of_secret(secret: str) -> bytes:
    """The key an authenticator app reads from the base32 secret shown on the set-up page."""
    text = "".join(secret.split()).upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def force_login_verified(client: Client, user: Any) -> None:
    """Client.force_login, and for staff the device a login through the code page records in the session: the
    session then counts as verified (accounts.twofactor.session_passes), as after typing a right code."""
    client.force_login(user)
    if user.is_staff or user.is_superuser:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = enrol(user).persistent_id
        session.save()
