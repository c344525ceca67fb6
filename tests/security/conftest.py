"""The security suite creates many users and logs in often: the hash's cost is not what it tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_password_hashing(fast_password_hashing: None) -> None:
    pass
