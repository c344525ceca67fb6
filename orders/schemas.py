"""The JSON shapes of the orders API (orders/api.py): what requests must be, what answers are, for validation and
for the OpenAPI document at /api/openapi.json."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Field, Schema
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ConfigDict, WithJsonSchema

from orders.models import TEXT_LIMITS
from orders.states import Status

# Times are sent as Python's isoformat() writes them (RFC 3339, with the offset): kept as text, not re-encoded.
DateTimeText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
MAX_ITEMS = 200


def _storable(value: str) -> str:
    # What PostgreSQL cannot store, refused here rather than failing there: NUL, and lone surrogates (valid in
    # JSON's \u escapes, not in UTF-8).
    if "\x00" in value:
        raise ValueError("Text may not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("Text must be valid Unicode (no lone surrogates).") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]


def _in_utc(value: datetime | None) -> datetime | None:
    # PostgreSQL takes offsets up to ±15:59, ISO 8601 up to ±23:59: store in UTC.
    try:
        return value.astimezone(UTC) if value is not None else None
    except OverflowError:
        raise ValueError("The time is out of range.") from None


def _iso_text(value: object) -> object:
    # Pydantic would take a number as Unix seconds: only ISO 8601 text (or null) is a time here.
    if value is not None and not isinstance(value, str | datetime):
        raise ValueError("An ISO 8601 time with its offset, e.g. 2026-12-03T16:00:00+01:00, or null.")
    return value


# An ISO 8601 time with its offset (a time without one is refused: whose 9 o'clock would it be?), or null.
Moment = Annotated[AwareDatetime | None, BeforeValidator(_iso_text), AfterValidator(_in_utc),
                   WithJsonSchema({"type": ["string", "null"], "format": "date-time"})]
Carrier = Annotated[Text, Field(max_length=TEXT_LIMITS["carrier"], description="E.g. DHL, UPS, FedEx, DPD, GLS.")]
TrackingNumber = Annotated[Text, Field(max_length=TEXT_LIMITS["tracking_number"])]


def _email(value: str) -> str:
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValueError("Enter a valid e-mail address.") from None
    return value


Email = Annotated[str, Field(min_length=3, max_length=254), AfterValidator(_storable), AfterValidator(_email),
                  WithJsonSchema({"type": "string", "format": "email", "maxLength": 254})]


class Error(Schema):
    detail: str


class FieldError(Schema):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorOut(Schema):
    detail: str
    errors: list[FieldError]


class IllegalChange(Schema):
    detail: str
    status: Status
    requested: Status


class DuplicateOrder(Schema):
    detail: str
    order_id: int


class EventOut(Schema):
    id: int
    seq: int
    kind: Literal["status", "updated"] = Field(
        description="`status`: a status change (as the order.status frame); `updated`: the shipment or promise "
                    "changed (as the order.updated frame), `changes` holds what changed and the status is as it was.")
    status: Status
    previous: Status | None
    at: DateTimeText
    changes: dict[str, str | None] | None = None


class ItemOut(Schema):
    name: str
    quantity: int
    unit_price: str = Field(description="Decimal, as text: \"9.50\".")
    line_total: str


class OrderOut(Schema):
    id: int
    number: str
    status: Status
    seq: int
    external_ref: str
    currency: str
    tracking_url: str | None
    carrier: str
    tracking_number: str
    carrier_tracking_url: str | None = Field(description="The carrier's tracking page, where the carrier is known.")
    promised_at: DateTimeText | None
    eta: DateTimeText | None
    created_at: DateTimeText
    updated_at: DateTimeText
    status_changed_at: DateTimeText | None
    # Staff (and API keys) only: absent for a customer.
    internal_note: str | None = None
    customer: str | None = None
    awaiting_reply: int | None = None
    # Flagged as likely to miss its promise and still on its way (docs/operations.md, "At-risk orders").
    at_risk: bool | None = None


class SeenOut(Schema):
    seq: int = Field(description="The highest seq the customer's page reported shown (every earlier one too).")
    at: DateTimeText = Field(description="When that receipt arrived.")


class OrderDetailOut(OrderOut):
    items: list[ItemOut]
    events: list[EventOut]
    seen: SeenOut | None = Field(description="The customer's delivery receipt (a `seen` frame); null before any.")


class OrderPageOut(Schema):
    orders: list[OrderOut]
    next: str | None = Field(description="The cursor of the following page, or null on the last one.")
    as_of: DateTimeText


class StatusChangeIn(Schema):
    status: Status


class StatusChangeOut(Schema):
    order: OrderOut
    event: EventOut


class CustomerIn(Schema):
    email: Email
    name: Text = Field("", max_length=300)


class ItemIn(Schema):
    name: Text = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Decimal = Field(ge=0, max_digits=10, decimal_places=2)


class OrderIn(Schema):
    external_ref: Text = Field("", max_length=100, description="The shop's own id for the order: unique.")
    customer: CustomerIn
    items: list[ItemIn] = Field(min_length=1, max_length=MAX_ITEMS)
    shipping_address: Text = Field("", max_length=2000)
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR.")
    carrier: Carrier = ""
    tracking_number: TrackingNumber = ""
    promised_at: Moment = None
    eta: Moment = None


class OrderPatchIn(Schema):
    """`PATCH /api/orders/<id>/`: the fields sent are set (`""` or null clears one), those left out are kept.
    Any other field is refused (422): the status changes through `POST /api/orders/<id>/status/`."""

    model_config = ConfigDict(extra="forbid")

    carrier: Carrier | None = None
    tracking_number: TrackingNumber | None = None
    promised_at: Moment = None
    eta: Moment = None
