"""What Django's debug page and error reports may show of the settings."""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@host: the userinfo of any URL, wherever it sits (e.g. the channel layer's hosts).
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


class SafeSettingsFilter(SafeExceptionReporterFilter):
    """Django's filter, which also hides every *_URL setting and the userinfo of URLs nested in other settings:
    DATABASE_URL, REDIS_URL, the broker and the channel layer's hosts carry passwords there."""

    hidden_settings = re.compile("API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN", flags=re.I)

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str):
            return _USERINFO.sub(r"\1" + self.cleansed_substitute + "@", cleansed)
        return cleansed
