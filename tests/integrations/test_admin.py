"""The admin: register endpoints (checked like the API), see deliveries and attempts, resend, rotate tracking links."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client

from integrations import tracking, webhooks
from integrations.models import WebhookDelivery, WebhookEndpoint
from orders.models import Order
from tests.helpers import make_order
from tests.integrations.conftest import Receiver
from tests.twofactor import force_login_verified

pytestmark = pytest.mark.django_db


def admin_client(user: Any) -> Client:
    client = Client()
    force_login_verified(client, user)
    return client


def test_the_admin_registers_endpoints_with_the_same_checks(staff: Any, settings: Any) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    client = admin_client(staff)
    refused = client.post("/admin/integrations/webhookendpoint/add/",
                          {"url": "http://hooks.example.com/in", "events": ["order.status"], "enabled": "on"})
    assert refused.status_code == 200 and "must use https" in refused.content.decode()
    response = client.post("/admin/integrations/webhookendpoint/add/",
                           {"url": "https://hooks.example.com/in", "events": ["order.status"], "enabled": "on"})
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.events, endpoint.created_by) == (["order.status"], staff)
    page = client.get(f"/admin/integrations/webhookendpoint/{endpoint.pk}/change/").content.decode()
    assert endpoint.secret in page


def test_a_delivery_shows_its_attempts_and_resend_sends_it_again(
        staff: Any, alice: Any, receiver: Receiver, private_targets: None, eager_celery: None,
        django_capture_on_commit_callbacks: Any) -> None:
    webhooks.create_endpoint(url=receiver.url, events=["order.created"])
    receiver.answers = [(503, {}), (200, {})]
    make_order(alice)
    delivery = WebhookDelivery.objects.get()
    webhooks.attempt(delivery.pk)
    client = admin_client(staff)
    page = client.get(f"/admin/integrations/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert delivery.webhook_id in page and "HTTP 503" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/admin/integrations/webhookdelivery/", {
            "action": "resend_deliveries", ACTION_CHECKBOX_NAME: [delivery.pk]})
    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempt_log.count() == 2
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.webhook_id] * 2


def test_the_order_admin_shows_the_tracking_link_and_rotates_it(staff: Any, alice_order: Order) -> None:
    client = admin_client(staff)
    old = tracking.tracking_token(alice_order)
    assert f"/t/{old}" in client.get(f"/admin/orders/order/{alice_order.pk}/change/").content.decode()
    response = client.post("/admin/orders/order/", {
        "action": "rotate_tracking_links", ACTION_CHECKBOX_NAME: [alice_order.pk]})
    assert response.status_code == 302
    with pytest.raises(tracking.BadTrackingToken):
        tracking.verify(old)
    assert tracking.verify(tracking.tracking_token(alice_order)).pk == alice_order.pk
