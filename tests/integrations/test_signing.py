"""Signatures per the Standard Webhooks spec, checked with its reference library."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integrations import sending
from integrations.models import new_webhook_secret


def test_secrets_are_whsec_and_base64_of_32_random_bytes() -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_webhook_secret() != secret


def test_the_standardwebhooks_library_verifies_our_signature() -> None:
    secret, body = new_webhook_secret(), b'{"type":"order.status","data":{"seq":2}}'
    headers = sending.signed_headers(secret, "msg_abc", body)
    assert Webhook(secret).verify(body, headers) == {"type": "order.status", "data": {"seq": 2}}


def test_a_changed_body_id_or_secret_fails_verification() -> None:
    secret, body = new_webhook_secret(), b'{"seq":2}'
    headers = sending.signed_headers(secret, "msg_abc", body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"seq":3}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body, {**headers, "webhook-id": "msg_other"})
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(body, headers)


def test_the_signed_content_is_id_dot_timestamp_dot_body() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    now = int(time.time())
    headers = sending.signed_headers(secret, "msg_1", b"{}", timestamp=now)
    assert headers["webhook-timestamp"] == str(now)
    import hashlib
    import hmac

    expected = hmac.new(b"k" * 32, f"msg_1.{now}.{{}}".encode(), hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
