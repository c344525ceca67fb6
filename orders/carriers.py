"""Known parcel carriers and their public tracking pages: an order's tracking number becomes a link where its
carrier is one of these. Any other carrier is shown as given, without a link."""

from __future__ import annotations

import re
from urllib.parse import quote

# Lower-cased name with spaces, dots and dashes removed → the carrier's tracking page, `{number}` URL-quoted.
TRACKING_PAGES = {
    "dhl": "https://www.dhl.com/global-en/home/tracking/tracking-parcel.html?submit=1&tracking-id={number}",
    "ups": "https://www.ups.com/track?tracknum={number}",
    "fedex": "https://www.fedex.com/fedextrack/?trknbr={number}",
    "dpd": "https://tracking.dpd.de/status/en_US/parcel/{number}",
    "gls": "https://gls-group.com/track/{number}",
    "usps": "https://tools.usps.com/go/TrackConfirmAction?tLabels={number}",
    "royalmail": "https://www.royalmail.com/track-your-item#/tracking-results/{number}",
    "hermes": "https://www.myhermes.de/empfangen/sendungsverfolgung/sendungsinformation#{number}",
    "postnl": "https://jouw.postnl.nl/track-and-trace/{number}",
}

_PUNCTUATION = re.compile(r"[\s.\-_]+")


def carrier_key(carrier: str) -> str:
    """"Royal Mail", "royal-mail" and "ROYALMAIL" are one carrier."""
    return _PUNCTUATION.sub("", carrier).lower()


def carrier_tracking_url(carrier: str, tracking_number: str) -> str | None:
    """The carrier's tracking page for this number, or None if the carrier is unknown or there is no number."""
    template = TRACKING_PAGES.get(carrier_key(carrier))
    number = tracking_number.strip()
    if template is None or not number:
        return None
    return template.format(number=quote(number, safe=""))
