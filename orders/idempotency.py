"""Idempotency-Key for POST requests: a retry with the same key gets the first answer again, and runs nothing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from orders.models import IdempotencyKey

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: str  # JSON text, sent as it is


class KeyReused(Exception):
    """The same Idempotency-Key came with a different request."""


def fingerprint(*, method: str, path: str, body: object) -> str:
    """The request as far as idempotency goes: method, path and the body's JSON, whatever its spacing or key order."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def prune() -> int:
    """Forget keys older than IDEMPOTENCY_KEY_TTL_HOURS."""
    cutoff = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def answer_once(*, owner: str, key: str, fingerprint: str, run: Callable[[], Answer]) -> tuple[Answer, bool]:
    """The answer for this key: the stored one (and False), or `run()`'s, stored with it (and True).

    The key's row is inserted first, in the transaction that `run()` writes in: a concurrent retry's insert
    waits on the unique index until that transaction ends, then finds the stored answer. If `run()` raises,
    nothing is kept and a retry runs it again. KeyReused if the key came with another request.
    """
    prune()
    with transaction.atomic():
        record, created = IdempotencyKey.objects.get_or_create(
            owner=owner, key=key, defaults={"fingerprint": fingerprint}
        )
        if not created:
            if record.fingerprint != fingerprint or record.status_code is None:
                raise KeyReused
            return Answer(record.status_code, record.body), False
        answer = run()
        record.status_code, record.body = answer.status_code, answer.body
        record.save(update_fields=["status_code", "body"])
        return answer, True
