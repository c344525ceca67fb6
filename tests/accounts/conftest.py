"""Accounts-suite fixtures: the security suite's inactive persona and its fast password hashing."""

from tests.security.conftest import _fast_password_hashing, inactive  # noqa: F401
