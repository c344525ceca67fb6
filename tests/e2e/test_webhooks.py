"""Webhooks out end to end: a real worker and beat deliver to a shop's receiver process that verifies every
signature with the standardwebhooks library; a 500 is retried under the same webhook-id, and a worker killed
mid-delivery loses no event."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from integrations import webhooks
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from orders import services
from orders.models import Order
from tests.e2e.processes import Process, free_port
from tests.helpers import make_order

pytestmark = pytest.mark.e2e

WEBHOOK_ENV = {
    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
    "WEBHOOK_RETRY_DELAYS": "1,1,1,1,1",
    "WEBHOOK_TIMEOUT_SECONDS": "3",
    "WEBHOOK_LEASE_SECONDS": "8",
}


def schedule_webhook_sweep(*, every: int) -> None:
    """worker/schedule.py's webhook sweep, re-timed as ops would in the admin (start_beat syncs the schedule)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from worker.schedule import sync_schedule

    sync_schedule()
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.filter(task="integrations.tasks.send_due_webhooks").update(interval=interval)


def start_receiver(start_process: Callable[..., Process], platform_env: dict[str, str], endpoint: WebhookEndpoint,
                   port: int, **env: str) -> Process:
    process = Process(f"receiver-{port}", [sys.executable, "-m", "tests.e2e.webhook_receiver", str(port)],
                      {**platform_env, "WEBHOOK_SECRET": endpoint.secret, **env})
    start_process(process)
    process.wait_for_log("RECEIVER listening", timeout=20)
    return process


def reports(receiver: Process, kind: str) -> list[dict[str, Any]]:
    lines = [json.loads(line.removeprefix("RECEIVER ")) for line in receiver.log.splitlines()
             if line.startswith("RECEIVER {")]
    return [line for line in lines if line["kind"] == kind]


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def setup_endpoint(settings: Any, port: int) -> WebhookEndpoint:
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    return webhooks.create_endpoint(url=f"http://127.0.0.1:{port}/hooks", events=["order.created", "order.status"])


def test_a_500_is_retried_under_the_same_webhook_id_and_every_signature_verifies(
        alice: Any, staff: Any, settings: Any, platform_env: dict[str, str], start_process: Any,
        start_worker: Any, start_beat: Any) -> None:
    port = free_port()
    endpoint = setup_endpoint(settings, port)
    receiver = start_receiver(start_process, platform_env, endpoint, port, FAIL_FIRST="1")
    schedule_webhook_sweep(every=1)
    start_worker(env=WEBHOOK_ENV)
    start_beat(env=WEBHOOK_ENV)

    order = make_order(alice)
    services.change_status(order=order, to="confirmed", actor=staff)

    ok = lambda: [r for r in reports(receiver, "answered") if r["status"] == 200]  # noqa: E731
    wait_until(lambda: len(ok()) == 2, "both events answered 200")
    answered = reports(receiver, "answered")
    assert all(r["verified"] for r in answered), answered
    first, *rest = answered
    assert first["status"] == 500
    retried = [r for r in rest if r["id"] == first["id"]]
    assert [r["status"] for r in retried] == [200], "the 500 is retried once, under the same webhook-id"
    assert sorted((r["type"], r["seq"]) for r in ok()) == [("order.created", 1), ("order.status", 2)]
    assert {r["order_id"] for r in ok()} == {order.pk}

    delivery = WebhookDelivery.objects.get(webhook_id=first["id"])
    wait_until(lambda: WebhookDelivery.objects.filter(status="delivered").count() == 2, "both marked delivered")
    statuses = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("at").values_list("response_status",
                                                                                                flat=True))
    assert statuses == [500, 200]


def test_a_worker_killed_mid_delivery_loses_no_event(
        alice: Any, staff: Any, settings: Any, platform_env: dict[str, str], start_process: Any,
        start_worker: Any, start_beat: Any) -> None:
    port = free_port()
    endpoint = setup_endpoint(settings, port)
    # The receiver sits on the first request far longer than the test: the worker sending it is killed meanwhile.
    receiver = start_receiver(start_process, platform_env, endpoint, port, HOLD_FIRST_SECONDS="300")
    schedule_webhook_sweep(every=1)
    # Only the kill ends its attempt (its timeout is far off); its claim lapses WEBHOOK_LEASE_SECONDS after it began.
    doomed_env = {**WEBHOOK_ENV, "WEBHOOK_TIMEOUT_SECONDS": "20", "WEBHOOK_LEASE_SECONDS": "45"}
    doomed = start_worker(env=doomed_env, name="doomed", concurrency=1)
    start_beat(env=WEBHOOK_ENV)

    order = make_order(alice)
    wait_until(lambda: len(reports(receiver, "arrived")) == 1, "the first delivery reaches the receiver")
    # Two more events while the only worker is stuck in the first delivery: their tasks wait in its queue.
    services.change_status(order=order, to="confirmed", actor=staff)
    services.change_status(order=order, to="preparing", actor=staff)
    doomed.kill()
    start_worker(env=WEBHOOK_ENV, name="survivor")

    wait_until(lambda: len({r["seq"] for r in reports(receiver, "answered") if r["status"] == 200}) == 3,
               "every event delivered after the kill", timeout=90)
    held = reports(receiver, "arrived")[0]["id"]
    ok = [r for r in reports(receiver, "answered") if r["status"] == 200]
    assert all(r["verified"] for r in ok)
    assert sorted(r["seq"] for r in ok) == [1, 2, 3], "each event delivered once"
    assert held in {r["id"] for r in ok if r["seq"] == 1}, "the interrupted delivery is resent under its id"
    wait_until(lambda: WebhookDelivery.objects.filter(status="delivered").count() == 3, "all marked delivered")
    # The killed attempt never finished (no timeout, no answer logged): the survivor's is the only one.
    interrupted = WebhookDelivery.objects.get(webhook_id=held)
    assert list(interrupted.attempt_log.values_list("response_status", flat=True)) == [200]
    assert Order.objects.get(pk=order.pk).seq == 3
