"""The shared auth state (counters, slots) answers the same in Redis (production) and in memory (embedded)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.conf import settings

from accounts.state import AuthState, MemoryAuthState, RedisAuthState, auth_state


@pytest.fixture(params=["redis", "memory"])
def store(request: Any) -> AuthState:
    if request.param == "memory":
        return MemoryAuthState()
    assert isinstance(auth_state(), RedisAuthState), "tests run with REDIS_URL: the store must be Redis"
    return auth_state()


def test_counters_count_within_a_window_report_the_time_left_and_forgive(store: AuthState) -> None:
    assert store.hit("k", 60)[0] == 1
    count, left = store.hit("k", 60)
    assert count == 2 and 0 < left <= 60
    store.forgive("k")
    assert store.hit("k", 60)[0] == 2
    assert store.hit("other", 60)[0] == 1
    store.forgive("never-counted")
    assert store.hit("never-counted", 60)[0] == 1, "forgiving an empty counter leaves it at zero"


def test_slots_cap_members_and_a_released_slot_is_free_again(store: AuthState) -> None:
    assert store.slot_take("u", "a", 2, 60) and store.slot_take("u", "b", 2, 60)
    assert store.slot_take("u", "a", 2, 60), "renewing a held slot is not a new one"
    assert not store.slot_take("u", "c", 2, 60)
    store.slot_release("u", "a")
    assert store.slot_take("u", "c", 2, 60)
    assert store.slot_take("other-user", "x", 2, 60)


def test_slots_of_members_that_stopped_renewing_expire(store: AuthState) -> None:
    assert store.slot_take("u", "gone", 1, 1)
    time.sleep(1.1)
    assert store.slot_take("u", "new", 1, 60)


def test_keys_carry_the_configured_prefix() -> None:
    store = auth_state()
    assert isinstance(store, RedisAuthState)
    store.hit("prefixed", 60)
    assert store.client.exists(f"{settings.AUTH_STATE_PREFIX}:count:prefixed")
