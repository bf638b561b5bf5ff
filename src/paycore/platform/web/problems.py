"""Errors as RFC 9457 problem details (``application/problem+json``) with a stable ``code``:
every ``DomainError`` (a context's rules, and ``Problem``, the web layer's own: credentials,
limits, parsing) is answered by one handler; each route lists the codes it may answer in the
OpenAPI document (``documented``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from paycore.platform.errors import DomainError
from paycore.platform.web.responses import dumps

PROBLEM_TYPE_BASE = "https://paycore.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(DomainError):
    """An answer the web layer gives itself (a missing credential, a limit, a malformed
    body): its status and code are the instance's own."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail, headers=headers, **extra)
        self.status = status
        self.code = code
        self._title = title

    @property
    def title(self) -> str:
        return self._title or super().title


class ProblemOut(BaseModel):
    """An error (RFC 9457): ``code`` is stable, ``detail`` says what happened."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable error code; clients act on it")


def problem_response(error: DomainError) -> Response:
    """The error as a problem. No ``instance``: the path a server saw is not always the one
    the client asked for (behind a prefix, a proxy, an internal call), so a problem names no
    path; the ``X-Correlation-ID`` header identifies the occurrence."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.code,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
    }
    body.update(error.extra)
    return Response(
        dumps(body), status_code=error.status, media_type=PROBLEM_MEDIA_TYPE, headers=error.headers
    )


def body_too_large(limit: int) -> Problem:
    """The 413 answered for a request body over ``limit`` bytes."""
    return Problem(413, "body-too-large", f"The request body exceeds {limit} bytes.")


ALWAYS: Sequence[tuple[int, str, str]] = (
    (413, "body-too-large", "The request body exceeds the limit"),
    (500, "internal-error", "An unexpected error (it is logged)"),
)
"""What any route may answer, whatever it declares."""
WITH_INPUT: Sequence[tuple[int, str, str]] = (
    (422, "validation-error", "A value is missing, unknown, of the wrong type or out of range"),
)
"""What a route with a body or parameters may answer."""
WITH_BODY: Sequence[tuple[int, str, str]] = (
    (400, "malformed-json", "The body is not valid JSON"),
    (415, "unsupported-media-type", "The body is not sent as application/json"),
)
"""What a route reading a JSON body may answer (``web.bodies``)."""
WITH_IDEMPOTENCY_KEY: Sequence[tuple[int, str, str]] = (
    (400, "bad-idempotency-key", "The Idempotency-Key header is empty or too long"),
    (409, "idempotency-key-in-progress", "A request with this Idempotency-Key is running"),
    (
        409,
        "idempotency-key-outcome-unknown",
        "A request with this Idempotency-Key took effect but its answer was lost: look it up",
    ),
    (422, "idempotency-key-reused", "This Idempotency-Key came with another request"),
)
"""What a POST may answer when it carries an ``Idempotency-Key`` (``web.idempotency``)."""


def documented(
    errors: Iterable[type[DomainError] | tuple[int, str, str]],
    *,
    method: str,
    takes_input: bool,
    takes_body: bool = False,
) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses`` listing, per status, every problem code a route may answer: its
    own ``errors`` (DomainError classes, or ``(status, code, meaning)``), and the common
    ones."""
    codes: dict[int, dict[str, str]] = defaultdict(dict)
    common = [
        *(WITH_INPUT if takes_input else ()),
        *(WITH_BODY if takes_body else ()),
        *(WITH_IDEMPOTENCY_KEY if method == "POST" else ()),
        *ALWAYS,
    ]
    for error in [*errors, *common]:
        if isinstance(error, tuple):
            status, code, meaning = error
        else:
            status, code = error.status, error.code
            meaning = (error.__doc__ or code).strip().splitlines()[0]
        codes[status][code] = meaning
    return {
        status: {
            "description": "; ".join(f"`{c}`: {m}" for c, m in sorted(by_code.items())),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": ProblemOut.model_json_schema()}},
        }
        for status, by_code in sorted(codes.items())
    }


def validation_problem(raw: Sequence[Any]) -> Problem:
    """The problem for pydantic/FastAPI validation errors: 400 for a body that is not JSON,
    422 naming the first field otherwise (every error listed in ``errors``)."""
    errors = [
        {
            "loc": [str(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in raw
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return Problem(400, "malformed-json", "The request body is not valid JSON.", errors=errors)
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(p for p in first["loc"] if p not in ("body", "query", "path"))
    detail = f"{where}: {first['msg']}" if where else str(first["msg"])
    return Problem(422, "validation-error", detail, errors=errors)


def install_error_handlers(app: FastAPI) -> None:
    """One handler for every ``DomainError``; FastAPI's validation and routing errors and
    unexpected exceptions answered as problems too."""

    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        return problem_response(exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_problem(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        problem = Problem(exc.status_code, code, str(exc.detail), headers=exc.headers)
        return problem_response(problem)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Starlette's outermost layer answers with this, then re-raises: the observability
        # middleware logs the error.
        problem = Problem(500, "internal-error", "An unexpected error occurred; it is logged.")
        return problem_response(problem)

    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
