"""The errors paycore answers with: each broken rule is a ``DomainError`` subclass with a
stable ``code`` (clients act on it) and the HTTP ``status`` it is answered with; the web layer
turns every one into an RFC 9457 problem, and lists each route's in the OpenAPI document.
Standard library only, so that domain modules can raise them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class DomainError(Exception):
    """A rule was broken. Subclasses set ``code``, ``status`` and, in their docstring's first
    line, what it means (the OpenAPI document shows it). ``extra`` fields go into the problem
    body (``field``, ``kind``, …); ``headers`` into the response (``Retry-After``, …)."""

    code: str = "domain-error"
    status: int = 422

    def __init__(
        self, detail: str, *, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    @property
    def title(self) -> str:
        return self.code.replace("-", " ").capitalize()


class NotFound(DomainError):
    """The resource named does not exist (or is not the caller's)."""

    code = "not-found"
    status = 404


class Unauthorized(DomainError):
    """A credential is required (missing, unknown or malformed)."""

    code = "unauthorized"
    status = 401
    needed = "A credential is required."
    """What the answer says when the caller gives no detail: which credential the route takes."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.needed, headers={"WWW-Authenticate": "Bearer"})
