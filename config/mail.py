"""The production e-mail backend while no SMTP server is configured: sends nothing, logs no customer data."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger(__name__)


class NotConfiguredBackend(BaseEmailBackend):
    """Drops each message with one warning naming only how many: set EMAIL_HOST to send them."""

    def send_messages(self, email_messages: Sequence[Any]) -> int:
        if email_messages:
            logger.warning("%d e-mail(s) not sent: EMAIL_HOST is not set (docs/operations.md)", len(email_messages))
        return 0
