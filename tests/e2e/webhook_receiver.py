"""A shop's webhook receiver, run as its own process by tests/e2e/test_webhooks.py: verifies each POST with the
standardwebhooks library and prints one JSON line per request.

    python -m tests.e2e.webhook_receiver PORT      env: WEBHOOK_SECRET, FAIL_FIRST (answer 500 to the first N
                                                   requests), HOLD_FIRST_SECONDS (sit on the first request)
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = os.environ["WEBHOOK_SECRET"]
FAIL_FIRST = int(os.environ.get("FAIL_FIRST", "0"))
HOLD_FIRST_SECONDS = float(os.environ.get("HOLD_FIRST_SECONDS", "0"))
lock = threading.Lock()
count = 0


def report(**fields: Any) -> None:
    with lock:
        print("RECEIVER " + json.dumps(fields), flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        global count
        with lock:
            count += 1
            number = count
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            payload = Webhook(SECRET).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = json.loads(body or b"null"), False
        webhook_id = headers.get("webhook-id")
        report(kind="arrived", n=number, id=webhook_id)
        if number == 1 and HOLD_FIRST_SECONDS:
            time.sleep(HOLD_FIRST_SECONDS)
        status = 500 if number <= FAIL_FIRST or not verified else 200
        report(kind="answered", n=number, id=webhook_id, status=status, verified=verified,
               type=payload.get("type"), seq=payload.get("data", {}).get("seq"),
               order_id=payload.get("data", {}).get("order_id"))
        try:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
        except OSError:
            pass  # the sender is gone (killed mid-delivery)

    def log_message(self, *args: Any) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print("RECEIVER listening", flush=True)
    server.serve_forever()
