"""The request body limit, enforced for every route before anything else sees the request
(authentication, the idempotency layer, the fast lane, the framework's parsing): a
``Content-Length`` over the limit is answered 413 at once; a body sent without one (chunked)
is read here, up to the limit, and answered 413 as soon as it passes it — whether or not the
route would have read it (a route that takes no body must not act on a request carrying 300
MB) — else handed on whole. A request within its ``Content-Length`` passes untouched, since
HTTP/1.1 frames a body by that length (the server reads no more), and so does one with neither
header (it has no body): only a chunked body is read here, and the common request pays one
scan of its headers. What the client sends after a 413 the server reads and drops."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from paycore.platform.web.fastlane import read_body, replaying
from paycore.platform.web.problems import Problem, body_too_large, problem_response


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
        try:
            body = await read_body(receive, limit=self.max_body)
        except Problem as refused:
            await problem_response(refused)(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)


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
