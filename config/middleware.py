"""Django's and WhiteNoise's middleware, made to run on the event loop under ASGI.

Under ASGI Django's MiddlewareMixin runs every `process_request` and `process_response` through
`sync_to_async`, a hop to a thread and back each; WhiteNoise is sync only, so the whole stack around it ran on a
thread that called back into the loop for the rest. An API GET crossed the sync/async boundary some twenty times
(docs/performance.md). These subclasses run those methods on the loop where they do no I/O (they read headers
and cookies, set attributes and headers) and keep the hop where they may touch the database: a session to
save, messages to store. Under WSGI (and the test client) they are Django's own, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponseBase
from django.middleware.common import CommonMiddleware
from django.middleware.locale import LocaleMiddleware
from whitenoise.middleware import WhiteNoiseMiddleware


class OnTheLoop:
    """Mixin before a MiddlewareMixin class: in async mode its process_request and process_response run inline
    unless `response_needs_thread` says the response step may do I/O."""

    get_response: Callable[..., Any]

    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        return False

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        process_request = getattr(self, "process_request", None)
        if process_request is not None:
            response = process_request(request)
        response = response or await self.get_response(request)
        process_response = getattr(self, "process_response", None)
        if process_response is None:
            return response  # type: ignore[no-any-return]
        if self.response_needs_thread(request, response):
            # The request's own thread (Django's ThreadSensitiveContext): where its view held the connection.
            return await sync_to_async(process_response, thread_sensitive=True)(request, response)  # type: ignore[no-any-return]
        return process_response(request, response)  # type: ignore[no-any-return]


class Session(OnTheLoop, SessionMiddleware):
    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        # Only a save touches the store; reading the flags does not load the session.
        session = getattr(request, "session", None)
        if session is None:
            return False
        return bool((session.modified or settings.SESSION_SAVE_EVERY_REQUEST) and not session.is_empty())


class Locale(OnTheLoop, LocaleMiddleware):
    pass


class Common(OnTheLoop, CommonMiddleware):
    pass


class Authentication(OnTheLoop, AuthenticationMiddleware):
    pass  # process_request only sets the lazy request.user and request.auser


class Messages(OnTheLoop, MessageMiddleware):
    def response_needs_thread(self, request: HttpRequest, response: HttpResponseBase) -> bool:
        # update() stores only messages read or added during the request (it may write the session then).
        storage = getattr(request, "_messages", None)
        return storage is not None and bool(storage.used or storage.added_new)


class StaticFiles(WhiteNoiseMiddleware):  # type: ignore[misc]  # whitenoise is untyped
    """WhiteNoise for STATIC_URL's files only, sync or async: any other path goes on without a thread hop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[..., Any], settings: Any = settings) -> None:
        super().__init__(get_response, settings=settings)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self._acall(request)
        return super().__call__(request)

    async def _acall(self, request: HttpRequest) -> Any:
        path = request.path_info
        if not path.startswith(self.static_prefix):
            return await self.get_response(request)
        # autorefresh (DEBUG) looks on the disk; otherwise the file table is in memory.
        static_file = await sync_to_async(self.find_file)(path) if self.autorefresh else self.files.get(path)
        if static_file is None:
            return await self.get_response(request)
        response = self.serve(static_file, request)
        response.streaming_content = _file_chunks(response, response.file_to_stream)
        return response


async def _file_chunks(response: Any, file: Any) -> Any:
    # A static file from the local disk (the page cache, mostly), read on the loop: an async iterator spares
    # Django's thread and warning for a sync one. None: a HEAD or a 304, no body. The response closes the file.
    while file is not None and (chunk := file.read(response.block_size)):
        yield chunk
