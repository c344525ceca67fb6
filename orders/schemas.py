"""The JSON shapes of the orders API (orders/api.py): what requests must be, what answers are, for validation and
for the OpenAPI document at /api/openapi.json."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from ninja import Field, Schema
from pydantic import AfterValidator, WithJsonSchema

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
    status: Status
    previous: Status | None
    at: DateTimeText


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
    created_at: DateTimeText
    updated_at: DateTimeText
    status_changed_at: DateTimeText | None
    # Staff (and API keys) only: absent for a customer.
    internal_note: str | None = None
    customer: str | None = None
    awaiting_reply: int | None = None


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
