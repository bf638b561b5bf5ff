"""The request body limit, enforced for every route before anything reads the body (the
idempotency layer, the fast lane, the framework's parsing): a ``Content-Length`` over the limit
is answered 413 at once; a body sent without one (chunked) is cut off as soon as it passes the
limit. A request within its ``Content-Length`` passes untouched, since HTTP/1.1 frames a body
by that length (the server reads no more), and so does one with neither header (it has no
body): only a chunked body is counted, and the common request pays one scan of its headers."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from paycore.platform.web.problems import body_too_large, problem_response


class _TooLarge(BaseException):
    """Raised from ``receive`` past the limit. A ``BaseException``, like a cancellation, so
    that no layer between (the framework's error pages, its body parsing: ``except
    Exception``) turns it into another answer before it reaches ``BodyLimit``."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, counted = _framing(scope["headers"])
        if declared is not None and declared > self.max_body:
            await problem_response(body_too_large(self.max_body))(scope, receive, send)
            return
        if not counted:
            await self.app(scope, receive, send)
            return
        received, started = 0, False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _TooLarge
            return message

        async def watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watching)
        except _TooLarge:
            if started:
                raise
            await problem_response(body_too_large(self.max_body))(scope, receive, send)


def _framing(headers: list[tuple[bytes, bytes]]) -> tuple[int | None, bool]:
    """The declared ``Content-Length`` (None if absent), and whether the body must be counted
    as it arrives: it is chunked, or its length is not a number."""
    declared, counted = None, False
    for name, value in headers:
        if name == b"content-length":
            if value.isdigit():
                declared = int(value)
            else:
                counted = True
        elif name == b"transfer-encoding":
            counted = True
    return declared, counted
