"""Accounts-suite fixtures: the security suite's inactive persona and fast password hashing, and the real
processes (a server, a private redis-server) for the outage tests."""

from tests.e2e.conftest import platform_env, private_redis, start_process, start_server  # noqa: F401
from tests.security.conftest import _fast_password_hashing, inactive  # noqa: F401
