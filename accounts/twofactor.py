"""Two-factor login for staff: who needs it, their TOTP device (django-otp), enrolment, checking a code (counted
by the login throttle first), and the half-done login that waits in the session for its code."""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import throttling
from accounts.state import Unavailable

logger = logging.getLogger(__name__)

# The session keys of a login whose password was right and whose code is still to come.
PENDING_SESSION_KEY = "twofactor_pending"
# Long enough to open an authenticator app (or scan a code for the first time), short enough that a session left
# at the code page does not keep a checked password around.
PENDING_LIFETIME_SECONDS = 300
DEVICE_NAME = "Authenticator app"
MAX_CODE_LENGTH = 8


class CodeRefused(Exception):
    """A code that does not log in: wrong, already used, or the device backs off after recent wrong codes."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def required(user: Any) -> bool:
    """Staff (and superusers) need a second factor: `is_staff` is what opens the admin, and every account that
    sees all orders is staff (orders.selectors.sees_all_orders), whatever permissions it is given later."""
    return bool(settings.STAFF_REQUIRE_2FA and user.is_authenticated and (user.is_staff or user.is_superuser))


def confirmed_device(user: Any) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def enrolment_device(user: Any) -> TOTPDevice:
    """The not yet confirmed device this user is setting up: made once, so a reloaded page shows the same secret
    the person may already have scanned. It logs nobody in until a code from it is confirmed."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)
    return device


def secret(device: TOTPDevice) -> str:
    """The key as authenticator apps take it typed in: base32, in groups of four."""
    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def qr_code_svg(device: TOTPDevice) -> str:
    """The device's otpauth:// URL as an inline SVG (no script, no data: URL, so the page's CSP is untouched)."""
    # A quiet zone of 4 modules, as the QR standard asks, for phone cameras.
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=4)
    out = BytesIO()
    image.save(out)
    # The XML declaration is for files, not for markup inside a page.
    return out.getvalue().decode().split("?>", 1)[-1].strip()


def _normalised(code: str) -> str | None:
    code = "".join(code.split())
    if not code or len(code) > MAX_CODE_LENGTH or not (code.isascii() and code.isdigit()):
        return None
    return code


def _already_used(device: TOTPDevice, code: str) -> bool:
    """The code is one of this device's, but of a time step already logged in with (a replay)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    now_step = totp.t()
    for offset in range(-device.tolerance, device.tolerance + 1):
        totp.drift = device.drift + offset
        if totp.token() == int(code) and now_step + offset <= device.last_t:
            return True
    return False


def check_code(request: HttpRequest, *, user: Any, device: TOTPDevice, code: str) -> TOTPDevice:
    """Count the attempt against the login throttle, then verify `code` against `device` (locked, so two
    concurrent uses of one code cannot both pass). Raises throttling.Throttled or CodeRefused.

    A code is a guess like a password: it is counted before it is checked, per username and per address, and only
    a success gives it back (the site's login does on `user_logged_in`, the token endpoint explicitly). The device
    adds django-otp's own back-off (1, 2, 4 … seconds after successive wrong codes), kept in PostgreSQL.
    """
    try:
        throttling.take(request, username=user.get_username())
    except Unavailable as exc:
        # As for passwords on the login forms: without Redis the device's own back-off still bounds guesses.
        logger.warning("Code attempt not counted, auth state unavailable: %s", exc)
    valid = _normalised(code)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk, user=user)
        allowed, info = device.verify_is_allowed()
        if allowed and valid is not None and device.verify_token(valid):
            return device
        # A refusal is raised after the transaction, so the device's count of wrong codes is kept.
        replayed = allowed and valid is not None and _already_used(device, valid)
    if not allowed:
        locked_until = (info or {}).get("locked_until", timezone.now())
        wait = max(1, int((locked_until - timezone.now()).total_seconds()) + 1)
        raise CodeRefused(f"Too many wrong codes in a row; wait {wait} second(s) and enter the current code.",
                          code="device_throttled")
    if replayed:
        raise CodeRefused("That code was already used. Wait for the next code (they change every "
                          f"{device.step} seconds) and enter it.", code="replayed")
    raise CodeRefused("That code is not right. Enter the 6-digit code your authenticator app shows now.",
                      code="wrong")


def confirm_enrolment(device: TOTPDevice) -> None:
    """A code from the new device was accepted: from now on it is the user's second factor."""
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    # Worth a line in the logs: enrolment is what a stolen password of a not yet enrolled account would do.
    logger.warning("Two-factor device enrolled for staff user %s.", device.user_id)


# --- The login in two steps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingLogin:
    user: Any
    backend: str


def begin_login(request: HttpRequest, user: Any) -> None:
    """The password was right: remember who, for a few minutes, in a fresh session key. Nobody is logged in yet,
    so nothing (admin, pages, API, sockets) treats this session as the user's until the code is given."""
    request.session.cycle_key()
    request.session[PENDING_SESSION_KEY] = {
        "user": str(user.pk),
        "backend": user.backend,
        "hash": user.get_session_auth_hash(),
        "started": time.time(),
    }


def pending_login(request: HttpRequest) -> PendingLogin | None:
    """The login waiting for its code, unless it expired or the account changed (password, deactivated)."""
    pending = request.session.get(PENDING_SESSION_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("started", 0) > PENDING_LIFETIME_SECONDS:
        return None
    user = get_user_model().objects.filter(pk=pending.get("user"), is_active=True).first()  # type: ignore[misc]  # None finds none
    if user is None or pending.get("hash") != user.get_session_auth_hash():
        return None
    return PendingLogin(user=user, backend=pending["backend"])


def finish_login(request: HttpRequest, pending: PendingLogin, device: TOTPDevice) -> None:
    """The code was right: log the user in, with the device recorded in the session (django-otp's is_verified)."""
    request.session.pop(PENDING_SESSION_KEY, None)
    auth.login(request, pending.user, backend=pending.backend)
    otp_login(request, device)


def session_passes(session: Any, user: Any) -> bool:
    """Whether a logged-in session of `user` may stand: anyone who needs no second factor, or one whose session
    names a confirmed device of theirs (set by finish_login). A staff session from before two-factor login, or
    from a time it was off, does not: HTTP requests end it (accounts.middleware), sockets close at their re-check.
    """
    if not required(user):
        return True
    persistent_id = session.get(DEVICE_ID_SESSION_KEY)
    if not isinstance(persistent_id, str):
        return False
    model_label, _, device_id = persistent_id.rpartition("/")
    if model_label != TOTPDevice.model_label() or not device_id.isdigit():
        return False
    return bool(TOTPDevice.objects.filter(pk=int(device_id), user=user, confirmed=True).exists())
