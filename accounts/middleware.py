"""Ends a staff session that has not passed the second factor, before any view sees it as logged in."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.contrib.auth import alogout, logout
from django.http import HttpRequest, HttpResponseBase

from accounts import twofactor

logger = logging.getLogger(__name__)


class StaffSecondFactorMiddleware:
    """After AuthenticationMiddleware. The login pages only log staff in with a right code (accounts.views), so a
    staff session without one is older than two-factor login, or from a time it was off: it is logged out and the
    request goes on as anonymous (the admin and the pages ask for a login, the API answers 401)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self._acall(request)
        if twofactor.required(request.user) and not twofactor.session_passes(request.session, request.user):
            logger.info("Staff session of user %s without a second factor: logged out.", request.user.pk)
            logout(request)
        return self.get_response(request)

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        user = await request.auser()
        if twofactor.required(user) and not await sync_to_async(twofactor.session_passes)(request.session, user):
            logger.info("Staff session of user %s without a second factor: logged out.", user.pk)
            await alogout(request)
        return await cast(Awaitable[HttpResponseBase], self.get_response(request))  # is_async: a coroutine
