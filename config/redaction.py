"""Keeps bearer tokens out of every log line: `token=`-style query values, anything shaped like a JWT, guest
tracking tokens (`trk_...`) and the token segment of tracking links (`/t/<token>`) are replaced before any
handler sees the record, whichever library logged it (Django, channels, uvicorn, celery)."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

# `?token=…`, `&access_token=…`, `refresh=…` in URLs and query strings, up to the next separator.
_QUERY_TOKEN = re.compile(r"((?:^|[?&;\s\"'(])(?:token|access|refresh|access_token|refresh_token|jwt)=)[^&\s\"';)]+",
                          re.IGNORECASE)
# header.payload.signature, base64url, the header of any JWT starting with `{"` (eyJ).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")

# A guest tracking token (integrations/tracking.py), and whatever follows /t/ in a tracking link's path.
_TRACKING_TOKEN = re.compile(r"trk_[0-9]+\.[0-9]+\.[A-Za-z0-9_-]+")
_TRACKING_PATH = re.compile(r"((?:^|[\s\"'(=]|//[^/\s]+)/t/)[^/\s?#\"']+")


def redact(text: str) -> str:
    text = _TRACKING_PATH.sub(r"\1" + REDACTED, _TRACKING_TOKEN.sub(REDACTED, text))
    return _JWT.sub(REDACTED, _QUERY_TOKEN.sub(r"\1" + REDACTED, text))


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite the record's message in place when it carries a token (formatting it once, early)."""
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        # A record whose arguments do not fit its format string: leave it for the handler to report.
        return
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    # Fields passed with `extra=` (a path, a URL) are logged too by the JSON formatter.
    for name, value in vars(record).items():
        if isinstance(value, str) and name != "msg":
            cleaned = redact(value)
            if cleaned != value:
                setattr(record, name, cleaned)


class RedactTokens(logging.Filter):
    """The same redaction as a filter, for handlers configured outside this process's record factory."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_log_redaction() -> None:
    """Redact at record creation: covers every logger and handler, including ones configured after us."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_tokens", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        redact_record(record)
        return record

    factory.redacts_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)

