"""A context's HTTP routes, each declared once, at module level.

``Routes.get/post/patch/delete`` declare a framework route whose handler returns its response
model (the OpenAPI document shows it, and the problem codes the route may answer); the value
is rendered with exact money. A handler's parameter typed with a request model (a
``bodies.Input``) gets the body read by ``bodies.read``, the one reader of every route.
``Routes.fast`` declares a hot route: the one handler is served by the fast lane ahead of the
framework and also mounted as the framework route that documents it (and serves it where
there is no fast lane). Handlers reach their context's dependencies through the app's state,
which the context's ``processes.py`` fills at start-up; ``mount`` adds a context's routes to
an app.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Annotated, Any, TypeVar

import msgspec
from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from starlette.datastructures import State

from paycore.platform.errors import DomainError
from paycore.platform.web import bodies
from paycore.platform.web.app import PaycoreAPI
from paycore.platform.web.credentials import Credential
from paycore.platform.web.fastlane import FastRequest, FastRoute, client_address
from paycore.platform.web.problems import body_too_large, documented
from paycore.platform.web.responses import JSONResponse

T = TypeVar("T")
H = TypeVar("H", bound=Callable[..., Awaitable[Any]])
F = TypeVar("F", bound=Callable[[FastRequest], Awaitable[Any]])
Errors = Iterable[type[DomainError] | tuple[int, str, str]]
DEFAULT_MAX_BODY = 1 << 20


class Routes:
    """The routes of one context (or sub-package): ``router`` for the framework, ``fast`` for
    the fast lane (paths relative to the context's prefix)."""

    def __init__(self, tag: str, *, security: Sequence[Credential] = ()) -> None:
        """``security``: the credentials every route takes unless it lists its own."""
        self.router = APIRouter(tags=[tag])
        self.security = tuple(security)
        self.hot: dict[tuple[str, str], FastRoute] = {}
        self.models: set[type[msgspec.Struct]] = set()
        self.credentials: set[Credential] = set()

    def get(self, path: str, **options: Any) -> Callable[[H], H]:
        return self._route("GET", path, **options)

    def post(self, path: str, **options: Any) -> Callable[[H], H]:
        return self._route("POST", path, **options)

    def patch(self, path: str, **options: Any) -> Callable[[H], H]:
        return self._route("PATCH", path, **options)

    def delete(self, path: str, **options: Any) -> Callable[[H], H]:
        return self._route("DELETE", path, **options)

    def _route(
        self,
        method: str,
        path: str,
        *,
        aliases: Sequence[str] = (),
        status_code: int = 200,
        errors: Errors = (),
        summary: str = "",
        include_in_schema: bool = True,
        security: Sequence[Credential] = (),
        **options: Any,
    ) -> Callable[[H], H]:
        """A framework route. A handler returning a response model (or a list of them) is
        answered with it at ``status_code``; one returning a ``Response`` is answered as is.
        ``aliases`` serve the same handler under other paths, undocumented; ``security``
        lists the credentials it takes (any one will do), for the document."""

        def declare(handler: H) -> H:
            endpoint, model = _rendering(handler, status_code)
            takes_input = bool(inspect.signature(handler).parameters)
            options["openapi_extra"] = {
                **(self._request_body(model) if model is not None else {}),
                **self._security(security),
            }
            responses = {
                **documented(
                    errors, method=method, takes_input=takes_input, takes_body=bool(model)
                ),
                **options.pop("responses", {}),
            }
            shown = [(path, include_in_schema), *[(alias, False) for alias in aliases]]
            for where, documented_here in shown:
                self.router.add_api_route(
                    where,
                    endpoint,
                    methods=[method],
                    status_code=status_code,
                    summary=summary or None,
                    responses=responses,
                    include_in_schema=documented_here,
                    **options,
                )
            return handler

        return declare

    def fast(
        self,
        method: str,
        path: str,
        *,
        aliases: Sequence[str] = (),
        status_code: int = 200,
        body: type[msgspec.Struct] | dict[str, Any] | None = None,
        response_model: type[Any] | None = None,
        errors: Errors = (),
        summary: str = "",
        max_body: int = DEFAULT_MAX_BODY,
        by_key: str = "",
        key_pattern: str | None = None,
        security: Sequence[Credential] = (),
    ) -> Callable[[F], F]:
        """A hot route (see the module doc). ``body`` is the request body's model or JSON
        schema (for the document; the handler reads the raw body itself, with
        ``bodies.read``); ``by_key`` names the path's last segment for a read of one
        resource (``/orders/{order_uid}``): the handler gets it as ``request.key`` and
        answers a rendered body (``RawAnswer``); ``key_pattern`` is what the key must match,
        for the document (the handler checks it: the fast lane does not); ``security`` as
        for a framework route."""

        def declare(handler: Any) -> Any:
            template = f"{path}/{{{by_key}}}" if by_key else path
            lane_path = f"{path}/" if by_key else path
            route = FastRoute(handler, template, max_body, by_key=bool(by_key))
            for where in (lane_path, *aliases):
                self.hot[(method, where)] = route
            endpoint = _framework_twin(route, by_key, key_pattern)
            extra = {
                **(self._request_body(body) if body is not None else {}),
                **self._security(security),
            }
            for where, shown in [(template, True), *[(a, False) for a in aliases]]:
                self.router.add_api_route(
                    where,
                    endpoint,
                    methods=[method],
                    status_code=status_code,
                    response_model=response_model,
                    summary=summary or None,
                    responses=documented(
                        errors,
                        method=method,
                        takes_input=body is not None or bool(by_key),
                        takes_body=body is not None,
                    ),
                    include_in_schema=shown,
                    openapi_extra=extra,
                )
            return handler

        return declare

    def _security(self, credentials: Sequence[Credential]) -> dict[str, Any]:
        """The OpenAPI ``security`` of a route taking any one of ``credentials`` (by default,
        those of every route)."""
        credentials = credentials or self.security
        self.credentials.update(credentials)
        return {"security": [{c.name: []} for c in credentials]} if credentials else {}

    def _request_body(self, body: type[msgspec.Struct] | dict[str, Any]) -> dict[str, Any]:
        """The OpenAPI ``requestBody`` of a route: a model is referred to (its schema joins
        the document's components when the routes are mounted), a raw schema is inlined."""
        if isinstance(body, dict):
            schema = body
        else:
            self.models.add(body)
            schema = {"$ref": bodies.SCHEMAS + body.__name__}
        content = {"application/json": {"schema": schema}}
        return {"requestBody": {"required": True, "content": content}}


def _rendering(
    handler: Callable[..., Awaitable[Any]], status_code: int
) -> tuple[Any, type[bodies.Input] | None]:
    """The endpoint FastAPI calls, and the request model it reads, if any: the handler's own
    signature (so its parameters, their dependencies and its return type, the response model,
    are what FastAPI reads) except that a request model parameter is read by ``bodies.read``
    from the request; the answer is what the handler returns, with exact money (FastAPI's own
    serialisation would write a Decimal as a string)."""
    signature = inspect.signature(handler, eval_str=True)
    models = {
        name: p.annotation
        for name, p in signature.parameters.items()
        if isinstance(p.annotation, type) and issubclass(p.annotation, bodies.Input)
    }
    if len(models) > 1:
        raise TypeError(f"{handler.__name__} takes more than one request body")
    body_name, model = next(iter(models.items()), ("", None))
    # FastAPI passes the request (once: to the handler's own parameter, if it has one)
    takes_request = [n for n, p in signature.parameters.items() if p.annotation is Request]
    request_name = takes_request[0] if takes_request else "paycore_request"

    @functools.wraps(handler)
    async def endpoint(*args: Any, **kwargs: Any) -> Response:
        if model is not None:
            request: Request = kwargs[request_name]
            if not takes_request:
                del kwargs[request_name]
            content_type = request.headers.get("content-type")
            kwargs[body_name] = bodies.read(model, await request.body(), content_type)
        result = await handler(*args, **kwargs)
        if isinstance(result, Response):
            return result
        return JSONResponse(result, status_code=status_code)

    if model is not None:  # the request instead of a body for FastAPI to read
        parameters = [p for name, p in signature.parameters.items() if name != body_name]
        if not takes_request:
            kind = inspect.Parameter.KEYWORD_ONLY
            parameters.append(inspect.Parameter(request_name, kind, annotation=Request))
        signature = signature.replace(parameters=parameters)
    endpoint.__signature__ = signature  # type: ignore[attr-defined]
    return endpoint, model


def _framework_twin(
    route: FastRoute, by_key: str, key_pattern: str | None = None
) -> Callable[..., Awaitable[Response]]:
    """The framework route of a hot handler: the same request, the same answer."""

    async def endpoint(request: Request) -> Response:
        body = await request.body() if request.method != "GET" else b""
        if len(body) > route.max_body:
            raise body_too_large(route.max_body)
        headers = {k.lower(): v for k, v in request.headers.items()}
        key = str(request.path_params.get(by_key, "")) if by_key else ""
        fast = FastRequest(body, headers, client_address(request.scope), request.app.state, key)
        if route.by_key:
            status, rendered, raw_headers = await route.handle(fast)
            headers_out = {k.decode(): v.decode() for k, v in raw_headers}
            return Response(rendered, status_code=status, headers=headers_out)
        status, content = await route.handle(fast)
        return JSONResponse(content, status_code=status)

    if not by_key:
        return endpoint

    async def by_key_endpoint(request: Request, **_path: str) -> Response:
        return await endpoint(request)

    # the document shows the path parameter; FastAPI passes it, the request carries it too
    by_key_endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request),
            inspect.Parameter(
                by_key,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[str, Path(pattern=key_pattern)] if key_pattern else str,
            ),
        ]
    )
    return by_key_endpoint


def from_state(state: State, name: str, kind: type[T]) -> T:
    """What a context keeps on the app's state under ``name`` (its dependencies, put there by
    its ``processes.py`` at start-up)."""
    found = getattr(state, name)
    if not isinstance(found, kind):
        raise TypeError(f"app.state.{name} is {type(found).__name__}, not {kind.__name__}")
    return found


def on_state(name: str, kind: type[T]) -> Any:
    """``from_state`` as a FastAPI dependency: ``Annotated[Kind, on_state("name", Kind)]``."""

    async def dependency(request: Request) -> T:  # async: a plain def would run in a thread
        return from_state(request.app.state, name, kind)

    return Depends(dependency)


def mount(
    app: FastAPI, routes: Routes, prefix: str, fast_routes: dict[tuple[str, str], FastRoute]
) -> None:
    """Add a context's routes to an app under ``prefix`` (its hot ones to the fast lane, its
    request models to the document's schemas)."""
    app.include_router(routes.router, prefix=prefix)
    if isinstance(app, PaycoreAPI):
        app.request_models.update(routes.models)
        app.credentials.update(routes.credentials)
    fast_routes.update(
        {
            (method, prefix + path): FastRoute(r.handle, prefix + r.route, r.max_body, r.by_key)
            for (method, path), r in routes.hot.items()
        }
    )
